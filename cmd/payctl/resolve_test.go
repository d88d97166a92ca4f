package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/idempotency/redistest"
	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/worker"
	"github.com/payworker/payworker/worker/natstest"
)

// outageGateway is Dintero during an outage (as in worker/unknown_test.go):
// a pay call still reaches it (the sandbox charges) but its answer is lost,
// and lookups fail. Off, it is the sandbox as it is.
type outageGateway struct {
	worker.Gateway
	down    atomic.Bool
	lookups atomic.Int64
	failGet atomic.Bool
}

var errLost = errors.New("connection reset after the request was sent")

func (g *outageGateway) PaySession(ctx context.Context, body []byte, opts ...dintero.CallOption) (*dintero.Transaction, error) {
	tx, err := g.Gateway.PaySession(ctx, body, opts...)
	if g.down.Load() {
		return nil, &dintero.Error{Op: dintero.OpPay, Kind: dintero.KindUnknownOutcome, Err: errLost}
	}
	return tx, err
}

func (g *outageGateway) TransactionsByMerchantReference(ctx context.Context, ref string) ([]dintero.Transaction, error) {
	g.lookups.Add(1)
	if g.down.Load() {
		return nil, &dintero.Error{Op: dintero.OpListTransactions, Kind: dintero.KindTransient, StatusCode: 503}
	}
	return g.Gateway.TransactionsByMerchantReference(ctx, ref)
}

func (g *outageGateway) GetTransaction(ctx context.Context, id string, includes ...string) (*dintero.Transaction, error) {
	if g.down.Load() || g.failGet.Load() {
		return nil, &dintero.Error{Op: dintero.OpGetTransaction, Kind: dintero.KindTransient, StatusCode: 503}
	}
	return g.Gateway.GetTransaction(ctx, id, includes...)
}

// CreateSessionProfile: during the outage the sandbox makes the session
// and its answer is lost.
func (g *outageGateway) CreateSessionProfile(ctx context.Context, body []byte, opts ...dintero.CallOption) (*dintero.SessionCreated, error) {
	sc, err := g.Gateway.CreateSessionProfile(ctx, body, opts...)
	if g.down.Load() {
		return nil, &dintero.Error{Op: dintero.OpCreateSession, Kind: dintero.KindUnknownOutcome, Err: errLost}
	}
	return sc, err
}

func (g *outageGateway) SessionsByMerchantReference(ctx context.Context, ref string) ([]dintero.Session, error) {
	if g.down.Load() {
		return nil, &dintero.Error{Op: dintero.OpListSessions, Kind: dintero.KindTransient, StatusCode: 503}
	}
	return g.Gateway.SessionsByMerchantReference(ctx, ref)
}

func (g *outageGateway) CancelSession(ctx context.Context, id string) (*dintero.Session, error) {
	if g.down.Load() {
		return nil, &dintero.Error{Op: dintero.OpCancelSession, Kind: dintero.KindTransient, StatusCode: 503}
	}
	return g.Gateway.CancelSession(ctx, id)
}

// parkEnv is a worker in process against real NATS and Redis and the
// Dintero sandbox behind an outageGateway, whose parked charges are looked
// up only an hour later: any lookup within a test is one payctl asked for.
type parkEnv struct {
	t        *testing.T
	ns       *natstest.Server
	js       jetstream.JetStream
	redisURL string
	sandbox  *dinterotest.Server
	gw       *outageGateway
	logs     *syncBuffer

	mu      sync.Mutex
	results map[string][]seenResult // by merchant_reference
}

type seenResult struct {
	seq    uint64 // the request's sequence, from the Nats-Msg-Id
	result messages.ChargeResult
}

func newParkEnv(t *testing.T) *parkEnv {
	t.Helper()
	e := &parkEnv{t: t, results: map[string][]seenResult{}, logs: &syncBuffer{}}
	e.ns = natstest.Start(t, natstest.Options{})
	_, e.js = e.ns.Connect(t)
	rs := redistest.Start(t, redistest.Options{})
	e.redisURL = rs.URL()
	e.sandbox = dinterotest.Start(t, dinterotest.Options{Seed: 1})
	client, err := dintero.New(dintero.Config{
		AccountID: dinterotest.DefaultAccountID, ClientID: dinterotest.DefaultClientID, ClientSecret: dinterotest.DefaultClientSecret,
		APIURL: e.sandbox.URL(), Timeout: time.Second,
		Retry: dintero.RetryConfig{InitialInterval: 10 * time.Millisecond, MaxInterval: 50 * time.Millisecond,
			MaxElapsedTime: 300 * time.Millisecond, MaxRetryAfter: 50 * time.Millisecond, MaxAttempts: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.gw = &outageGateway{Gateway: client}
	e.gw.down.Store(true)
	cfg := worker.Config{
		MaxInFlight: 32, AckWait: 2 * time.Second, MaxDeliver: 3,
		RetryDelay: 50 * time.Millisecond, MaxRetryDelay: 300 * time.Millisecond, ShutdownGrace: 5 * time.Second,
		ResolveSchedule: []time.Duration{time.Hour}, ReviewEvery: time.Hour,
		Logger: slog.New(slog.NewJSONHandler(e.logs, nil)),
	}
	ctx := context.Background()
	if err := worker.Setup(ctx, e.js, cfg); err != nil {
		t.Fatal(err)
	}
	store, err := idempotency.New(rs.Client(t), idempotency.Options{Lease: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, wjs := e.ns.Connect(t)
	w, err := worker.New(wjs, store, e.gw, cfg)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker.Run: %v", err)
		}
	})
	e.collect()
	return e
}

// collect follows every charge result for the whole test.
func (e *parkEnv) collect() {
	cons, err := e.js.OrderedConsumer(context.Background(), messages.StreamResults, jetstream.OrderedConsumerConfig{})
	if err != nil {
		e.t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var r messages.ChargeResult
		if err := json.Unmarshal(m.Data(), &r); err != nil {
			e.t.Errorf("result is not JSON: %v", err)
			return
		}
		e.mu.Lock()
		e.results[r.MerchantReference] = append(e.results[r.MerchantReference], seenResult{resultSequence(m.Headers().Get(messages.HeaderMsgID)), r})
		e.mu.Unlock()
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(cc.Stop)
}

// publish publishes a sample charge of ref (its card charged by the
// sandbox) with a Nats-Msg-Id of its own and returns its sequence.
func (e *parkEnv) publish(ref string) uint64 {
	e.t.Helper()
	body, err := sampleRequest(ref, 100, "NOK", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"4242")
	if err != nil {
		e.t.Fatal(err)
	}
	m := nats.NewMsg(messages.SubjectChargeRequest)
	m.Data = body
	m.Header.Set(messages.HeaderMsgID, fmt.Sprintf("%s-%d", ref, time.Now().UnixNano()))
	ack, err := e.js.PublishMsg(context.Background(), m)
	if err != nil {
		e.t.Fatal(err)
	}
	return ack.Sequence
}

// waitFor polls until cond holds over ref's results, and returns them.
func (e *parkEnv) waitFor(ref, what string, within time.Duration, cond func([]seenResult) bool) []seenResult {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		e.mu.Lock()
		got := append([]seenResult(nil), e.results[ref]...)
		e.mu.Unlock()
		if cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: no %s after %s; results %+v", ref, what, within, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// count counts ref's results with outcome o from request seq (any request
// when seq is 0).
func count(rs []seenResult, o messages.Outcome, seq uint64) int {
	n := 0
	for _, r := range rs {
		if r.result.Outcome == o && (seq == 0 || r.seq == seq) {
			n++
		}
	}
	return n
}

func finals(rs []seenResult) []seenResult {
	var out []seenResult
	for _, r := range rs {
		if r.result.Outcome.Final() {
			out = append(out, r)
		}
	}
	return out
}

// parkSession publishes a session request of ref and waits until it is
// parked (its unknown event).
func (e *parkEnv) parkSession(ref string) uint64 {
	e.t.Helper()
	body := fmt.Appendf(nil, `{"url": {"return_url": "https://example.com/thanks"},
  "order": {"amount": 100, "currency": "NOK", "merchant_reference": %q},
  "customer": {"tokens": {%q: {"payment_token": %q}}}, "profile_id": "default"}`,
		ref, messages.ProductBamboraCreditcard, dinterotest.TokenAuthorized+"4242")
	m := nats.NewMsg(messages.SubjectSessionRequest)
	m.Data = body
	m.Header.Set(messages.HeaderMsgID, fmt.Sprintf("%s-%d", ref, time.Now().UnixNano()))
	ack, err := e.js.PublishMsg(context.Background(), m)
	if err != nil {
		e.t.Fatal(err)
	}
	e.waitFor(ref, "unknown event", 20*time.Second, func(rs []seenResult) bool { return count(rs, messages.OutcomeUnknown, ack.Sequence) == 1 })
	return ack.Sequence
}

// park publishes a charge of ref and waits until it is parked (its
// unknown event).
func (e *parkEnv) park(ref string) uint64 {
	e.t.Helper()
	seq := e.publish(ref)
	e.waitFor(ref, "unknown event", 20*time.Second, func(rs []seenResult) bool { return count(rs, messages.OutcomeUnknown, seq) == 1 })
	return seq
}

func (e *parkEnv) ledgerFor(ref string) int {
	n := 0
	for _, c := range e.sandbox.Ledger() {
		if c.MerchantReference == ref {
			n++
		}
	}
	return n
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Issue 14: payctl resolve against a real worker: the lookup now, an
// operator's verdict, and Dintero's transaction winning over it.
func TestResolve(t *testing.T) {
	e := newParkEnv(t)
	ctx := context.Background()
	nats := []string{"--nats", e.ns.URL()}
	resolveCmd := func(args ...string) (string, string, error) {
		return runSplit(ctx, append(append([]string{"resolve"}, nats...), args...)...)
	}

	t.Run("nothing parked", func(t *testing.T) {
		_, _, err := resolveCmd("never-seen")
		if exitCode(err) != exitNotFound || !strings.Contains(err.Error(), "nothing is parked") {
			t.Fatalf("resolve of an unknown reference: exit %d (%v), want 3", exitCode(err), err)
		}
	})

	// A charge Dintero made whose answer was lost: parked; once Dintero
	// answers, resolve makes the lookup happen now instead of in an hour,
	// and the request ends succeeded, charged once.
	t.Run("lookup now", func(t *testing.T) {
		const ref = "resolve-now"
		e.gw.down.Store(true)
		seq := e.park(ref)
		if n := e.ledgerFor(ref); n != 1 {
			t.Fatalf("ledger %d, want the 1 charge Dintero made", n)
		}
		// status shows the record parked and its schedule an hour away.
		out, _, err := runSplit(ctx, append([]string{"status", "--redis", e.redisURL, ref, "--json"}, nats...)...)
		if err != nil {
			t.Fatal(err)
		}
		var st record
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status --json %q: %v", out, err)
		}
		if !st.Parked || len(st.Schedules) != 1 || st.Schedules[0].RequestSequence != seq || st.Schedules[0].Step != 1 ||
			st.Schedules[0].Due == nil || time.Until(*st.Schedules[0].Due) < 50*time.Minute {
			t.Fatalf("status of a parked reference: %s", out)
		}
		text, _, err := runSplit(ctx, append([]string{"status", "--redis", e.redisURL, ref}, nats...)...)
		if err != nil || !strings.Contains(text, "parked              true") || !strings.Contains(text, fmt.Sprintf("request #%d: lookup step 1 due", seq)) {
			t.Fatalf("status: %v\n%s", err, text)
		}

		// Without NATS, status still shows the record, and says why the
		// schedules are missing.
		out, _, err = runSplit(ctx, "status", "--redis", e.redisURL, ref, "--json", "--nats", "nats://"+closedPort(t))
		var noNATS record
		if err != nil || json.Unmarshal([]byte(out), &noNATS) != nil || !noNATS.Parked || len(noNATS.Schedules) != 0 || noNATS.SchedulesError == "" {
			t.Fatalf("status without NATS: %v %s", err, out)
		}

		e.gw.down.Store(false)
		start := time.Now()
		stdout, stderr, err := resolveCmd(ref, "--wait", "20s", "--json", "--by", "ops@example.com")
		if err != nil {
			t.Fatalf("resolve: %v\nstdout %s\nstderr %s", err, stdout, stderr)
		}
		var res resolveOutput
		if err := json.Unmarshal([]byte(stdout), &res); err != nil {
			t.Fatalf("resolve --json %q: %v", stdout, err)
		}
		var final messages.ChargeResult
		if len(res.Requests) == 1 {
			_ = json.Unmarshal(res.Requests[0].Result, &final)
		}
		if !res.Complete || len(res.Requests) != 1 || !res.Requests[0].Rescheduled || res.Requests[0].RequestSequence != seq ||
			final.Outcome != messages.OutcomeSucceeded || final.TransactionID == "" || res.Requests[0].VerdictOverridden {
			t.Fatalf("resolve --json: %s", stdout)
		}
		if !strings.Contains(stderr, "payctl resolve "+ref+": lookup now of 1 parked request(s), asked by ops@example.com") {
			t.Errorf("stderr %q lacks who asked", stderr)
		}
		t.Logf("final result %s after %s", final.Outcome, time.Since(start))
		got := e.waitFor(ref, "final", time.Second, func(rs []seenResult) bool { return len(finals(rs)) > 0 })
		if len(finals(got)) != 1 {
			t.Fatalf("results %+v, want one final", got)
		}
		if n := e.ledgerFor(ref); n != 1 {
			t.Fatalf("ledger %d charges for %s, want 1", n, ref)
		}
		if _, _, err := resolveCmd(ref); exitCode(err) != exitNotFound {
			t.Errorf("resolve of a finished reference: exit %d (%v), want 3", exitCode(err), err)
		}
	})

	// Nothing reached Dintero and the lookups keep failing: resolve gives
	// up as soon as the request is parked again (needs review, its next
	// lookup an hour away); a second request with the reference is parked
	// too. An operator's verdict then closes both, once Dintero answers
	// that it holds nothing.
	t.Run("parked again, then closed by an operator", func(t *testing.T) {
		const ref = "resolve-review"
		e.gw.down.Store(true)
		e.sandbox.SetFaults(dinterotest.Faults{ErrorRate: 1}) // nothing is charged
		first := e.park(ref)
		second := e.park(ref)

		start := time.Now()
		stdout, _, err := resolveCmd(ref, "--wait", "30s")
		if exitCode(err) != exitError || !strings.Contains(err.Error(), "no final result") {
			t.Fatalf("resolve while Dintero is down: exit %d (%v), want 1\n%s", exitCode(err), err, stdout)
		}
		t.Logf("payctl resolve %s --wait 30s (exit 1 after %s):\n%s%v", ref, time.Since(start).Round(time.Millisecond), stdout, err)
		if took := time.Since(start); took > 20*time.Second {
			t.Errorf("resolve waited %s: it should stop once both requests are parked again", took)
		}
		for _, seq := range []uint64{first, second} {
			if !strings.Contains(stdout, fmt.Sprintf("request #%d: lookup now", seq)) ||
				!strings.Contains(stdout, fmt.Sprintf("request #%d: the lookup did not settle it", seq)) {
				t.Errorf("stdout lacks request #%d's lookup or its parking again:\n%s", seq, stdout)
			}
		}
		rs := e.waitFor(ref, "needs_review events", 5*time.Second, func(rs []seenResult) bool {
			return count(rs, messages.OutcomeNeedsReview, first) == 1 && count(rs, messages.OutcomeNeedsReview, second) == 1
		})
		if len(finals(rs)) != 0 {
			t.Fatalf("a final result while Dintero could not answer: %+v", rs)
		}

		// Usage errors, before anything is published.
		for _, args := range [][]string{{ref, "--as", "succeeded", "--why", "x"}, {ref, "--as", "declined"}, {}, {ref, "other"}} {
			if _, _, err := resolveCmd(args...); exitCode(err) != exitUsage {
				t.Errorf("resolve %v: exit %d (%v), want 2", args, exitCode(err), err)
			}
		}

		e.sandbox.SetFaults(dinterotest.Faults{})
		e.gw.down.Store(false)
		const why = "no payment in the backoffice"
		stdout, stderr, err := resolveCmd(ref, "--as", "declined", "--by", "ops@example.com", "--why", why, "--wait", "20s")
		if err != nil {
			t.Fatalf("resolve --as declined: %v\n%s\n%s", err, stdout, stderr)
		}
		t.Logf("payctl resolve %s --as declined ...:\n%s%s", ref, stderr, stdout)
		if !strings.Contains(stderr, "asked by ops@example.com: "+why+"; verdict declined unless Dintero shows a transaction") {
			t.Errorf("stderr %q lacks who and why", stderr)
		}
		if strings.Count(stdout, ": declined") != 2 || strings.Contains(stdout, "overrode") {
			t.Errorf("stdout, want two declined results:\n%s", stdout)
		}
		rs = e.waitFor(ref, "final results", time.Second, func(rs []seenResult) bool { return len(finals(rs)) >= 2 })
		fs := finals(rs)
		if len(fs) != 2 || fs[0].seq == fs[1].seq {
			t.Fatalf("finals %+v, want one for each request", fs)
		}
		closedBy := 0
		for _, f := range fs {
			if f.result.Outcome != messages.OutcomeDeclined {
				t.Errorf("final %+v, want declined", f)
			}
			if f.result.Error != nil && f.result.Error.Code == messages.CodeClosedByOperator {
				closedBy++
				if !strings.Contains(f.result.Error.Message, "ops@example.com") || !strings.Contains(f.result.Error.Message, why) {
					t.Errorf("closed_by_operator message %q lacks who and why", f.result.Error.Message)
				}
			}
		}
		if closedBy == 0 {
			t.Errorf("no final result says closed_by_operator: %+v", fs)
		}
		if !strings.Contains(e.logs.String(), "closed by an operator") {
			t.Errorf("the worker did not log the operator's verdict")
		}
		if n := e.ledgerFor(ref); n != 0 {
			t.Fatalf("ledger %d, want 0", n)
		}
	})

	// The operator says failed, but Dintero did charge: the transaction
	// wins, and resolve says so.
	t.Run("Dintero overrides the verdict", func(t *testing.T) {
		const ref = "resolve-override"
		e.gw.down.Store(true)
		seq := e.park(ref)
		e.gw.down.Store(false)
		stdout, _, err := resolveCmd(ref, "--as", "failed", "--why", "backoffice shows nothing", "--wait", "20s")
		if err != nil {
			t.Fatalf("resolve: %v\n%s", err, stdout)
		}
		t.Logf("payctl resolve %s --as failed ...:\n%s", ref, stdout)
		want := fmt.Sprintf("request #%d: Dintero's transaction overrode the verdict failed: the final outcome is succeeded", seq)
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
		rs := e.waitFor(ref, "final result", time.Second, func(rs []seenResult) bool { return len(finals(rs)) > 0 })
		if fs := finals(rs); len(fs) != 1 || fs[0].result.Outcome != messages.OutcomeSucceeded {
			t.Fatalf("finals %+v, want one succeeded", fs)
		}
		if n := e.ledgerFor(ref); n != 1 {
			t.Fatalf("ledger %d, want 1", n)
		}
	})
	// A session request whose creation's answer was lost in an outage is
	// parked like a charge: status --session shows its schedule, resolve
	// refuses to close it as declined, and once Dintero answers, resolve
	// makes the lookup happen now: created, with the one session live.
	t.Run("a parked session request", func(t *testing.T) {
		const ref = "resolve-session"
		e.gw.down.Store(true)
		seq := e.parkSession(ref)
		out, _, err := runSplit(ctx, append([]string{"status", "--session", "--redis", e.redisURL, ref, "--json"}, nats...)...)
		var st record
		if err != nil || json.Unmarshal([]byte(out), &st) != nil || !st.Parked || len(st.Schedules) != 1 ||
			st.Schedules[0].RequestSequence != seq || st.Schedules[0].Kind != messages.KindSession {
			t.Fatalf("status --session of a parked session request: %v\n%s", err, out)
		}
		if _, _, err := resolveCmd(ref, "--as", "declined", "--why", "x"); exitCode(err) != exitUsage || !strings.Contains(err.Error(), "session request") {
			t.Fatalf("resolve --as declined of a session: exit %d (%v), want 2", exitCode(err), err)
		}

		e.gw.down.Store(false)
		stdout, stderr, err := resolveCmd(ref, "--wait", "20s")
		if err != nil {
			t.Fatalf("resolve: %v\nstdout %s\nstderr %s", err, stdout, stderr)
		}
		t.Logf("payctl resolve %s --wait 20s:\n%s", ref, stdout)
		rs := e.waitFor(ref, "created result", time.Second, func(rs []seenResult) bool { return count(rs, messages.OutcomeCreated, seq) == 1 })
		created := rs[len(rs)-1].result
		if created.SessionID == "" || !strings.Contains(stdout, fmt.Sprintf("request #%d: created (session %s)", seq, created.SessionID)) {
			t.Fatalf("stdout lacks the created result %+v:\n%s", created, stdout)
		}
		live := 0
		for _, s := range e.sandbox.Sessions() {
			if s.MerchantReference == ref && s.State != dinterotest.SessionCancelled {
				live++
				if s.ID != created.SessionID {
					t.Errorf("session %s is live besides the one answered, %s", s.ID, created.SessionID)
				}
			}
		}
		if live != 1 {
			t.Errorf("%d live sessions for %s, want 1", live, ref)
		}
	})

	// Dintero lists a transaction for the reference but fetching it fails
	// for a moment: the verdict must not be applied, the request stays
	// parked.
	t.Run("a listed transaction that cannot be fetched is never contradicted", func(t *testing.T) {
		const ref = "resolve-unverified"
		e.gw.down.Store(true)
		e.park(ref)
		e.gw.down.Store(false)
		e.gw.failGet.Store(true)
		defer e.gw.failGet.Store(false)
		stdout, _, err := resolveCmd(ref, "--as", "failed", "--why", "backoffice shows nothing", "--wait", "10s")
		if exitCode(err) != exitError || !strings.Contains(stdout, "the lookup did not settle it") {
			t.Errorf("resolve --as failed: exit %d (%v), want 1 with the request parked again\n%s", exitCode(err), err, stdout)
		}
		// No failed result comes later either.
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			e.mu.Lock()
			rs := append([]seenResult(nil), e.results[ref]...)
			e.mu.Unlock()
			if count(rs, messages.OutcomeFailed, 0) != 0 {
				t.Fatalf("failed published for a reference Dintero charged (ledger %d): %+v", e.ledgerFor(ref), rs)
			}
		}
	})
}

// reschedule moves the schedule it read; when the schedule changed since
// (the worker parked the request again) it moves the new one, and when it
// fired meanwhile it brings nothing back. The other headers are kept.
func TestReschedule(t *testing.T) {
	ns := natstest.Start(t, natstest.Options{})
	_, js := ns.Connect(t)
	ctx := context.Background()
	if err := worker.Setup(ctx, js, worker.Config{}); err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, messages.StreamRequests)
	if err != nil {
		t.Fatal(err)
	}
	const ref = "resched-1"
	body, err := sampleRequest(ref, 100, "NOK", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, "sandbox-ok-1")
	if err != nil {
		t.Fatal(err)
	}
	subject := worker.ScheduleSubject(messages.KindCharge, ref, 42)
	const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	due := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	park := func(step int) uint64 {
		t.Helper()
		m := nats.NewMsg(subject)
		m.Data = body
		m.Header.Set(jetstream.ScheduleHeader, "@at "+due.Format(time.RFC3339))
		m.Header.Set(jetstream.ScheduleTargetHeader, messages.SubjectChargeRequest)
		m.Header.Set(worker.HeaderOriginSeq, "42")
		m.Header.Set(worker.HeaderOriginTime, "2025-01-02T03:04:05Z")
		m.Header.Set(worker.HeaderResolveStep, fmt.Sprint(step))
		m.Header.Set(messages.HeaderTraceparent, traceparent)
		ack, err := js.PublishMsg(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	park(1)
	found, err := schedulesOf(ctx, stream, messages.NamesFor(""), messages.KindCharge, ref)
	if err != nil || len(found) != 1 || found[0].RequestSequence != 42 || found[0].Step != 1 || found[0].Due == nil || !found[0].Due.Equal(due) {
		t.Fatalf("schedulesOf = %+v, %v", found, err)
	}
	if other, _ := schedulesOf(ctx, stream, messages.NamesFor(""), messages.KindCharge, "resched-2"); len(other) != 0 {
		t.Fatalf("schedules of another reference: %+v", other)
	}
	stale := found[0]
	newer := park(2) // the worker parked it again after schedulesOf read it

	v := verdict{as: messages.OutcomeDeclined, by: "ops", why: "checked"}
	r, err := reschedule(ctx, js, stream, stale, ref, v)
	if err != nil || !r.Rescheduled || r.Step != 2 || r.ScheduleSequence <= newer {
		t.Fatalf("reschedule of a stale read: %+v, %v", r, err)
	}
	// It is due now: it fires, its copy goes to payments.charge.request
	// (no worker takes it here) with the schedule's headers, and the
	// schedule is purged.
	var fired *jetstream.RawStreamMsg
	deadline := time.Now().Add(10 * time.Second)
	for fired == nil {
		if m, err := stream.GetLastMsgForSubject(ctx, messages.SubjectChargeRequest); err == nil {
			fired = m
		} else if time.Now().After(deadline) {
			t.Fatalf("the schedule due now did not fire: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	h := fired.Header
	if h.Get(worker.HeaderResolveStep) != "2" || h.Get(worker.HeaderOriginSeq) != "42" ||
		h.Get(worker.HeaderOriginTime) != "2025-01-02T03:04:05Z" || h.Get(messages.HeaderTraceparent) != traceparent ||
		h.Get(worker.HeaderResolveAs) != "declined" || h.Get(worker.HeaderResolvedBy) != "ops" || h.Get(worker.HeaderResolveWhy) != "checked" ||
		h.Get("Nats-Scheduler") != subject || string(fired.Data) != string(body) {
		t.Fatalf("the copy the schedule published: %v %s", h, fired.Data)
	}
	if time.Since(fired.Time) > 10*time.Second {
		t.Fatalf("the copy was published at %s, want now", fired.Time)
	}
	for {
		_, err := stream.GetLastMsgForSubject(ctx, subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the schedule was not purged after it fired: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A read from before it fired brings nothing back.
	gone := stale
	gone.ScheduleSequence = r.ScheduleSequence
	r, err = reschedule(ctx, js, stream, gone, ref, verdict{})
	if err != nil || r.Rescheduled {
		t.Fatalf("reschedule of a fired schedule: %+v, %v", r, err)
	}
	if _, err := stream.GetLastMsgForSubject(ctx, subject); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatalf("a fired schedule was brought back: %v", err)
	}
}

// watch --outcome takes the non-final events too: an operator follows
// needs_review.
func TestWatchNeedsReview(t *testing.T) {
	ns := natstest.Start(t, natstest.Options{})
	_, js := ns.Connect(t)
	ctx := context.Background()
	if err := worker.Setup(ctx, js, worker.Config{}); err != nil {
		t.Fatal(err)
	}
	for _, o := range []messages.Outcome{messages.OutcomeUnknown, messages.OutcomeNeedsReview} {
		m := nats.NewMsg(messages.ResultSubject(messages.KindCharge, o))
		m.Data = []byte(`{"merchant_reference":"w-` + string(o) + `","outcome":"` + string(o) + `"}`)
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(wctx, []string{"watch", "--nats", ns.URL(), "--all", "--outcome", "needs_review"}, lockedWriter{&mu, &out}, &bytes.Buffer{})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		s := out.String()
		mu.Unlock()
		if strings.Contains(s, "w-needs_review") {
			if strings.Contains(s, "w-unknown") {
				t.Fatalf("watch --outcome needs_review printed another outcome: %q", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("watch --outcome needs_review printed %q", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
