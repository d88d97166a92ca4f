// Command payctl talks to payworker through NATS and Redis: it publishes
// requests, follows results, shows a reference's idempotency record, and
// lists and replays dead letters.
//
//	payctl charge --sample                 publish a sample charge
//	payctl charge --file request.json      publish a request body from a file
//	payctl session --sample                publish a customer-initiated session request
//	payctl watch [--outcome declined]      follow results
//	payctl status <merchant_reference>     the idempotency record, its stored result and schedules
//	payctl resolve <merchant_reference>    look a parked request up now (--as declined|failed to close it)
//	payctl dlq list                        dead-lettered requests, with reasons
//	payctl dlq replay <seq>...             publish dead letters again, then remove them
//	payctl token status|unblock <provider> <token> --why ...
//	                                       a card token's block and attempts; lift a block
//	payctl version                         version, VCS revision and Go version
//
// Every command that talks to NATS or Redis takes --namespace
// (PAYWORKER_NAMESPACE), for a payworker deployment in a namespace. Every
// command that prints takes --json; -h on any command prints its help and
// connects to nothing. Exit codes: 0 ok, 1 error, 2 usage (an unknown
// command or flag, a missing argument), 3 not found (status of an unknown
// reference, resolve of a reference with nothing parked, replay of an
// unknown dead letter).
package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

// version is stamped at build time: go build -ldflags "-X main.version=v1.2.3"
// (make build and the Dockerfile do).
var version = "dev"

// command is one of payctl's commands.
type command struct {
	name, summary string
	run           func(ctx context.Context, c cli, args []string) error
}

func commands() []command {
	return []command{
		{"charge", "publish a charge request (from --file, or a --sample built from flags)", charge},
		{"session", "publish a customer-initiated session request (from --file, or a --sample)", session},
		{"watch", "follow results as they are published", watch},
		{"status", "show a merchant_reference's idempotency record and stored result", status},
		{"resolve", "look a parked request (charge or session) up now, or close it as declined or failed", resolve},
		{"dlq", "list or replay dead-lettered requests", dlq},
		{"token", "show a card token's block and declined attempts, or unblock it", token},
		{"version", "print payctl's version, VCS revision and Go version", versionCmd},
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `payctl talks to payworker through NATS and Redis.

Usage: payctl <command> [flags] [arguments]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run "payctl <command> -h" (or "payctl help <command>") for a command's flags;
-h never connects anywhere. Every command that prints takes --json.
NATS settings come from the environment as payworker reads them (NATS_URL,
NATS_CREDS, NATS_NKEY, NATS_USER/NATS_PASSWORD, NATS_TOKEN, NATS_CA,
NATS_CERT/NATS_KEY) or from the nats CLI's flags (-s/--server, --creds,
--nkey, --user, --password, --token, --tlsca, --tlscert, --tlskey);
REDIS_URL from the environment or --redis. PAYWORKER_NAMESPACE (or
--namespace) names the deployment's namespace, as payworker reads it: its
subjects, streams and Redis prefix.

Exit codes: 0 ok, 1 error, 2 usage, 3 not found.
`)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	code := exitCode(err)
	if code != exitOK {
		fmt.Fprintln(os.Stderr, "payctl:", err)
	}
	os.Exit(code)
}

// run runs the command in args; exitCode turns its error into the exit
// code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := cli{stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		usage(stderr)
		return usagef("no command given")
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(stdout)
		return nil
	case "help":
		if len(args) == 1 {
			usage(stdout)
			return nil
		}
		return run(ctx, []string{args[1], "-h"}, stdout, stderr)
	case "-version", "--version":
		return versionCmd(ctx, c, args[1:])
	}
	for _, cmd := range commands() {
		if cmd.name == args[0] {
			return cmd.run(ctx, c, args[1:])
		}
	}
	usage(stderr)
	return usagef("unknown command %q", args[0])
}

func redisURL() string { return envOr("REDIS_URL", "redis://127.0.0.1:6379/0") }

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// redactURL hides the passwords of a comma-separated list of URLs, even of
// URLs that do not parse.
func redactURL(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil {
			if u.User != nil {
				parts[i] = u.Redacted()
			}
			continue
		}
		// Unparsable: hide everything between the scheme and the last @.
		if s, at := strings.Index(p, "://"), strings.LastIndex(p, "@"); s >= 0 && at > s {
			parts[i] = p[:s+3] + "xxxxx" + p[at:]
		}
	}
	return strings.Join(parts, ",")
}

// urlError is err, a parse error that may quote raw (and its password),
// with raw redacted.
func urlError(err error, raw string) string {
	msg := err.Error()
	for _, form := range []string{strconv.Quote(raw), raw} {
		msg = strings.ReplaceAll(msg, form, strconv.Quote(redactURL(raw)))
	}
	return msg
}
