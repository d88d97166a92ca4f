// Command paybench measures payworker end to end on this machine and
// compares it with a naive worker and with the raw JetStream ceiling.
//
// Every scenario starts its own processes on loopback (package
// cmd/internal/stack's pieces): nats-server with JetStream on disk and its
// monitoring port, redis-server with the append-only file, the Dintero
// sandbox, and one real payworker binary (LOG_LEVEL=warn). paybench then
// publishes BENCH_REQUESTS charge requests (default 50,000) as fast as
// JetStream takes them and measures, from the first publish to the last
// result: charges per second, end-to-end latency (publish to result
// arrival) p50 and p99, the worker's CPU time per charge (utime+stime from
// /proc/<pid>/stat), its peak RSS (VmHWM), and the Redis commands and
// NATS messages of the worker per charge (redis INFO and the server's
// /connz).
//
// Scenarios:
//
//	a  sandbox without latency: the worker's own cost
//	b  sandbox latency 200ms, PAYWORKER_MAX_IN_FLIGHT=512 (Little's law: 2,560/s)
//	c  sandbox latency 200ms, PAYWORKER_MAX_IN_FLIGHT=1000: memory
//	d  three workers (256 in flight each) against a sandbox limited to
//	   500 calls/s (burst 50) with 50ms latency, 20,000 requests: goodput,
//	   the share of pay calls answered 429, failed results; two rows,
//	   d-limiter (PAYWORKER_DINTERO_RATE=500/s) and d-no-limiter
//	e  open loop: Poisson arrivals at half of b's capacity (1,280/s) with
//	   200ms latency, 50,000 requests: the latency payworker adds (result
//	   time − publish time − the sandbox's own time, its ledger's
//	   sandbox_ms), p50 and p99
//	f  one, two and three workers (rows f1, f2, f3; 256 in flight each)
//	   at 200ms, 50,000 requests each: throughput over f1's
//	g  10,000 in flight at 5s latency, 40,000 requests: Little's law
//	   (2,000/s) and peak RSS
//	naive  `paybench naive-worker` (nats.go Consume, synchronous handler) on b
//	raw    JetStream consume-and-ack alone: the ceiling
//
// BENCH_REQUESTS sizes a, b, c, e and f (f at least 10,000); d and g scale
// with BENCH_REQUESTS/50,000 (d at least 1,000, g at least 20,000, two
// rounds of its 10,000 slots). -only takes scenarios (d, f: all their
// rows) or single rows.
//
// Each scenario runs BENCH_RUNS times (default 5); the tables show medians
// and the targets. BENCH_JSON=file also writes the figures as JSON.
//
//	go run ./cmd/paybench                        # make bench
//	BENCH_REQUESTS=5000 BENCH_RUNS=1 go run ./cmd/paybench
//	BENCH_CPUPROFILE=cpu.out go run ./cmd/paybench -only a   # worker profile
//	go run ./cmd/paybench -only g -runs 1 -cpuprofile g.out -profile-scenario g  # heap at 10,000 in flight
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "naive-worker" {
		err = runNaive(ctx, os.Getenv)
	} else {
		var cfg config
		cfg, err = parseConfig(os.Args[1:], os.Getenv, os.Stderr)
		if err == nil {
			err = run(ctx, cfg, os.Stdout, os.Stderr)
		}
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "paybench:", err)
		os.Exit(1)
	}
}
