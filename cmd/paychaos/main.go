// Command paychaos runs payworker under chaos and audits that no charge was
// made twice or lost.
//
// It starts real processes on loopback in a temporary folder (package
// cmd/internal/stack): nats-server with JetStream on disk, redis-server with
// the append-only file, the Dintero sandbox with injected faults, and three
// payworker processes sharing one consumer. It then publishes charge
// requests at a steady rate (some twice, some reusing a reference with
// another amount, some with declining cards), and a few customer-initiated
// session requests (each twice), while it SIGKILLs a random worker every
// few seconds, restarts redis-server and nats-server once each, empties
// Redis (FLUSHALL), fails Redis over to an append-only file a few seconds
// old, and pauses a worker (SIGSTOP) past its lease before resuming it.
// When every request has a result it audits the sandbox ledger, sessions
// and transactions against the results stream, explains each pay call
// Dintero's fence refused, and prints a table. The exit status is 1 when a
// check failed, 2 when the run itself could not be done.
//
// The load is a function of -seed: the same seed publishes the same
// requests in the same order (fault timing is not deterministic).
//
//	go run ./cmd/paychaos                       # 10,000 requests
//	CHAOS_REQUESTS=2000 go run ./cmd/paychaos   # the short run
//
// The folder (logs of every process, data) is kept when a check fails or
// with -keep, and removed otherwise.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	cfg, err := parseConfig(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "paychaos:", err)
		os.Exit(2)
	}
	runFn := run
	if cfg.Cluster.On {
		runFn = runCluster
	}
	ok, err := runFn(ctx, stop, cfg, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "paychaos:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}
