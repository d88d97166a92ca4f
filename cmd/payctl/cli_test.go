package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/idempotency/redistest"
	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/worker"
	"github.com/payworker/payworker/worker/natstest"
)

// TestMain lets a test run this binary as payctl itself: with
// PAYCTL_RUN_MAIN=1 the process is payctl, its arguments are payctl's, and
// its exit code and stderr are payctl's.
func TestMain(m *testing.M) {
	if os.Getenv("PAYCTL_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// payctlProcess runs payctl as a process and returns its exit code, stdout
// and stderr.
func payctlProcess(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "PAYCTL_RUN_MAIN=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		return ee.ExitCode(), out.String(), errOut.String()
	}
	if err != nil {
		t.Fatalf("payctl %v: %v", args, err)
	}
	return 0, out.String(), errOut.String()
}

func runSplit(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = run(ctx, args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// closedPort returns a loopback address on which nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestHelpNeverConnects: -h on every command prints help on stdout and
// exits 0 without opening a connection, even where a command would
// connect first thing (issue 16: "payctl dlq -h connects to NATS").
func TestHelpNeverConnects(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NATS_URL", "nats://"+ln.Addr().String())
	t.Setenv("REDIS_URL", "redis://"+ln.Addr().String()+"/0")
	for _, args := range [][]string{
		{"-h"}, {"--help"}, {"help"}, {"help", "status"}, {"help", "dlq"},
		{"charge", "-h"}, {"charge", "--help"}, {"charge", "--sample", "-h"},
		{"session", "-h"}, {"watch", "-h"}, {"watch", "--all", "--help"},
		{"status", "-h"}, {"status", "ORD-1", "-h"},
		{"resolve", "-h"}, {"resolve", "ORD-1", "--as", "failed", "--wait", "5s", "-h"}, {"help", "resolve"},
		{"dlq", "-h"}, {"dlq", "--help"}, {"dlq", "help"}, {"dlq", "list", "-h"}, {"dlq", "replay", "-h"}, {"dlq", "replay", "7", "-h"},
		{"version", "-h"},
	} {
		stdout, stderr, err := runSplit(context.Background(), args...)
		if code := exitCode(err); code != exitOK {
			t.Errorf("payctl %s: exit %d (%v)", strings.Join(args, " "), code, err)
		}
		if !strings.Contains(stdout, "Usage: payctl") || !strings.Contains(stdout, "Exit codes: 0 ok, 1 error, 2 usage, 3 not found") {
			t.Errorf("payctl %s: help on stdout is %q", strings.Join(args, " "), stdout)
		}
		if stderr != "" {
			t.Errorf("payctl %s: stderr %q, want nothing", strings.Join(args, " "), stderr)
		}
	}
	if out, _, _ := runSplit(context.Background(), "status", "-h"); !strings.Contains(out, "-json") || !strings.Contains(out, "-redis") {
		t.Errorf("status -h does not list its flags: %q", out)
	}
	// Every connection attempt would be waiting in the listener's backlog.
	if err := ln.(*net.TCPListener).SetDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if c, err := ln.Accept(); err == nil {
		c.Close()
		t.Fatal("a -h run connected to NATS_URL/REDIS_URL")
	}
}

// TestExitCodes checks the documented exit codes in-process and, for a few,
// as a real process.
func TestExitCodes(t *testing.T) {
	ns := natstest.Start(t, natstest.Options{})
	_, js := ns.Connect(t)
	ctx := context.Background()
	if err := worker.Setup(ctx, js, worker.Config{}); err != nil {
		t.Fatal(err)
	}
	srv := redistest.Start(t, redistest.Options{})
	dead := "redis://" + closedPort(t) + "/0"
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, exitUsage},
		{[]string{"frobnicate"}, exitUsage},
		{[]string{"charge", "--bogus"}, exitUsage},
		{[]string{"charge", "--nats", ns.URL()}, exitUsage}, // neither --sample nor --file
		{[]string{"charge", "--nats", ns.URL(), "--sample", "extra"}, exitUsage},
		{[]string{"watch", "--nats", ns.URL(), "--outcome", "nope"}, exitUsage},
		{[]string{"status"}, exitUsage},
		{[]string{"status", "a", "b"}, exitUsage},
		{[]string{"dlq"}, exitUsage},
		{[]string{"dlq", "frob"}, exitUsage},
		{[]string{"dlq", "replay", "--nats", ns.URL()}, exitUsage},
		{[]string{"dlq", "replay", "--nats", ns.URL(), "x"}, exitUsage},
		{[]string{"version", "extra"}, exitUsage},
		{[]string{"status", "--redis", srv.URL(), "never-claimed"}, exitNotFound},
		{[]string{"status", "--redis", srv.URL(), "--session", "never-claimed"}, exitNotFound},
		{[]string{"dlq", "replay", "--nats", ns.URL(), "999999"}, exitNotFound},
		{[]string{"resolve"}, exitUsage},
		{[]string{"resolve", "--nats", ns.URL(), "never-parked", "--as", "maybe", "--why", "x"}, exitUsage},
		{[]string{"resolve", "--nats", ns.URL(), "never-parked"}, exitNotFound},
		{[]string{"resolve", "--nats", "nats://" + closedPort(t), "x"}, exitError},
		{[]string{"status", "--redis", dead, "x"}, exitError},
		{[]string{"charge", "--nats", "nats://" + closedPort(t), "--sample"}, exitError},
		{[]string{"version"}, exitOK},
		{[]string{"--version"}, exitOK},
		{[]string{"dlq", "list", "--nats", ns.URL()}, exitOK},
	} {
		_, _, err := runSplit(ctx, tc.args...)
		if got := exitCode(err); got != tc.want {
			t.Errorf("payctl %s: exit %d (%v), want %d", strings.Join(tc.args, " "), got, err, tc.want)
		}
	}

	t.Run("process", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want int
		}{
			{[]string{"dlq", "-h"}, exitOK},
			{[]string{"frobnicate"}, exitUsage},
			{[]string{"status", "--redis", srv.URL(), "never-claimed"}, exitNotFound},
			{[]string{"status", "--redis", dead, "x"}, exitError},
			{[]string{"resolve", "--nats", ns.URL(), "never-parked"}, exitNotFound},
		} {
			code, _, stderr := payctlProcess(t, tc.args...)
			if code != tc.want {
				t.Errorf("payctl %s: exit %d, want %d (stderr %q)", strings.Join(tc.args, " "), code, tc.want, stderr)
			}
		}
	})
}

// TestNoLibraryLogLines: go-redis logs its dial retries on stderr by
// itself; payctl's output is its own unless -v asks for them.
func TestNoLibraryLogLines(t *testing.T) {
	dead := "redis://" + closedPort(t) + "/0"
	code, stdout, stderr := payctlProcess(t, "status", "--redis", dead, "x")
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if code != exitError || stdout != "" || len(lines) != 1 || !strings.HasPrefix(lines[0], "payctl: ") {
		t.Fatalf("status against a dead Redis: exit %d, stdout %q, stderr %q; want exit 1 and one line of payctl's", code, stdout, stderr)
	}
	code, _, stderr = payctlProcess(t, "status", "-v", "--redis", dead, "x")
	if code != exitError || !strings.Contains(stderr, "redis: ") || strings.Count(stderr, "\n") < 2 {
		t.Fatalf("status -v: exit %d, stderr %q; want go-redis's lines as well", code, stderr)
	}
}

// TestJSON: every command that prints has --json, and what it prints
// parses.
func TestJSON(t *testing.T) {
	ns := natstest.Start(t, natstest.Options{})
	_, js := ns.Connect(t)
	ctx := context.Background()
	if err := worker.Setup(ctx, js, worker.Config{}); err != nil {
		t.Fatal(err)
	}
	srv := redistest.Start(t, redistest.Options{})

	decode := func(t *testing.T, line string, v any) {
		t.Helper()
		if err := json.Unmarshal([]byte(line), v); err != nil {
			t.Fatalf("output %q is not JSON: %v", line, err)
		}
	}

	t.Run("charge and session", func(t *testing.T) {
		for _, cmd := range []string{"charge", "session"} {
			out, _, err := runSplit(ctx, cmd, "--nats", ns.URL(), "--sample", "--ref", "json-"+cmd, "--json")
			if err != nil {
				t.Fatal(err)
			}
			var p published
			decode(t, out, &p)
			if p.MerchantReference != "json-"+cmd || p.Stream != messages.StreamRequests || p.Sequence == 0 || p.Duplicate {
				t.Errorf("%s --json: %+v", cmd, p)
			}
		}
	})

	t.Run("watch", func(t *testing.T) {
		m := nats.NewMsg(messages.ResultSubject(messages.KindCharge, messages.OutcomeDeclined))
		m.Data = []byte(`{"merchant_reference":"json-w","outcome":"declined"}`)
		m.Header.Set("ce-type", "dev.payworker.charge.result.declined")
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var mu sync.Mutex
		var out bytes.Buffer
		done := make(chan error, 1)
		go func() {
			done <- run(wctx, []string{"watch", "--nats", ns.URL(), "--all", "--json"}, lockedWriter{&mu, &out}, &bytes.Buffer{})
		}()
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			s := out.String()
			mu.Unlock()
			if strings.Contains(s, "\n") {
				var w struct {
					Subject  string                `json:"subject"`
					Sequence uint64                `json:"stream_sequence"`
					Headers  map[string]string     `json:"headers"`
					Result   messages.ChargeResult `json:"result"`
				}
				decode(t, strings.SplitN(s, "\n", 2)[0], &w)
				if w.Result.MerchantReference != "json-w" || w.Sequence == 0 || w.Headers["ce-type"] == "" || !strings.HasSuffix(w.Subject, ".declined") {
					t.Errorf("watch --json: %+v", w)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("watch --json printed nothing")
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})

	t.Run("status", func(t *testing.T) {
		store, err := idempotency.New(srv.Client(t), idempotency.Options{})
		if err != nil {
			t.Fatal(err)
		}
		c, err := store.Claim(ctx, idempotency.ChargeKey("json-st"), "fp", 7)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Complete(ctx, idempotency.ChargeKey("json-st"), c.Token, 7, []byte(`{"outcome":"succeeded"}`), false); err != nil {
			t.Fatal(err)
		}
		// Flags after the reference are flags too.
		out, _, err := runSplit(ctx, "status", "--redis", srv.URL(), "json-st", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			record
			Result struct {
				Outcome string `json:"outcome"`
			} `json:"result"`
		}
		decode(t, out, &r)
		if r.MerchantReference != "json-st" || r.Kind != "charge" || r.State != "completed" || r.RequestSequence != 7 || r.Result.Outcome != "succeeded" {
			t.Errorf("status --json: %s", out)
		}
	})

	t.Run("dlq", func(t *testing.T) {
		out, _, err := runSplit(ctx, "dlq", "list", "--nats", ns.URL(), "--json")
		if err != nil || strings.TrimSpace(out) != "[]" {
			t.Fatalf("dlq list --json of an empty stream: %q %v", out, err)
		}
		m := nats.NewMsg(messages.SubjectDeadLetters)
		m.Data = []byte(`{"session":{"order":{"merchant_reference":"json-dead"},"customer":{"tokens":{"payex.creditcard":{"payment_token":"sandbox-ok-hidden"}}}}}`)
		m.Header.Set(messages.HeaderDeadReason, "invalid")
		m.Header.Set(messages.HeaderDeadSubject, messages.SubjectChargeRequest)
		ack, err := js.PublishMsg(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		out, _, err = runSplit(ctx, "dlq", "list", "--nats", ns.URL(), "--json")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "hidden") {
			t.Fatalf("dlq list --json shows a token: %s", out)
		}
		var letters []deadLetter
		decode(t, out, &letters)
		if len(letters) != 1 || letters[0].MerchantReference != "json-dead" || letters[0].Reason != "invalid" || letters[0].Sequence != ack.Sequence {
			t.Fatalf("dlq list --json: %s", out)
		}
		out, _, err = runSplit(ctx, "dlq", "replay", strconv.FormatUint(ack.Sequence, 10), "--nats", ns.URL(), "--json")
		if err != nil {
			t.Fatal(err)
		}
		var r replayed
		decode(t, out, &r)
		if r.DeadLetter != ack.Sequence || r.Subject != messages.SubjectChargeRequest || r.Stream != messages.StreamRequests || r.Sequence == 0 {
			t.Errorf("dlq replay --json: %s", out)
		}
	})

	t.Run("version", func(t *testing.T) {
		out, _, err := runSplit(ctx, "version", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			Version   string `json:"version"`
			GoVersion string `json:"go_version"`
		}
		decode(t, out, &v)
		if v.Version == "" || !strings.HasPrefix(v.GoVersion, "go1.") {
			t.Errorf("version --json: %s", out)
		}
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestRedactURL(t *testing.T) {
	got := redactURL("nats://u:secret@a:4222,nats://b:4222, nats://tok@c:4222,redis://:secret@host:xx/0")
	if strings.Contains(got, "secret") || !strings.Contains(got, "nats://b:4222") || !strings.Contains(got, "@host:xx/0") {
		t.Fatalf("redactURL = %q", got)
	}
	// A Redis URL that does not parse: the error names it without its password.
	stdout, stderr, err := runSplit(context.Background(), "status", "--redis", "redis://:hunter2@127.0.0.1:xx/0", "ref")
	if exitCode(err) != exitUsage || strings.Contains(err.Error()+stdout+stderr, "hunter2") || !strings.Contains(err.Error(), "invalid port") {
		t.Fatalf("status with a malformed REDIS_URL: %v (stdout %q, stderr %q)", err, stdout, stderr)
	}
}
