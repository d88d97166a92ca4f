package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/idempotency/redistest"
	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/worker"
	"github.com/payworker/payworker/worker/natstest"
)

// env is one pipeline under test: a real JetStream server, a real
// redis-server, the Dintero sandbox, and results collected as they come.
type env struct {
	t       testing.TB
	nats    *natstest.Server
	js      jetstream.JetStream
	rdb     *redis.Client
	sandbox *dinterotest.Server
	cfg     worker.Config
	logs    *logBuffer

	mu       sync.Mutex
	results  map[string][]messages.ChargeResult  // by merchant_reference
	sessions map[string][]messages.SessionResult // by merchant_reference
	raw      [][]byte
}

func newEnv(t testing.TB) *env {
	return newEnvWith(t, dinterotest.Options{Seed: 1})
}

func newEnvWith(t testing.TB, sandbox dinterotest.Options) *env {
	t.Helper()
	e := &env{t: t, results: map[string][]messages.ChargeResult{}, sessions: map[string][]messages.SessionResult{}, logs: &logBuffer{}}
	e.nats = natstest.Start(t, natstest.Options{})
	_, e.js = e.nats.Connect(t)
	e.rdb = redistest.Start(t, redistest.Options{}).Client(t)
	e.sandbox = dinterotest.Start(t, sandbox)
	e.cfg = worker.Config{
		MaxInFlight:   32,
		AckWait:       2 * time.Second,
		MaxDeliver:    8,
		RetryDelay:    50 * time.Millisecond,
		MaxRetryDelay: 300 * time.Millisecond,
		ShutdownGrace: 5 * time.Second,
		Logger:        slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := worker.Setup(ctx, e.js, e.cfg); err != nil {
		t.Fatalf("setup: %v", err)
	}
	e.collect()
	return e
}

// store returns an idempotency store with a short lease, so that recovery
// after a dead owner happens within a test.
func (e *env) store() *idempotency.Store {
	s, err := idempotency.New(e.rdb, idempotency.Options{Lease: 1500 * time.Millisecond})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) client(timeout time.Duration) *dintero.Client {
	c, err := dintero.New(dintero.Config{
		AccountID:    dinterotest.DefaultAccountID,
		ClientID:     dinterotest.DefaultClientID,
		ClientSecret: dinterotest.DefaultClientSecret,
		APIURL:       e.sandbox.URL(),
		Timeout:      timeout,
		Retry: dintero.RetryConfig{
			InitialInterval: 10 * time.Millisecond,
			MaxInterval:     50 * time.Millisecond,
			MaxElapsedTime:  300 * time.Millisecond,
			MaxRetryAfter:   50 * time.Millisecond,
			MaxAttempts:     3,
		},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// startWorker runs a worker on its own NATS connection until the test ends
// (or the returned stop is called).
func (e *env) startWorker(store worker.Store, gw worker.Gateway) (stop func()) {
	e.t.Helper()
	stop, _ = e.startWorkerConn(store, gw)
	return stop
}

// startWorkerConn is startWorker, also returning the worker's connection.
func (e *env) startWorkerConn(store worker.Store, gw worker.Gateway) (stop func(), nc *nats.Conn) {
	e.t.Helper()
	nc, js := e.nats.Connect(e.t)
	w, err := worker.New(js, store, gw, e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("worker.Run: %v", err)
			}
		})
	}
	e.t.Cleanup(stop)
	return stop, nc
}

// collect follows the results stream for the whole test.
func (e *env) collect() {
	ctx := context.Background()
	cons, err := e.js.OrderedConsumer(ctx, messages.StreamResults, jetstream.OrderedConsumerConfig{})
	if err != nil {
		e.t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if strings.HasPrefix(m.Subject(), "payments."+messages.KindSession+".") {
			var r messages.SessionResult
			if err := json.Unmarshal(m.Data(), &r); err != nil {
				e.t.Errorf("session result is not JSON: %v: %s", err, m.Data())
				return
			}
			if want := messages.ResultSubject(messages.KindSession, r.Outcome); m.Subject() != want {
				e.t.Errorf("session result %s published on %s, want %s", r.MerchantReference, m.Subject(), want)
			}
			e.mu.Lock()
			e.sessions[r.MerchantReference] = append(e.sessions[r.MerchantReference], r)
			e.raw = append(e.raw, m.Data())
			e.mu.Unlock()
			return
		}
		var r messages.ChargeResult
		if err := json.Unmarshal(m.Data(), &r); err != nil {
			e.t.Errorf("result is not JSON: %v: %s", err, m.Data())
			return
		}
		if want := messages.ResultSubject(messages.KindCharge, r.Outcome); m.Subject() != want {
			e.t.Errorf("result %s published on %s, want %s", r.MerchantReference, m.Subject(), want)
		}
		if m.Headers().Get(messages.HeaderMsgID) == "" {
			e.t.Errorf("result %s has no Nats-Msg-Id", r.MerchantReference)
		}
		e.mu.Lock()
		e.results[r.MerchantReference] = append(e.results[r.MerchantReference], r)
		e.raw = append(e.raw, m.Data())
		e.mu.Unlock()
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(cc.Stop)
}

// publish puts a request body on the request subject with its own
// Nats-Msg-Id, and returns its stream sequence.
func (e *env) publish(body []byte) uint64 {
	e.t.Helper()
	msg := nats.NewMsg(messages.SubjectChargeRequest)
	msg.Data = body
	msg.Header.Set(messages.HeaderMsgID, fmt.Sprintf("test-%d", time.Now().UnixNano()))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := e.js.PublishMsg(ctx, msg)
	if err != nil {
		e.t.Fatalf("publish: %v", err)
	}
	return ack.Sequence
}

// waitResults waits until ref has n results, and returns them.
func (e *env) waitResults(ref string, n int, within time.Duration) []messages.ChargeResult {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		e.mu.Lock()
		got := append([]messages.ChargeResult(nil), e.results[ref]...)
		e.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: %d results after %s, want %d", ref, len(got), within, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitSessionResults waits until ref has n session results, and returns them.
func (e *env) waitSessionResults(ref string, n int, within time.Duration) []messages.SessionResult {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		e.mu.Lock()
		got := append([]messages.SessionResult(nil), e.sessions[ref]...)
		e.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: %d session results after %s, want %d: %+v", ref, len(got), within, n, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// assertNoMoreSessionResults waits a little and asserts ref has exactly n.
func (e *env) assertNoMoreSessionResults(ref string, n int, wait time.Duration) {
	e.t.Helper()
	time.Sleep(wait)
	e.mu.Lock()
	defer e.mu.Unlock()
	if got := len(e.sessions[ref]); got != n {
		e.t.Fatalf("%s: %d session results, want exactly %d: %+v", ref, got, n, e.sessions[ref])
	}
}

// settle waits a little longer and asserts no further result arrives for ref.
func (e *env) assertNoMoreResults(ref string, n int, wait time.Duration) {
	e.t.Helper()
	time.Sleep(wait)
	e.mu.Lock()
	defer e.mu.Unlock()
	if got := len(e.results[ref]); got != n {
		e.t.Fatalf("%s: %d results, want exactly %d: %+v", ref, got, n, e.results[ref])
	}
}

// ledgerFor counts the sandbox's authorizations for ref.
func (e *env) ledgerFor(ref string) int {
	n := 0
	for _, c := range e.sandbox.Ledger() {
		if c.MerchantReference == ref {
			n++
		}
	}
	return n
}

// assertNoSecrets checks that no token or secret reached a result or a log line.
func (e *env) assertNoSecrets(secrets ...string) {
	e.t.Helper()
	e.mu.Lock()
	all := string(joinLines(e.raw))
	e.mu.Unlock()
	logs := e.logs.String()
	for _, s := range append(secrets, dinterotest.DefaultClientSecret, dinterotest.TokenAuthorized, dinterotest.TokenInsufficientFunds, dinterotest.TokenDoNotRetry) {
		if strings.Contains(all, s) {
			e.t.Errorf("a result contains %q", s)
		}
		if strings.Contains(logs, s) {
			e.t.Errorf("a log line contains %q", s)
		}
	}
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// chargeBodyWithTokenKind is a charge whose token is of the given kind.
func chargeBodyWithTokenKind(ref, provider, kind string) []byte {
	return fmt.Appendf(nil, `{"session":{"customer":{"tokens":{%q:{%q:"sandbox-ok-bad"}}},
  "order":{"amount":100,"currency":"NOK","merchant_reference":%q}},
  "payment":{"payment_product_type":%q,"operation":"unscheduled_purchase"}}`, provider, kind, ref, provider)
}

func joinLines(b [][]byte) []byte {
	var out []byte
	for _, l := range b {
		out = append(out, l...)
		out = append(out, '\n')
	}
	return out
}

// chargeBody builds a request body shaped like the "Use token" guide's.
func chargeBody(ref, provider, operation, token string, amount int64) []byte {
	kind := "payment_token"
	if provider == messages.ProductPayExCreditcard && operation == messages.OperationRecurringPurchase {
		kind = "recurrence_token"
	}
	return fmt.Appendf(nil, `{
  "session": {
    "url": {"callback_url": "https://example.com/callback?method=GET"},
    "customer": {"email": "john.doe@example.com", "phone_number": "+4799999999",
      "tokens": {%q: {%q: %q}}},
    "order": {"amount": %d, "currency": "NOK", "vat_amount": %d,
      "items": [{"line_id": "1", "description": "Stablestol", "quantity": 1, "amount": %d, "vat_amount": %d, "vat": 25}],
      "merchant_reference": %q},
    "configuration": {"auto_capture": false},
    "metadata": {"ext_test": "kept"}
  },
  "payment": {"payment_product_type": %q, "operation": %q}
}`, provider, kind, token, amount, amount/5, amount, amount/5, ref, provider, operation)
}

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
