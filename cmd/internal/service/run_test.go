package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/idempotency/redistest"
	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/messages/publish"
	"github.com/payworker/payworker/worker"
	"github.com/payworker/payworker/worker/natstest"
)

// parts are the servers a payworker process talks to.
type parts struct {
	nats     *natstest.Server
	js       jetstream.JetStream
	redis    *redistest.Server
	sandbox  *dinterotest.Server
	http     string
	callback string
}

func startParts(t *testing.T, faults dinterotest.Faults) *parts {
	t.Helper()
	p := &parts{nats: natstest.Start(t, natstest.Options{}), redis: redistest.Start(t, redistest.Options{})}
	_, p.js = p.nats.Connect(t)
	p.sandbox = dinterotest.Start(t, dinterotest.Options{Faults: faults, CallbackSecret: []byte("cb-secret")})
	p.http, p.callback = freeAddr(t), freeAddr(t)
	return p
}

func (p *parts) env() map[string]string {
	return map[string]string{
		"NATS_URL":                 p.nats.URL(),
		"REDIS_URL":                p.redis.URL(),
		"DINTERO_ACCOUNT_ID":       dinterotest.DefaultAccountID,
		"DINTERO_CLIENT_ID":        dinterotest.DefaultClientID,
		"DINTERO_CLIENT_SECRET":    dinterotest.DefaultClientSecret,
		"DINTERO_API_URL":          p.sandbox.URL(),
		"DINTERO_CALLBACK_SECRET":  "cb-secret",
		"PAYWORKER_HTTP_ADDR":      p.http,
		"PAYWORKER_CALLBACK_ADDR":  p.callback,
		"DINTERO_TIMEOUT":          "10s",
		"PAYWORKER_MAX_IN_FLIGHT":  "16",
		"PAYWORKER_SHUTDOWN_GRACE": "20s",
		"LOG_FORMAT":               "json",
		"LOG_LEVEL":                "debug",
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEndpoints runs payworker in this process and checks what it serves.
func TestEndpoints(t *testing.T) {
	p := startParts(t, dinterotest.Faults{})
	env := p.env()
	cfg, err := LoadConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, NewLogger(os.Stderr, "warn", "json")) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	base := "http://" + p.http

	waitUntil(t, 10*time.Second, "ready", func() bool { code, _ := get(t, base+"/readyz"); return code == 200 })
	if code, body := get(t, base+"/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "payworker_ready 1") || !strings.Contains(body, "payworker_in_flight") {
		t.Errorf("/metrics: %d, missing payworker metrics", code)
	}
	if code, _ := get(t, "http://"+p.callback+worker.CallbackPath+"?transaction_id=x"); code != http.StatusUnauthorized {
		t.Errorf("unsigned callback: %d, want 401 (the endpoint must be mounted and verify signatures)", code)
	}
	// The callback port serves the callback alone, the HTTP port everything but.
	if code, _ := get(t, base+worker.CallbackPath+"?transaction_id=x"); code != http.StatusNotFound {
		t.Errorf("callback on the metrics port: %d, want 404", code)
	}
	for _, path := range []string{"/metrics", "/healthz", "/readyz", "/debug/pprof/"} {
		if code, _ := get(t, "http://"+p.callback+path); code != http.StatusNotFound {
			t.Errorf("%s on the callback port: %d, want 404", path, code)
		}
	}
	if code, _ := get(t, base+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("pprof is served without PAYWORKER_PPROF: %d", code)
	}

	// Not ready while Redis is gone, ready again when it is back.
	if err := p.redis.Close(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "not ready without Redis", func() bool {
		code, body := get(t, base+"/readyz")
		return code == 503 && strings.Contains(body, "redis")
	})
	if err := p.redis.Restart(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "ready again", func() bool { code, _ := get(t, base+"/readyz"); return code == 200 })
}

// TestGracefulShutdown runs the real binary against a slow sandbox, sends
// SIGTERM while charges are in flight, and checks that each of them was
// finished, published and acked before the process exited 0.
func TestGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "payworker")
	if out, err := exec.Command("go", "build", "-o", bin, "../../payworker").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	p := startParts(t, dinterotest.Faults{Latency: 2 * time.Second})
	cmd := exec.Command(bin)
	for k, v := range p.env() {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	waitUntil(t, 15*time.Second, "ready", func() bool { code, _ := get(t, "http://"+p.http+"/readyz"); return code == 200 })

	const n = 5
	for i := range n {
		body := fmt.Sprintf(`{"session":{"customer":{"tokens":{"payex.creditcard":{"payment_token":"sandbox-ok-1"}}},
"order":{"amount":100,"currency":"NOK","merchant_reference":"grace-%d"}},
"payment":{"payment_product_type":"payex.creditcard","operation":"unscheduled_purchase"}}`, i)
		if _, err := publish.ChargeBody(context.Background(), p.js, []byte(body), ""); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 10*time.Second, "charges in flight", func() bool { return p.sandbox.Counters().PayRequests >= n })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("payworker exited with %v after SIGTERM; logs:\n%s", err, logs.String())
	}

	ctx := context.Background()
	results, _ := p.js.Stream(ctx, messages.StreamResults)
	info, _ := results.Info(ctx)
	if info.State.Msgs != n {
		t.Fatalf("%d results published before exit, want %d; logs:\n%s", info.State.Msgs, n, logs.String())
	}
	for seq := uint64(1); seq <= n; seq++ {
		m, err := results.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var r messages.ChargeResult
		if err := json.Unmarshal(m.Data, &r); err != nil || r.Outcome != messages.OutcomeSucceeded {
			t.Fatalf("result %d: %s (%v)", seq, m.Data, err)
		}
	}
	requests, _ := p.js.Stream(ctx, messages.StreamRequests)
	if info, _ := requests.Info(ctx); info.State.Msgs != 0 {
		t.Fatalf("%d requests left unacked in the work queue", info.State.Msgs)
	}
	if !bytes.Contains([]byte(logs.String()), []byte("worker stopped")) {
		t.Errorf("no 'worker stopped' line in the logs")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestStartsBeforeNATSAndRedis: payworker started while NATS and Redis are
// down keeps trying, reports not ready, and works once they come up.
func TestStartsBeforeNATSAndRedis(t *testing.T) {
	p := startParts(t, dinterotest.Faults{})
	natsURL := p.nats.URL()
	p.nats.Close()
	if err := p.redis.Close(); err != nil {
		t.Fatal(err)
	}
	env := p.env()
	env["NATS_URL"] = natsURL
	cfg, err := LoadConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, NewLogger(os.Stderr, "error", "json")) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	base := "http://" + p.http

	waitUntil(t, 10*time.Second, "health endpoint up", func() bool { code, _ := get(t, base+"/healthz"); return code == 200 })
	time.Sleep(time.Second)
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "nats") || !strings.Contains(body, "redis") {
		t.Fatalf("/readyz with NATS and Redis down: %d %q", code, body)
	}
	if err := p.nats.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := p.redis.Restart(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "ready once NATS and Redis are up", func() bool { code, _ := get(t, base+"/readyz"); return code == 200 })
	_, js := p.nats.Connect(t)
	body := `{"session":{"customer":{"tokens":{"bambora.creditcard":{"payment_token":"sandbox-ok-1"}}},
"order":{"amount":100,"currency":"NOK","merchant_reference":"late-1"}},
"payment":{"payment_product_type":"bambora.creditcard","operation":"unscheduled_purchase"}}`
	if _, err := publish.ChargeBody(context.Background(), js, []byte(body), ""); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "charged", func() bool { return len(p.sandbox.Ledger()) == 1 })
}
