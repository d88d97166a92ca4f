// Command payctl talks to payworker through NATS and Redis: it publishes
// requests, follows results, shows a reference's idempotency record, and
// lists and replays dead letters.
//
//	payctl charge --sample                 publish a sample charge
//	payctl charge --file request.json      publish a request body from a file
//	payctl session --sample                publish a customer-initiated session request
//	payctl watch [--outcome declined]      follow results
//	payctl status <merchant_reference>     the idempotency record and its stored result
//	payctl dlq list                        dead-lettered requests, with reasons
//	payctl dlq replay <seq>...             publish dead letters again, then remove them
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const usage = `payctl talks to payworker through NATS.

Commands:
  charge    publish a charge request (from --file, or a --sample built from flags)
  session   publish a customer-initiated session request (from --file, or a --sample)
  watch     follow results as they are published
  status    show a merchant_reference's idempotency record and stored result
  dlq       list or replay dead-lettered requests

Run "payctl <command> -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "payctl:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "charge":
		return charge(ctx, args[1:], stdout, stderr)
	case "session":
		return session(ctx, args[1:], stdout, stderr)
	case "watch":
		return watch(ctx, args[1:], stdout, stderr)
	case "status":
		return status(ctx, args[1:], stdout, stderr)
	case "dlq":
		return dlq(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func natsURL() string { return envOr("NATS_URL", "nats://127.0.0.1:4222") }

func redisURL() string { return envOr("REDIS_URL", "redis://127.0.0.1:6379/0") }

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// connect opens a NATS connection and its JetStream context.
func connect(url string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url, nats.Name("payctl"))
	if err != nil {
		return nil, nil, fmt.Errorf("connect %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}
