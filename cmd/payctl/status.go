package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/payworker/payworker/idempotency"
)

func status(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("payctl status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rurl := fs.String("redis", redisURL(), "Redis URL of the idempotency store (env REDIS_URL)")
	prefix := fs.String("prefix", envOr("PAYWORKER_IDEMPOTENCY_PREFIX", idempotency.DefaultPrefix), "key prefix (env PAYWORKER_IDEMPOTENCY_PREFIX)")
	session := fs.Bool("session", false, "the reference of a customer-initiated session request, not a charge")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: payctl status [flags] <merchant_reference>")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("give exactly one merchant_reference")
	}
	ref := fs.Arg(0)
	opts, err := redis.ParseURL(*rurl)
	if err != nil {
		return fmt.Errorf("--redis: %w", err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	store, err := idempotency.New(rdb, idempotency.Options{Prefix: *prefix})
	if err != nil {
		return err
	}
	key := idempotency.ChargeKey(ref)
	if *session {
		key = idempotency.SessionKey(ref)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rec, err := store.Get(ctx, key)
	if errors.Is(err, idempotency.ErrNotFound) {
		return fmt.Errorf("no record for %q: never claimed, or older than the retention", ref)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "merchant_reference  %s\n", ref)
	fmt.Fprintf(stdout, "state               %s\n", rec.State)
	fmt.Fprintf(stdout, "attempts            %d\n", rec.Attempts)
	fmt.Fprintf(stdout, "owner               %s\n", rec.Owner)
	if !rec.LeaseUntil.IsZero() {
		fmt.Fprintf(stdout, "lease until         %s\n", rec.LeaseUntil.UTC().Format(time.RFC3339Nano))
	}
	fmt.Fprintf(stdout, "request sequence    %d\n", rec.Sequence)
	fmt.Fprintf(stdout, "re-openable         %v\n", rec.Reopenable)
	fmt.Fprintf(stdout, "may have been sent  %v\n", rec.MaybeSent)
	fmt.Fprintf(stdout, "updated             %s\n", rec.UpdatedAt.UTC().Format(time.RFC3339Nano))
	if len(rec.Result) > 0 {
		fmt.Fprintf(stdout, "result              %s\n", rec.Result)
	}
	return nil
}
