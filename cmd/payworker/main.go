// Command payworker charges saved cards through Dintero for requests taken
// from NATS JetStream, configured from the environment (see README.md or
// `payworker -h`). `payworker version` prints its version. For a worker
// with embedded NATS, Redis and the Dintero sandbox, run cmd/payworker-dev.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/payworker/payworker/cmd/internal/service"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3" (make
// build and the Dockerfile set it from git describe).
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := service.Main(ctx, version, os.Args[1:], os.Getenv)
	stop()
	os.Exit(code)
}
