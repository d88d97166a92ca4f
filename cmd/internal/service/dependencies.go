package service

import (
	"context"
	"log/slog"
	"regexp"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/worker"
)

// A dependency is something payworker needs to work, and how to tell
// whether it does: check returns "" when it answers, or what is wrong.
type dependency struct {
	name  string
	check func(ctx context.Context) string
}

func dependencies(nc *nats.Conn, w *worker.Worker, rdb redis.UniversalClient, gw *dintero.Client, cfg *Config) []dependency {
	return []dependency{
		{"nats", func(context.Context) string {
			if !nc.IsConnected() {
				return "cannot reach NATS at " + cfg.NATS.Redacted() + " (" + nc.Status().String() + ")"
			}
			return ""
		}},
		{"consumer", func(context.Context) string {
			if !w.Bound() {
				return "not bound to its consumer " + cfg.Consumer
			}
			return ""
		}},
		{"redis", func(ctx context.Context) string {
			if err := rdb.Ping(ctx).Err(); err != nil {
				return "cannot reach Redis at " + cfg.Redis.Redacted() + ": " + cfg.Redis.Redact(err).Error()
			}
			return ""
		}},
		{"dintero", func(ctx context.Context) string {
			_, err := gw.Token(ctx)
			switch {
			case err == nil:
				return ""
			case dintero.KindOf(err) == dintero.KindAuth:
				return "Dintero refused the credentials (check DINTERO_CLIENT_ID, DINTERO_CLIENT_SECRET and DINTERO_ACCOUNT_ID): " + err.Error()
			}
			return "cannot reach Dintero at " + cfg.DinteroAPIURL + ": " + err.Error()
		}},
	}
}

// problems returns one line per dependency that does not answer.
func problems(ctx context.Context, deps []dependency) []string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var p []string
	for _, d := range deps {
		if msg := d.check(ctx); msg != "" {
			p = append(p, d.name+": "+msg)
		}
	}
	return p
}

// watchEvery is how often watch checks the dependencies.
const watchEvery = 5 * time.Second

// watch checks the dependencies until ctx ends and logs one line when one
// stops answering, or its problem changes (error), and when it answers
// again (info): a first deploy with a wrong secret or an unreachable
// server says so in the logs, not only on /readyz. A dependency that is
// still down after start is logged even if the worker did not get far
// enough to need it.
func watch(ctx context.Context, log *slog.Logger, deps []dependency) {
	last := map[string]string{}
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		// The first check comes a tick after start, once the worker had the
		// time to bind its consumer.
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, d := range deps {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			msg := d.check(cctx)
			cancel()
			if ctx.Err() != nil {
				return
			}
			switch prev, seen := last[d.name]; {
			case msg == prev && seen:
			case msg == "" && seen:
				log.Info(d.name+" answers again", "dependency", d.name)
			case msg != "":
				log.Error(d.name+" is not available", "dependency", d.name, "err", msg)
			}
			last[d.name] = msg
		}
	}
}

// userinfo matches "user:password@", the credentials of a URL, whether the
// URL parses or not.
var userinfo = regexp.MustCompile(`([A-Za-z0-9._~%!$&'()*+,;=-]*:)[^/@\s"]*@`)

// redactURL hides the password of every URL in s (a list of URLs, an error
// message quoting one), even a URL that does not parse, so that a mistyped
// URL never prints its password.
func redactURL(s string) string { return userinfo.ReplaceAllString(s, "${1}xxxxx@") }
