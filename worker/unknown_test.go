package worker_test

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/worker"
)

// outageGateway is Dintero during an outage: a pay call still reaches it
// (the sandbox charges) but its answer is lost, and lookups fail. Off, it
// is the sandbox as it is.
type outageGateway struct {
	worker.Gateway
	down    atomic.Bool
	lookups atomic.Int64
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
	if g.down.Load() {
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
	g.lookups.Add(1)
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

// newOutageEnv is a pipeline with few deliveries and a short resolution
// schedule, and Dintero down.
func newOutageEnv(t *testing.T) (*env, *outageGateway) {
	e := newEnv(t)
	e.cfg.MaxDeliver = 3
	e.cfg.ResolveSchedule = []time.Duration{2 * time.Second, 2 * time.Second}
	e.cfg.ReviewEvery = 2 * time.Second
	gw := &outageGateway{Gateway: e.client(time.Second)}
	gw.down.Store(true)
	return e, gw
}

// outcomes lists the outcomes of the events published for ref.
func outcomes(rs []messages.ChargeResult) []messages.Outcome {
	var out []messages.Outcome
	for _, r := range rs {
		out = append(out, r.Outcome)
	}
	return out
}

// Issue 14: a charge Dintero made but whose answer was lost, during an
// outage longer than the whole delivery backoff, is parked (one unknown
// event, never failed), survives a worker SIGKILL while parked, and is
// resolved to succeeded once Dintero answers; the card is charged once.
func TestChargedButUnansweredResolvedAfterOutage(t *testing.T) {
	e, gw := newOutageEnv(t)
	stop := e.startWorker(e.store(), gw)
	const ref = "outage-1"
	e.publish(chargeBody(ref, messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"1", 100))

	first := e.waitResults(ref, 1, 15*time.Second)[0]
	if first.Outcome != messages.OutcomeUnknown || first.Error == nil || first.Error.Code != messages.CodeOutcomeUnknown || first.NextCheckAt == nil {
		t.Fatalf("first event %+v; want unknown with outcome_unknown and next_check_at", first)
	}
	if n := e.ledgerFor(ref); n != 1 {
		t.Fatalf("ledger %d, want the 1 charge Dintero made", n)
	}
	// The record is parked: a new request with the reference is never
	// charged meanwhile.
	rec, err := e.store().Get(context.Background(), idempotency.ChargeKey(ref))
	if err != nil || !rec.Parked {
		t.Fatalf("record %+v, %v; want parked", rec, err)
	}
	// The worker dies while the request is parked; another one starts.
	stop()
	time.Sleep(3 * time.Second) // the first scheduled lookup comes and fails
	e.startWorker(e.store(), gw)
	time.Sleep(time.Second)
	gw.down.Store(false)

	got := e.waitResults(ref, 2, 20*time.Second)
	if got[1].Outcome != messages.OutcomeSucceeded || got[1].Duplicate || got[1].TransactionID == "" {
		t.Fatalf("events %v; the final one %+v, want succeeded, not duplicate", outcomes(got), got[1])
	}
	e.assertNoMoreResults(ref, 2, 3*time.Second)
	if n := e.ledgerFor(ref); n != 1 {
		t.Fatalf("ledger %d charges for %s, want 1", n, ref)
	}
}

// Issue 14: a request that never reached Dintero (every attempt refused
// before it was sent) still gets failed/gave_up after its deliveries; one
// that may have, and whose lookup then answers that Dintero holds nothing,
// gets failed/not_charged.
func TestFailedOnlyWhenDinteroHoldsNothing(t *testing.T) {
	e, gw := newOutageEnv(t)
	gw.down.Store(false)
	e.sandbox.SetFaults(dinterotest.Faults{RateLimitRate: 1, RetryAfter: time.Second})
	e.startWorker(e.store(), gw)
	e.publish(chargeBody("never-sent", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"1", 100))
	r := e.waitResults("never-sent", 1, 15*time.Second)[0]
	if r.Outcome != messages.OutcomeFailed || r.Error == nil || r.Error.Code != messages.CodeGaveUp {
		t.Fatalf("got %+v, want failed/gave_up", r)
	}

	// A pay call whose answer is lost but which Dintero never processed
	// (refused before charging): parked, then failed when a lookup answers.
	e.sandbox.SetFaults(dinterotest.Faults{ErrorRate: 1})
	gw.down.Store(true)
	e.publish(chargeBody("not-charged", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"2", 100))
	if r := e.waitResults("not-charged", 1, 15*time.Second)[0]; r.Outcome != messages.OutcomeUnknown {
		t.Fatalf("got %+v, want unknown", r)
	}
	gw.down.Store(false)
	e.sandbox.SetFaults(dinterotest.Faults{})
	got := e.waitResults("not-charged", 2, 15*time.Second)
	if f := got[1]; f.Outcome != messages.OutcomeFailed || f.Error == nil || f.Error.Code != messages.CodeNotCharged {
		t.Fatalf("final %+v, want failed/not_charged", f)
	}
	if n := e.ledgerFor("not-charged"); n != 0 {
		t.Fatalf("ledger %d, want 0", n)
	}
}

// Issue 14: when the whole schedule ends without an answer, a needs_review
// event follows the unknown one, the reference stays blocked, the lookups
// go on, and an operator's verdict (a schedule due now, as payctl resolve
// --as publishes it) gives the one final result, unless Dintero shows a
// transaction.
func TestNeedsReviewThenOperator(t *testing.T) {
	e, gw := newOutageEnv(t)
	e.sandbox.SetFaults(dinterotest.Faults{ErrorRate: 1}) // nothing is charged
	e.startWorker(e.store(), gw)
	const ref = "review-1"
	body := chargeBody(ref, messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"3", 100)
	seq := e.publish(body)
	got := e.waitResults(ref, 2, 25*time.Second)
	if got[0].Outcome != messages.OutcomeUnknown || got[1].Outcome != messages.OutcomeNeedsReview {
		t.Fatalf("events %v, want unknown then needs_review", outcomes(got))
	}
	// Another request with the reference is not charged: it is parked too.
	e.sandbox.SetFaults(dinterotest.Faults{})
	e.publish(body)
	time.Sleep(3 * time.Second)
	if n := e.ledgerFor(ref); n != 0 {
		t.Fatalf("ledger %d: a parked reference was charged", n)
	}

	// The operator closes it as declined, after checking the backoffice.
	m := nats.NewMsg(worker.ScheduleSubject(messages.KindCharge, ref, seq))
	m.Data = body
	m.Header.Set("Nats-Schedule", "@at "+time.Now().UTC().Format(time.RFC3339))
	m.Header.Set("Nats-Schedule-Target", messages.SubjectChargeRequest)
	m.Header.Set(worker.HeaderOriginSeq, strconv.FormatUint(seq, 10))
	m.Header.Set(worker.HeaderResolveStep, "9")
	m.Header.Set(worker.HeaderResolveAs, string(messages.OutcomeDeclined))
	m.Header.Set(worker.HeaderResolvedBy, "ops@example.com")
	m.Header.Set(worker.HeaderResolveWhy, "no payment in the backoffice")
	if _, err := e.js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		rs := e.waitResults(ref, 1, time.Second)
		var finals []messages.ChargeResult
		for _, r := range rs {
			if r.Outcome.Final() {
				finals = append(finals, r)
			}
		}
		if len(finals) > 0 {
			f := finals[0]
			if f.Outcome != messages.OutcomeDeclined || f.Error == nil || f.Error.Code != messages.CodeClosedByOperator || f.Duplicate {
				t.Fatalf("final %+v, want declined/closed_by_operator", f)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no final result; events %v", outcomes(rs))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
