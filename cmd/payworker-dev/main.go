// Command payworker-dev runs payworker with nothing to install: an
// embedded NATS server with JetStream, an embedded Redis (miniredis) and the
// Dintero sandbox, all in one process. It prints where everything listens.
// The production binary, cmd/payworker, links none of these.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/alicebob/miniredis/v2"

	"github.com/payworker/payworker/cmd/internal/service"
	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/worker"
	"github.com/payworker/payworker/worker/natstest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := runDev(ctx, os.Args[1:])
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "payworker-dev:", err)
		os.Exit(1)
	}
}

// runDev runs the worker against embedded servers: NATS with JetStream
// (data under -dir), an in-memory Redis (miniredis) and the Dintero sandbox.
func runDev(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("payworker-dev", flag.ContinueOnError)
	dir := fs.String("dir", ".payworker-dev", "folder for the embedded NATS server's data")
	natsPort := fs.Int("nats-port", 4223, "port of the embedded NATS server (taken: a free one is used)")
	sandboxAddr := fs.String("sandbox-addr", "127.0.0.1:8099", "address of the Dintero sandbox (taken: a free port is used)")
	httpAddr := fs.String("http-addr", "127.0.0.1:8080", "address of /metrics and the health endpoints")
	callbackAddr := fs.String("callback-addr", "127.0.0.1:8081", "address of the callback endpoint the sandbox calls")
	if err := fs.Parse(args); err != nil {
		return err
	}

	ns, err := natstest.New(natstest.Options{Dir: filepath.Join(*dir, "nats"), Port: *natsPort})
	if err != nil {
		if ns, err = natstest.New(natstest.Options{Dir: filepath.Join(*dir, "nats")}); err != nil {
			return fmt.Errorf("embedded NATS: %w", err)
		}
	}
	defer ns.Close()

	mr, err := miniredis.Run()
	if err != nil {
		return fmt.Errorf("embedded Redis: %w", err)
	}
	defer mr.Close()

	// The sandbox signs its callbacks with this secret, and the worker's
	// callback endpoint checks them, as with the real Dintero.
	const callbackSecret = "dev-callback-secret"
	sandbox := dinterotest.New(dinterotest.Options{CallbackSecret: []byte(callbackSecret)})
	sandboxURL, err := sandbox.Listen(*sandboxAddr)
	if err != nil {
		if sandboxURL, err = sandbox.Listen("127.0.0.1:0"); err != nil {
			return fmt.Errorf("dintero sandbox: %w", err)
		}
	}
	defer sandbox.Close()

	env := map[string]string{
		"NATS_URL":                ns.URL(),
		"REDIS_URL":               "redis://" + mr.Addr() + "/0",
		"DINTERO_ACCOUNT_ID":      dinterotest.DefaultAccountID,
		"DINTERO_CLIENT_ID":       dinterotest.DefaultClientID,
		"DINTERO_CLIENT_SECRET":   dinterotest.DefaultClientSecret,
		"DINTERO_API_URL":         sandboxURL,
		"DINTERO_CALLBACK_SECRET": callbackSecret,
		"PAYWORKER_CALLBACK_URL":  "http://" + *callbackAddr + worker.CallbackPath,
		"PAYWORKER_HTTP_ADDR":     *httpAddr,
		"PAYWORKER_CALLBACK_ADDR": *callbackAddr,
		"LOG_FORMAT":              "text",
	}
	getenv := func(k string) string {
		if v := os.Getenv(k); v != "" && k != "NATS_URL" && k != "REDIS_URL" && k != "DINTERO_API_URL" {
			return v
		}
		return env[k]
	}
	cfg, err := service.LoadConfig(nil, getenv, os.Stderr)
	if err != nil {
		return err
	}
	fmt.Printf(`payworker-dev: everything in one process, nothing to install.
  NATS JetStream  %s  (data in %s)
  Redis           %s  (in memory)
  Dintero         %s  (sandbox; ledger at %sledger)
  Health          http://%s/healthz  and  /readyz

In another terminal:
  export NATS_URL=%s REDIS_URL=%s
  go run ./cmd/payctl charge --sample      # publish a sample charge
  go run ./cmd/payctl watch                # follow the results
  go run ./cmd/payctl status <reference>   # a reference's idempotency record
Customer-initiated sessions call back to http://%s%s
Test cards: payment or recurrence tokens starting with %q succeed, %q and
%q decline; see dintero/dinterotest. Stop with Ctrl-C.

`, ns.URL(), filepath.Join(*dir, "nats"), env["REDIS_URL"], sandboxURL, sandboxURL+dinterotest.AdminPrefix, *httpAddr,
		ns.URL(), env["REDIS_URL"], *callbackAddr, worker.CallbackPath, dinterotest.TokenAuthorized, dinterotest.TokenInsufficientFunds, dinterotest.TokenDoNotRetry)
	log := service.NewLogger(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	return service.Run(ctx, cfg, log)
}
