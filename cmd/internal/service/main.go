// Package service is the payworker process: its configuration from the
// environment and flags, the parts it connects (Redis, NATS, Dintero, the
// HTTP endpoints), and the worker run over them. cmd/payworker runs it from
// the environment; cmd/payworker-dev runs it against embedded servers.
package service

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/payworker/payworker/cmd/internal/buildinfo"
)

// Main runs payworker: `payworker [flags]` runs the worker, `payworker
// version` (or -version) prints the version. version is the command's
// stamped version (-ldflags "-X main.version=..."). It returns the
// process's exit code: 0 after a clean stop, 1 on an error, 2 on a usage
// error.
func Main(ctx context.Context, version string, args []string, getenv func(string) string) int {
	build = buildinfo.Read(version)
	if len(args) > 0 && (args[0] == "version" || args[0] == "-version" || args[0] == "--version") {
		fmt.Println(build.String("payworker"))
		return 0
	}
	cfg, err := LoadConfig(args, getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		configError(os.Stderr, getenv("LOG_FORMAT"), err)
		return 2
	}
	log := NewLogger(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	if err := Run(ctx, cfg, log); err != nil {
		log.Error("payworker stopped", "err", err)
		return 1
	}
	return 0
}

// configError prints a start-up error in the format the logs would have:
// one JSON line with LOG_FORMAT=json, one plain line otherwise.
func configError(w io.Writer, format string, err error) {
	if format == "json" {
		line, _ := json.Marshal(map[string]string{"level": "ERROR", "msg": "invalid configuration",
			"err": err.Error(), "service": "payworker", "version": Version()})
		fmt.Fprintln(w, string(line))
		return
	}
	fmt.Fprintln(w, "payworker:", err)
}

// redisLogger sends go-redis's own messages (pool dial failures) to slog.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...))
}
