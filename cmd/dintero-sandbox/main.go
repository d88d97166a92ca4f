// Command dintero-sandbox serves the in-memory Dintero Checkout sandbox of
// package dinterotest on a local address, for running payworker without
// access to Dintero.
//
// Every flag can also be set by an environment variable named
// DINTERO_SANDBOX_ plus the flag name in upper case with dashes as
// underscores (DINTERO_SANDBOX_ADDR, DINTERO_SANDBOX_ERROR_RATE, ...);
// flags win over the environment.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/payworker/payworker/cmd/internal/buildinfo"
	"github.com/payworker/payworker/dintero/dinterotest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "dintero-sandbox:", err)
		}
		os.Exit(2)
	}
}

type config struct {
	addr         string
	logLevel     slog.Level
	opts         dinterotest.Options
	printVersion bool
}

// parseConfig reads flags, falling back to DINTERO_SANDBOX_* variables.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var c config
	f := &c.opts.Faults
	fs := flag.NewFlagSet("dintero-sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8099", "listen address")
	fs.StringVar(&c.opts.AccountID, "account", dinterotest.DefaultAccountID, "Dintero account id")
	fs.StringVar(&c.opts.ClientID, "client-id", dinterotest.DefaultClientID, "API client id")
	fs.StringVar(&c.opts.ClientSecret, "client-secret", dinterotest.DefaultClientSecret, "API client secret")
	fs.DurationVar(&c.opts.TokenTTL, "token-ttl", time.Hour, "access token lifetime")
	fs.DurationVar(&c.opts.HangLimit, "hang-limit", 2*time.Minute, "longest hang of a timeout-after-charge answer")
	fs.Int64Var(&c.opts.Seed, "seed", 0, "fault randomness seed (0 = time based)")
	fs.DurationVar(&c.opts.RetryAfterDelay, "retry-after-delay", 24*time.Hour, "retry_after of RETRY_AFTER_DELAY declines (insufficient funds, soft decline), from the call")
	fs.DurationVar(&f.Latency, "latency", 0, "latency added to every API call")
	fs.DurationVar(&f.LatencyJitter, "latency-jitter", 0, "random extra latency, uniform in [0, jitter)")
	fs.Float64Var(&f.ErrorRate, "error-rate", 0, "fraction of calls answered 500/503")
	fs.Float64Var(&f.RateLimitRate, "rate-limit-rate", 0, "fraction of calls answered 429")
	fs.DurationVar(&f.RetryAfter, "retry-after", time.Second, "Retry-After of 429 answers")
	fs.Float64Var(&f.TimeoutAfterChargeRate, "timeout-after-charge-rate", 0, "fraction of charges recorded but never answered")
	fs.Float64Var(&f.ResetRate, "reset-rate", 0, "fraction of calls whose connection is dropped")
	fs.Func("rate-limit", "the account's rate limit, requests per second (e.g. 500 or 500/s) over every API call; beyond it 429 with Retry-After (0: none)", func(v string) error {
		n, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), "/s"), 64)
		if err != nil {
			return fmt.Errorf("want requests per second such as 500 or 500/s, got %q", v)
		}
		f.RateLimit = n
		return nil
	})
	fs.IntVar(&f.RateBurst, "rate-burst", 0, "requests the rate limit lets through at once (0: a tenth of a second's worth, at least 1)")
	fs.DurationVar(&c.opts.Outage.Duration, "outage", 0, "start with an outage this long: pay and session calls are processed but their answers lost, lookups answer 503 (0: none)")
	fs.StringVar(&c.opts.Outage.Answer, "outage-answer", dinterotest.OutageHang, "what a call processed during the outage gets: hang, 502 or 504")
	fs.Float64Var(&c.opts.Outage.RefuseRate, "outage-refuse-rate", 0, "fraction of pay and session calls refused with 503 (not processed) during the outage")
	fs.TextVar(&c.logLevel, "log-level", slog.LevelInfo, "log level (debug logs every request)")
	fs.BoolVar(&c.printVersion, "version", false, "print the version, VCS revision and Go version, and exit")
	fs.Func("callback-secret", "sign callbacks (Dintero-Signature) with this secret; unset: unsigned", func(v string) error {
		c.opts.CallbackSecret = []byte(v)
		return nil
	})

	var envErr error
	fs.VisitAll(func(fl *flag.Flag) {
		if fl.Name == "version" {
			return
		}
		name := "DINTERO_SANDBOX_" + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
		if v := getenv(name); v != "" && envErr == nil {
			if err := fl.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s: %w", name, err)
			}
		}
	})
	if envErr != nil {
		return c, envErr
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if err := errors.Join(f.Validate(), c.opts.Outage.Validate()); err != nil {
		return c, err
	}
	if c.opts.TokenTTL <= 0 || c.opts.HangLimit <= 0 || c.opts.RetryAfterDelay <= 0 {
		return c, errors.New("-token-ttl, -hang-limit and -retry-after-delay must be positive")
	}
	return c, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	if c.printVersion {
		fmt.Fprintln(stdout, buildinfo.Read(version).String("dintero-sandbox"))
		return nil
	}
	c.opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: c.logLevel}))
	sb := dinterotest.New(c.opts)
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: sb, ReadHeaderTimeout: 10 * time.Second}
	printBanner(stdout, "http://"+ln.Addr().String(), c.opts)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	_ = sb.Close() // release requests hanging in a timeout-after-charge fault
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return err
	}
	fmt.Fprintln(stdout, "dintero-sandbox: stopped")
	return nil
}

func printBanner(w io.Writer, base string, o dinterotest.Options) {
	fmt.Fprintf(w, "dintero-sandbox listening on %s\n\n", base)
	fmt.Fprintf(w, "  account        %s\n  client id      %s\n  client secret  %s\n", o.AccountID, o.ClientID, o.ClientSecret)
	fmt.Fprintf(w, "  token URL      POST %s/v1/accounts/%s/auth/token\n", base, o.AccountID)
	fmt.Fprintf(w, "  audience       https://api.dintero.com/v1/accounts/%s\n\n", o.AccountID)
	fmt.Fprintf(w, "test cards (prefix of payment_token / recurrence_token; retry_after %v ahead):\n", o.RetryAfterDelay)
	for _, c := range dinterotest.TestCards() {
		fmt.Fprintf(w, "  %-32s %s\n", c.TokenPrefix, c.Outcome)
	}
	fmt.Fprintln(w, "\nadmin (no auth):")
	a := base + dinterotest.AdminPrefix
	for _, e := range [][2]string{
		{"GET ", a}, {"GET ", a + "ledger"}, {"GET ", a + "transactions"}, {"GET ", a + "counters"},
		{"GET ", a + "faults"}, {"PUT ", a + "faults"}, {"GET ", a + "outage"}, {"PUT ", a + "outage"},
		{"DELETE", a + "outage"}, {"POST", a + "reset"}, {"POST", a + "expire-tokens"},
	} {
		fmt.Fprintf(w, "  %-6s %s\n", e[0], e[1])
	}
	if o.Outage.Duration > 0 {
		outage, _ := json.Marshal(o.Outage)
		fmt.Fprintf(w, "\noutage (from now): %s\n", outage)
	}
	faults, _ := json.Marshal(o.Faults)
	fmt.Fprintf(w, "\nfaults: %s\n", faults)
}
