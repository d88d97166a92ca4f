// Command payworker charges saved cards through Dintero for charge requests
// taken from NATS JetStream. `payworker` runs the worker from the
// environment; `payworker dev` runs the worker with an embedded NATS
// server, an embedded Redis and the Dintero sandbox, with nothing to install.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "dev" {
		err = runDev(ctx, os.Args[2:])
	} else {
		err = runWorker(ctx, os.Args[1:], os.Getenv)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "payworker:", err)
		os.Exit(1)
	}
}

func runWorker(ctx context.Context, args []string, getenv func(string) string) error {
	cfg, err := loadConfig(args, getenv, os.Stderr)
	if err != nil {
		return err
	}
	log := newLogger(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	redis.SetLogger(redisLogger{log.With("component", "redis")})
	return run(ctx, cfg, log)
}

// redisLogger sends go-redis's own messages (pool dial failures) to slog.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...))
}
