package worker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/worker"
)

var (
	providers  = []string{messages.ProductPayExCreditcard, messages.ProductBamboraCreditcard, messages.ProductDinteroPSPCreditcard}
	operations = []string{messages.OperationRecurringPurchase, messages.OperationUnscheduledPurchase}
)

func TestSixGuideBodiesChargedOnce(t *testing.T) {
	e := newEnv(t)
	gw := e.client(5 * time.Second)
	e.startWorker(e.store(), gw)
	var refs []string
	for _, p := range providers {
		for _, op := range operations {
			ref := "guide-" + p + "-" + op
			refs = append(refs, ref)
			e.publish(chargeBody(ref, p, op, dinterotest.TokenAuthorized+"4242", 29990))
		}
	}
	ledger := map[string]dinterotest.Charge{}
	for _, c := range e.sandbox.Ledger() {
		ledger[c.MerchantReference] = c
	}
	for _, ref := range refs {
		t.Run(ref, func(t *testing.T) {
			r := e.waitResults(ref, 1, 10*time.Second)[0]
			if r.Outcome != messages.OutcomeSucceeded || r.Status != dintero.StatusAuthorized {
				t.Fatalf("outcome %s status %s, want succeeded AUTHORIZED (error %+v)", r.Outcome, r.Status, r.Error)
			}
			if r.TransactionID == "" || r.SessionID == "" {
				t.Errorf("result lacks transaction or session id: %+v", r)
			}
			if r.Amount != 29990 || r.Currency != "NOK" || r.Attempts != 1 || r.Duplicate || r.Error != nil {
				t.Errorf("unexpected result fields: %+v", r)
			}
			if n := e.ledgerFor(ref); n != 1 {
				t.Errorf("ledger has %d charges, want 1", n)
			}
		})
	}
	for _, c := range e.sandbox.Ledger() {
		ledger[c.MerchantReference] = c
	}
	for _, ref := range refs {
		r := e.waitResults(ref, 1, time.Second)[0]
		c := ledger[ref]
		if c.TransactionID != r.TransactionID || c.PaymentProductType != r.PaymentProductType || c.Operation != r.Operation {
			t.Errorf("%s: result %+v disagrees with ledger %+v", ref, r, c)
		}
	}
	// The worker logged at debug level all along: no card token, client
	// secret or access token may be in a log line or a result.
	accessToken, err := gw.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.assertNoSecrets("4242", accessToken)
}

func TestDuplicateAnsweredFromRecord(t *testing.T) {
	e := newEnv(t)
	e.startWorker(e.store(), e.client(5*time.Second))
	body := chargeBody("dup-1", messages.ProductBamboraCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"1", 1000)
	e.publish(body)
	first := e.waitResults("dup-1", 1, 10*time.Second)[0]
	e.publish(body)
	got := e.waitResults("dup-1", 2, 10*time.Second)
	second := got[1]
	if !second.Duplicate || first.Duplicate {
		t.Fatalf("duplicate flags: first %v second %v, want false, true", first.Duplicate, second.Duplicate)
	}
	if second.TransactionID != first.TransactionID || second.Outcome != messages.OutcomeSucceeded {
		t.Fatalf("duplicate answered %+v, want the first result %+v", second, first)
	}
	if n := e.ledgerFor("dup-1"); n != 1 {
		t.Fatalf("ledger has %d charges for dup-1, want 1", n)
	}
	if n := e.sandbox.Counters().PayRequests; n != 1 {
		t.Fatalf("Dintero got %d pay calls, want 1", n)
	}
	e.assertNoMoreResults("dup-1", 2, 300*time.Millisecond)
}

func TestConflictingBodyRejected(t *testing.T) {
	e := newEnv(t)
	e.startWorker(e.store(), e.client(5*time.Second))
	e.publish(chargeBody("conf-1", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"1", 1000))
	e.waitResults("conf-1", 1, 10*time.Second)
	e.publish(chargeBody("conf-1", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"1", 2000))
	r := e.waitResults("conf-1", 2, 10*time.Second)[1]
	if r.Outcome != messages.OutcomeRejected || r.Error == nil || r.Error.Code != messages.CodeConflict {
		t.Fatalf("conflict answered %+v, want rejected/conflict", r)
	}
	if r.Amount != 2000 {
		t.Errorf("conflict result names amount %d, want the conflicting request's 2000", r.Amount)
	}
	if n := e.ledgerFor("conf-1"); n != 1 {
		t.Fatalf("ledger has %d charges, want 1", n)
	}
	e.assertDeadLetters(1, "conflict")
}

func TestBadInputRejectedWithoutDintero(t *testing.T) {
	e := newEnv(t)
	e.startWorker(e.store(), e.client(5*time.Second))
	cases := []struct {
		name, ref, field string
		body             []byte
	}{
		{"not json", "", "body", []byte("not json")},
		{"float amount", "bad-float", "session.order.amount",
			[]byte(`{"session":{"order":{"amount":10.5,"currency":"NOK","merchant_reference":"bad-float"}},"payment":{"payment_product_type":"payex.creditcard","operation":"unscheduled_purchase"}}`)},
		{"wrong token kind", "bad-kind", "session.customer.tokens.bambora.creditcard.recurrence_token",
			chargeBodyWithTokenKind("bad-kind", messages.ProductBamboraCreditcard, "recurrence_token")},
	}
	for _, c := range cases {
		e.publish(c.body)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.waitResults(c.ref, 1, 10*time.Second)[0]
			if r.Outcome != messages.OutcomeRejected || r.Error == nil || r.Error.Code != messages.CodeInvalidRequest {
				t.Fatalf("got %+v, want rejected invalid_request", r)
			}
			if !slices.ContainsFunc(r.Error.Fields, func(f messages.FieldError) bool { return f.Field == c.field }) {
				t.Fatalf("error fields %+v do not name %s", r.Error.Fields, c.field)
			}
		})
	}
	if n := e.sandbox.Counters().PayRequests; n != 0 {
		t.Fatalf("Dintero got %d pay calls for bad input, want 0", n)
	}
	e.assertDeadLetters(len(cases), "invalid request")
	e.assertNoSecrets("sandbox-ok-bad")
}

func TestDeclinesAreFinal(t *testing.T) {
	e := newEnv(t)
	e.startWorker(e.store(), e.client(5*time.Second))
	cases := []struct {
		token, retryCode, errType string
	}{
		{dinterotest.TokenInsufficientFunds + "1", dintero.RetryAfterDelay, "INSUFFICIENT_FUNDS"},
		{dinterotest.TokenDoNotRetry + "1", dintero.RetryDoNotRetry, "DECLINED"},
		{dinterotest.TokenExpiredCard + "1", dintero.RetryDoNotRetry, "EXPIRED_CARD"},
	}
	for i, c := range cases {
		e.publish(chargeBody(fmt.Sprintf("decl-%d", i), messages.ProductDinteroPSPCreditcard, messages.OperationUnscheduledPurchase, c.token, 500))
	}
	for i, c := range cases {
		t.Run(c.errType, func(t *testing.T) {
			r := e.waitResults(fmt.Sprintf("decl-%d", i), 1, 10*time.Second)[0]
			if r.Outcome != messages.OutcomeDeclined || r.Error == nil {
				t.Fatalf("got %+v, want declined", r)
			}
			if !slices.Contains(r.Error.RetryCodes, c.retryCode) || !slices.Contains(r.Error.Types, c.errType) {
				t.Fatalf("error %+v, want retry code %s and type %s", r.Error, c.retryCode, c.errType)
			}
		})
	}
	// A declined reference is final: the same request again is answered
	// from the record, not sent to the card again.
	before := e.sandbox.Counters().PayRequests
	e.publish(chargeBody("decl-0", messages.ProductDinteroPSPCreditcard, messages.OperationUnscheduledPurchase, cases[0].token, 500))
	r := e.waitResults("decl-0", 2, 10*time.Second)[1]
	if !r.Duplicate || r.Outcome != messages.OutcomeDeclined {
		t.Fatalf("repeat of a declined request answered %+v", r)
	}
	if after := e.sandbox.Counters().PayRequests; after != before {
		t.Fatalf("a declined reference was sent to Dintero again (%d → %d pay calls)", before, after)
	}
	e.assertNoSecrets()
}

func TestTransientFailuresRetriedToSuccess(t *testing.T) {
	cases := []struct {
		name   string
		faults dinterotest.Faults
		fired  func(dinterotest.Counters) int64
	}{
		{"5xx", dinterotest.Faults{ErrorRate: 1}, func(c dinterotest.Counters) int64 { return c.FaultErrors }},
		{"429", dinterotest.Faults{RateLimitRate: 1, RetryAfter: time.Second}, func(c dinterotest.Counters) int64 { return c.FaultRateLimits }},
		{"reset", dinterotest.Faults{ResetRate: 1}, func(c dinterotest.Counters) int64 { return c.FaultResets }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.sandbox.SetFaults(c.faults)
			e.startWorker(e.store(), e.client(2*time.Second))
			e.publish(chargeBody("transient", messages.ProductPayExCreditcard, messages.OperationRecurringPurchase, dinterotest.TokenAuthorized+"1", 700))
			waitFor(t, 10*time.Second, func() bool { return c.fired(e.sandbox.Counters()) >= 2 })
			e.sandbox.SetFaults(dinterotest.Faults{})
			r := e.waitResults("transient", 1, 15*time.Second)[0]
			if r.Outcome != messages.OutcomeSucceeded {
				t.Fatalf("got %+v, want succeeded", r)
			}
			if n := e.ledgerFor("transient"); n != 1 {
				t.Fatalf("ledger has %d charges, want 1", n)
			}
			e.assertNoMoreResults("transient", 1, 300*time.Millisecond)
		})
	}
}

func TestTimeoutAfterChargeResolvedByLookup(t *testing.T) {
	e := newEnv(t)
	e.sandbox.SetFaults(dinterotest.Faults{TimeoutAfterChargeRate: 1})
	e.startWorker(e.store(), e.client(300*time.Millisecond))
	e.publish(chargeBody("ambiguous", messages.ProductBamboraCreditcard, messages.OperationRecurringPurchase, dinterotest.TokenAuthorized+"1", 900))
	r := e.waitResults("ambiguous", 1, 10*time.Second)[0]
	if r.Outcome != messages.OutcomeSucceeded || r.TransactionID == "" {
		t.Fatalf("got %+v, want succeeded with the transaction found by lookup", r)
	}
	c := e.sandbox.Counters()
	if c.PayRequests != 1 || c.FaultTimeoutsAfterCharge != 1 {
		t.Fatalf("pay calls %d (timeouts %d), want exactly 1: the lookup must stop a second charge", c.PayRequests, c.FaultTimeoutsAfterCharge)
	}
	if n := e.ledgerFor("ambiguous"); n != 1 {
		t.Fatalf("ledger has %d charges, want 1", n)
	}
}

// TestWorkerDiesBetweenChargeAndAck stops a worker right after Dintero
// charged: it never stores the result, publishes or acks, and its claim
// stops being renewed. A second worker must pick the message up and answer
// it without charging again.
func TestWorkerDiesBetweenChargeAndAck(t *testing.T) {
	e := newEnv(t)
	dead := make(chan struct{})
	var once sync.Once
	dying := &dyingGateway{Gateway: e.client(5 * time.Second), dead: dead, die: func() { once.Do(func() { close(dead) }) }}
	stopA, ncA := e.startWorkerConn(&deadStore{Store: e.store(), dead: dead}, dying)
	e.publish(chargeBody("crash-1", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"1", 1200))
	select {
	case <-dead:
	case <-time.After(10 * time.Second):
		t.Fatal("worker A never charged")
	}
	if n := e.ledgerFor("crash-1"); n != 1 {
		t.Fatalf("ledger has %d charges after worker A, want 1", n)
	}
	// A is gone: no more heartbeats reach NATS or Redis.
	ncA.Close()
	go stopA()
	e.startWorker(e.store(), e.client(5*time.Second))
	r := e.waitResults("crash-1", 1, 20*time.Second)[0]
	if r.Outcome != messages.OutcomeSucceeded || r.Duplicate {
		t.Fatalf("got %+v, want succeeded (the original request's own result)", r)
	}
	if r.Attempts != 2 {
		t.Errorf("attempts %d, want 2 (the dead claim and the recovery)", r.Attempts)
	}
	if c := e.sandbox.Counters(); c.PayRequests != 1 || e.ledgerFor("crash-1") != 1 {
		t.Fatalf("pay calls %d, ledger %d: want exactly one charge", c.PayRequests, e.ledgerFor("crash-1"))
	}
	e.assertNoMoreResults("crash-1", 1, 500*time.Millisecond)
}

func TestTwoWorkersShareTheConsumer(t *testing.T) {
	e := newEnv(t)
	e.startWorker(e.store(), e.client(5*time.Second))
	e.startWorker(e.store(), e.client(5*time.Second))
	const n = 300
	for i := range n {
		p, op := providers[i%3], operations[i%2]
		body := chargeBody(fmt.Sprintf("pair-%d", i), p, op, dinterotest.TokenAuthorized+"1", int64(100+i))
		e.publish(body)
		if i%10 == 0 { // some requests twice, as a retrying publisher would
			e.publish(body)
		}
	}
	for i := range n {
		ref := fmt.Sprintf("pair-%d", i)
		want := 1
		if i%10 == 0 {
			want = 2
		}
		got := e.waitResults(ref, want, 20*time.Second)
		for _, r := range got {
			if r.Outcome != messages.OutcomeSucceeded {
				t.Fatalf("%s: %+v", ref, r)
			}
		}
		if e.ledgerFor(ref) != 1 {
			t.Fatalf("%s charged %d times", ref, e.ledgerFor(ref))
		}
	}
	if l := len(e.sandbox.Ledger()); l != n {
		t.Fatalf("ledger has %d charges, want %d", l, n)
	}
}

func TestPanicInHandlerDoesNotStopWorker(t *testing.T) {
	e := newEnv(t)
	var panicked atomic.Bool
	gw := &panickyGateway{Gateway: e.client(5 * time.Second), panicked: &panicked}
	e.startWorker(e.store(), gw)
	e.publish(chargeBody("panic-1", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"1", 100))
	e.publish(chargeBody("panic-2", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"1", 100))
	for _, ref := range []string{"panic-1", "panic-2"} {
		if r := e.waitResults(ref, 1, 15*time.Second)[0]; r.Outcome != messages.OutcomeSucceeded {
			t.Fatalf("%s: %+v", ref, r)
		}
	}
	if !panicked.Load() {
		t.Fatal("the gateway never panicked; the test proves nothing")
	}
}

func TestGivesUpAfterMaxDeliver(t *testing.T) {
	e := newEnv(t)
	e.cfg.MaxDeliver = 3
	e.sandbox.SetFaults(dinterotest.Faults{RateLimitRate: 1, RetryAfter: time.Second})
	e.startWorker(e.store(), e.client(time.Second))
	e.publish(chargeBody("giveup", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"1", 100))
	r := e.waitResults("giveup", 1, 15*time.Second)[0]
	if r.Outcome != messages.OutcomeFailed || r.Error == nil || r.Error.Code != messages.CodeGaveUp {
		t.Fatalf("got %+v, want failed/gave_up", r)
	}
	e.assertDeadLetters(1, "")
	// A failed reference may be tried again, and is looked up first.
	e.sandbox.SetFaults(dinterotest.Faults{})
	e.publish(chargeBody("giveup", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"1", 100))
	r = e.waitResults("giveup", 2, 15*time.Second)[1]
	if r.Outcome != messages.OutcomeSucceeded || r.Duplicate {
		t.Fatalf("retry after failure: %+v, want a fresh success", r)
	}
	if n := e.ledgerFor("giveup"); n != 1 {
		t.Fatalf("ledger has %d charges, want 1", n)
	}
}

// assertDeadLetters checks the dead-letter stream holds n requests whose
// reason contains reason.
func (e *env) assertDeadLetters(n int, reason string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var msgs []jetstream.Msg
	waitFor(e.t, 5*time.Second, func() bool {
		s, err := e.js.Stream(ctx, messages.StreamDeadLetters)
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs >= uint64(n)
	})
	s, _ := e.js.Stream(ctx, messages.StreamDeadLetters)
	for seq := uint64(1); len(msgs) < n; seq++ {
		raw, err := s.GetMsg(ctx, seq)
		if err != nil {
			e.t.Fatalf("dead letter %d: %v", seq, err)
		}
		got := raw.Header.Get(messages.HeaderDeadReason)
		if got == "" || (reason != "" && !containsFold(got, reason)) {
			e.t.Errorf("dead letter %d reason %q, want it to mention %q", seq, got, reason)
		}
		if raw.Header.Get(messages.HeaderDeadSubject) != messages.SubjectChargeRequest {
			e.t.Errorf("dead letter %d subject header %q", seq, raw.Header.Get(messages.HeaderDeadSubject))
		}
		msgs = append(msgs, nil)
	}
}

func waitFor(t testing.TB, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dyingGateway charges, then plays dead: it never returns until the
// worker's context ends.
type dyingGateway struct {
	worker.Gateway
	dead <-chan struct{}
	die  func()
}

func (g *dyingGateway) PaySession(ctx context.Context, body []byte, opts ...dintero.CallOption) (*dintero.Transaction, error) {
	if _, err := g.Gateway.PaySession(ctx, body, opts...); err != nil {
		return nil, err
	}
	g.die()
	<-ctx.Done()
	return nil, ctx.Err()
}

// deadStore stops renewing and completing claims once the worker is dead.
type deadStore struct {
	*idempotency.Store
	dead <-chan struct{}
}

var errDead = errors.New("worker is dead")

func (s *deadStore) Extend(ctx context.Context, ref idempotency.Key, token string) error {
	select {
	case <-s.dead:
		return errDead
	default:
		return s.Store.Extend(ctx, ref, token)
	}
}

func (s *deadStore) Complete(ctx context.Context, ref idempotency.Key, token string, seq uint64, result []byte, reopenable bool) error {
	select {
	case <-s.dead:
		return errDead
	default:
		return s.Store.Complete(ctx, ref, token, seq, result, reopenable)
	}
}

func (s *deadStore) Release(ctx context.Context, ref idempotency.Key, token string, maybeSent bool) error {
	select {
	case <-s.dead:
		return errDead
	default:
		return s.Store.Release(ctx, ref, token, maybeSent)
	}
}

// panickyGateway panics on its first call.
type panickyGateway struct {
	worker.Gateway
	panicked *atomic.Bool
}

func (g *panickyGateway) PaySession(ctx context.Context, body []byte, opts ...dintero.CallOption) (*dintero.Transaction, error) {
	if g.panicked.CompareAndSwap(false, true) {
		panic("boom")
	}
	return g.Gateway.PaySession(ctx, body, opts...)
}

func TestDinteroRefusalRejectedAndDeadLettered(t *testing.T) {
	e := newEnv(t)
	e.startWorker(e.store(), e.client(5*time.Second))
	e.publish(chargeBody("refused-1", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, "unknown-card-token", 100))
	r := e.waitResults("refused-1", 1, 10*time.Second)[0]
	if r.Outcome != messages.OutcomeRejected || r.Error == nil || r.Error.Code != "INVALID_PAYMENT_TOKEN" {
		t.Fatalf("got %+v, want rejected with Dintero's code", r)
	}
	if e.ledgerFor("refused-1") != 0 {
		t.Fatal("a refused request was charged")
	}
	e.assertDeadLetters(1, "rejected")
	e.assertNoSecrets("unknown-card-token")
}
