package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/idempotency/redistest"
	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/worker"
	"github.com/payworker/payworker/worker/natstest"
)

// Issue 13: every command takes --namespace (or PAYWORKER_NAMESPACE) and
// then works on that deployment's subjects, streams and Redis prefix only:
// beside it, a deployment in the default namespace on the same NATS and
// Redis is never touched.
func TestNamespaceEveryCommand(t *testing.T) {
	const ns = "acct2"
	names := messages.NamesFor(ns)
	srv := natstest.Start(t, natstest.Options{})
	_, js := srv.Connect(t)
	rs := redistest.Start(t, redistest.Options{})
	t.Setenv("NATS_URL", srv.URL())
	t.Setenv("REDIS_URL", rs.URL())
	t.Setenv("PAYWORKER_NAMESPACE", "")
	t.Setenv("PAYWORKER_IDEMPOTENCY_PREFIX", "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := worker.Setup(ctx, js, worker.Config{}); err != nil {
		t.Fatal(err)
	}

	// A worker in acct2 whose Dintero calls get no answer: its charges are
	// parked, looked up only an hour later.
	sandbox := dinterotest.Start(t, dinterotest.Options{Seed: 1})
	client, err := dintero.New(dintero.Config{
		AccountID: dinterotest.DefaultAccountID, ClientID: dinterotest.DefaultClientID, ClientSecret: dinterotest.DefaultClientSecret,
		APIURL: sandbox.URL(), Timeout: time.Second,
		Retry: dintero.RetryConfig{InitialInterval: 10 * time.Millisecond, MaxInterval: 50 * time.Millisecond,
			MaxElapsedTime: 300 * time.Millisecond, MaxRetryAfter: 50 * time.Millisecond, MaxAttempts: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	gw := &outageGateway{Gateway: client}
	gw.down.Store(true)
	cfg := worker.Config{Namespace: ns,
		MaxInFlight: 8, AckWait: 2 * time.Second, MaxDeliver: 3,
		RetryDelay: 50 * time.Millisecond, MaxRetryDelay: 300 * time.Millisecond, ShutdownGrace: 5 * time.Second,
		ResolveSchedule: []time.Duration{time.Hour}, ReviewEvery: time.Hour,
		Logger: slog.New(slog.DiscardHandler),
	}
	if err := worker.Setup(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	store, err := idempotency.New(rs.Client(t), idempotency.Options{Prefix: idempotency.NamespacePrefix(ns), Lease: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, wjs := srv.Connect(t)
	w, err := worker.New(wjs, store, gw, cfg)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("worker.Run: %v", err)
		}
	})

	// charge and session: to acct2's request subjects.
	out, _, err := runSplit(ctx, "charge", "--sample", "--ref", "ns-1", "--namespace", ns, "--json")
	var pub published
	if err != nil || json.Unmarshal([]byte(out), &pub) != nil || pub.Subject != names.SubjectChargeRequest || pub.Stream != names.StreamRequests {
		t.Fatalf("charge --namespace: %q, %v; want %s in %s", out, err, names.SubjectChargeRequest, names.StreamRequests)
	}
	t.Setenv("PAYWORKER_NAMESPACE", ns)
	out, _, err = runSplit(ctx, "session", "--sample", "--ref", "ns-s1", "--json")
	if err != nil || json.Unmarshal([]byte(out), &pub) != nil || pub.Subject != names.SubjectSessionRequest || pub.Stream != names.StreamRequests {
		t.Fatalf("session with PAYWORKER_NAMESPACE: %q, %v", out, err)
	}

	// status: the record under payworker:acct2:idem:, parked, with its
	// schedule in ACCT2_PAYMENT_REQUESTS.
	var rec record
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _, err = runSplit(ctx, "status", "ns-1", "--json")
		if err == nil && json.Unmarshal([]byte(out), &rec) == nil && rec.Parked && len(rec.Schedules) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status in %s: %q, %v; want parked with one schedule", ns, out, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if s := rec.Schedules[0].Subject; !strings.HasPrefix(s, "acct2.payworker.schedule.charge.") {
		t.Errorf("schedule subject %s, want acct2's", s)
	}
	if _, _, err := runSplit(ctx, "status", "ns-1", "--namespace", ""); exitCode(err) != exitNotFound {
		t.Errorf("status in the default namespace: %v, want not found", err)
	}

	// resolve: finds acct2's parked request; nothing is parked in the
	// default namespace.
	out, _, err = runSplit(ctx, "resolve", "ns-1", "--json")
	var res resolveOutput
	if err != nil || json.Unmarshal([]byte(out), &res) != nil || len(res.Requests) != 1 {
		t.Errorf("resolve in %s: %q, %v; want its one parked request", ns, out, err)
	}
	if _, _, err := runSplit(ctx, "resolve", "ns-1", "--namespace", ""); exitCode(err) != exitNotFound {
		t.Errorf("resolve in the default namespace: %v, want not found", err)
	}

	// watch: acct2's results (the unknown events of the parked charge and
	// of the parked session: Dintero answers nothing).
	wctx2, wcancel := context.WithTimeout(ctx, 2*time.Second)
	out, _, err = runSplit(wctx2, "watch", "--all")
	wcancel()
	if err != nil || !strings.Contains(out, names.ResultSubject(messages.KindCharge, messages.OutcomeUnknown)+" ") ||
		!strings.Contains(out, names.ResultSubject(messages.KindSession, messages.OutcomeUnknown)+" ") {
		t.Errorf("watch --all in %s: %q, %v", ns, out, err)
	}
	wctx2, wcancel = context.WithTimeout(ctx, time.Second)
	out, _, err = runSplit(wctx2, "watch", "--all", "--namespace", "")
	wcancel()
	if err != nil || out != "" {
		t.Errorf("watch --all in the default namespace: %q, %v; want nothing", out, err)
	}

	// dlq: list and replay acct2's dead letters, to acct2's subjects.
	body, err := sampleRequest("ns-dead", 100, "NOK", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, "sandbox-ok-1")
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(names.SubjectDeadLetters)
	m.Data = body
	m.Header.Set(messages.HeaderDeadReason, "test")
	m.Header.Set(messages.HeaderDeadSubject, names.SubjectChargeRequest)
	ack, err := js.PublishMsg(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err = runSplit(ctx, "dlq", "list", "--json")
	var letters []deadLetter
	if err != nil || json.Unmarshal([]byte(out), &letters) != nil || len(letters) != 1 || letters[0].MerchantReference != "ns-dead" {
		t.Errorf("dlq list in %s: %q, %v", ns, out, err)
	}
	if out, _, err := runSplit(ctx, "dlq", "list", "--json", "--namespace", ""); err != nil || strings.TrimSpace(out) != "[]" {
		t.Errorf("dlq list in the default namespace: %q, %v; want []", out, err)
	}
	out, _, err = runSplit(ctx, "dlq", "replay", fmt.Sprint(ack.Sequence), "--json")
	var rep replayed
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil || rep.Subject != names.SubjectChargeRequest || rep.Stream != names.StreamRequests {
		t.Errorf("dlq replay in %s: %q, %v", ns, out, err)
	}

	// token: the governor's keys under acct2's prefix.
	t.Setenv("DINTERO_ACCOUNT_ID", "T12345678")
	hash := worker.TokenHash(worker.DerivedTokenKey("T12345678"), "payex.creditcard", "tok-ns")
	if err := store.TokenBlock(ctx, hash, "DO_NOT_RETRY"); err != nil {
		t.Fatal(err)
	}
	var st tokenState
	out, _, err = runSplit(ctx, "token", "--json", "status", "payex.creditcard", "tok-ns")
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || !st.Blocked {
		t.Errorf("token status in %s: %q, %v; want blocked", ns, out, err)
	}
	if _, _, err := runSplit(ctx, "token", "--namespace", "", "status", "payex.creditcard", "tok-ns"); exitCode(err) != exitNotFound {
		t.Errorf("token status in the default namespace: %v, want not found", err)
	}

	// The default deployment's streams stayed empty.
	for _, name := range []string{messages.StreamRequests, messages.StreamResults, messages.StreamDeadLetters} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if s.CachedInfo().State.Msgs != 0 {
			t.Errorf("%s holds %d messages", name, s.CachedInfo().State.Msgs)
		}
	}

	// A namespace payworker would refuse is a usage error, before any
	// connection.
	for _, args := range [][]string{
		{"charge", "--sample", "--namespace", "Acct.2"}, {"watch", "--namespace", "Acct.2"},
		{"status", "x", "--namespace", "Acct.2"}, {"token", "--namespace", "Acct.2", "status", "p", "t"},
	} {
		if _, _, err := runSplit(ctx, args...); exitCode(err) != exitUsage || !strings.Contains(err.Error(), "--namespace") {
			t.Errorf("payctl %s: %v, want a usage error naming --namespace", strings.Join(args, " "), err)
		}
	}
}
