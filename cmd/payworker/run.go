package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/worker"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// run wires the parts together and runs the worker until ctx is cancelled.
// A NATS or Redis that is down at start is waited for, not fatal.
func run(ctx context.Context, cfg *config, log *slog.Logger) error {
	ropts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	if ropts.PoolSize == 0 {
		// Every request in flight makes two short Redis calls; a pool
		// smaller than the in-flight limit queues them behind each other.
		ropts.PoolSize = cfg.MaxInFlight
	}
	rdb := redis.NewClient(ropts)
	defer rdb.Close()
	// Claim and Complete of concurrent requests share round trips: one
	// write and one read carry many scripts, for the worker and for Redis.
	batcher, err := rdb.AutoPipeline()
	if err != nil {
		return fmt.Errorf("redis auto-pipeline: %w", err)
	}
	defer batcher.Close()
	store, err := idempotency.New(rdb, idempotency.Options{
		Prefix:    cfg.IdempotencyPrefix,
		Retention: cfg.IdempotencyTTL,
		Lease:     cfg.AckWait,
		Batcher:   batcher,
	})
	if err != nil {
		return fmt.Errorf("idempotency: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := worker.NewMetrics(reg)
	gw, err := dintero.New(dintero.Config{
		AccountID:     cfg.DinteroAccountID,
		ClientID:      cfg.DinteroClientID,
		ClientSecret:  cfg.DinteroClientSecret,
		APIURL:        cfg.DinteroAPIURL,
		AuthURL:       cfg.DinteroAuthURL,
		SystemName:    "payworker",
		SystemVersion: version,
		Timeout:       cfg.DinteroTimeout,
		Logger:        log.With("component", "dintero"),
		Observe:       metrics.ObserveDintero,
	})
	if err != nil {
		return err
	}
	nc, err := nats.Connect(cfg.NATSURL,
		nats.Name("payworker"),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: we closed it ourselves
				log.Warn("NATS disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("NATS reconnected", "url", c.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			// A slow consumer here means messages were dropped in this
			// process: they come back only after AckWait.
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Warn("NATS error", "subject", subject, "err", err)
		}),
	)
	if err != nil {
		return fmt.Errorf("NATS_URL: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	w, err := worker.New(js, store, gw, worker.Config{
		Consumer:      cfg.Consumer,
		MaxInFlight:   cfg.MaxInFlight,
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver,
		SkipSetup:     cfg.SkipSetup,
		ShutdownGrace: cfg.ShutdownGrace,
		CallbackURL:   cfg.CallbackURL,
		Logger:        log,
		Metrics:       metrics,
	})
	if err != nil {
		return err
	}

	mux := endpoints(reg, w, nc, rdb, gw, cfg.PProf)
	if cfg.CallbackSecret != "" {
		cb, err := worker.NewCallbacks(js, gw, store, worker.CallbackConfig{
			Secret:    []byte(cfg.CallbackSecret),
			AccountID: cfg.DinteroAccountID,
			Logger:    log.With("component", "callbacks"),
			Metrics:   metrics,
		})
		if err != nil {
			return err
		}
		mux.Handle(worker.CallbackPath, cb)
	} else {
		log.Info("DINTERO_CALLBACK_SECRET not set: the callback endpoint is off")
	}
	srv := &http.Server{Addr: cfg.HTTPAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("health endpoint stopped", "addr", cfg.HTTPAddr, "err", err)
		}
	}()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	log.Info("payworker starting", "version", version, "nats", nc.ConnectedUrlRedacted(), "dintero", cfg.DinteroAPIURL, "max_in_flight", cfg.MaxInFlight)
	// Run returns early when NATS is not there yet or the consumer cannot
	// be bound; wait and try again until told to stop.
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		started := time.Now()
		err := w.Run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(started) > time.Minute {
			wait = time.Second // it ran fine for a while: start the backoff again
		}
		log.Warn("worker not running; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// endpoints serves /metrics, /healthz (the process is alive) and /readyz
// (NATS connected, consumer bound, Redis answering, a Dintero token at hand),
// and with withPProf the net/http/pprof handlers under /debug/pprof/
// (PAYWORKER_PPROF=true; off by default: profiles expose internals).
func endpoints(reg *prometheus.Registry, w *worker.Worker, nc *nats.Conn, rdb *redis.Client, gw *dintero.Client, withPProf bool) *http.ServeMux {
	problems := func(ctx context.Context) []string {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var p []string
		if !nc.IsConnected() {
			p = append(p, "nats: "+nc.Status().String())
		}
		if !w.Bound() {
			p = append(p, "consumer: not bound")
		}
		if err := rdb.Ping(ctx).Err(); err != nil {
			p = append(p, "redis: "+err.Error())
		}
		if _, err := gw.Token(ctx); err != nil {
			p = append(p, "dintero: "+err.Error())
		}
		return p
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "payworker_ready",
		Help: "1 when NATS is connected, the consumer bound, Redis answering and a Dintero token at hand.",
	}, func() float64 {
		if len(problems(context.Background())) > 0 {
			return 0
		}
		return 1
	}))

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(rw, "ok")
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, r *http.Request) {
		if p := problems(r.Context()); len(p) > 0 {
			rw.WriteHeader(http.StatusServiceUnavailable)
			for _, line := range p {
				fmt.Fprintln(rw, line)
			}
			return
		}
		fmt.Fprintln(rw, "ready")
	})
	if withPProf {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}
