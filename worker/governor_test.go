package worker_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/worker"
)

// withGovernor turns the token governor on for e's workers.
func withGovernor(e *env) {
	e.cfg.Tokens = e.store()
	e.cfg.TokenKey = []byte("test-token-key-0123456789")
}

// Issue 15: a token declined with DO_NOT_RETRY (or a decline no retry can
// fix) under one reference is blocked for every later reference: those are
// answered declined/token_blocked with DO_NOT_RETRY, and Dintero is not
// called. Another token is not affected.
func TestBlockedTokenNeverChargedAgain(t *testing.T) {
	for _, token := range []string{dinterotest.TokenDoNotRetry + "1", dinterotest.TokenClosedAccount + "1",
		dinterotest.TokenPickUpCard + "1", dinterotest.TokenRestrictedCard + "1", dinterotest.TokenExpiredCard + "1"} {
		t.Run(token, func(t *testing.T) {
			e := newEnv(t)
			withGovernor(e)
			e.startWorker(e.store(), e.client(5*time.Second))
			e.publish(chargeBody("first", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, token, 100))
			if r := e.waitResults("first", 1, 10*time.Second)[0]; r.Outcome != messages.OutcomeDeclined {
				t.Fatalf("first charge %+v, want declined", r)
			}
			pays := e.sandbox.Counters().PayRequests
			for i := range 3 {
				ref := fmt.Sprint("later-", i)
				e.publish(chargeBody(ref, messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, token, 100))
				r := e.waitResults(ref, 1, 10*time.Second)[0]
				if r.Outcome != messages.OutcomeDeclined || r.Error == nil || r.Error.Code != messages.CodeTokenBlocked ||
					!slices.Equal(r.Error.RetryCodes, []string{dintero.RetryDoNotRetry}) {
					t.Fatalf("%s: %+v; want declined/token_blocked with DO_NOT_RETRY", ref, r)
				}
			}
			if got := e.sandbox.Counters().PayRequests; got != pays {
				t.Fatalf("%d pay calls for a blocked token, want 0", got-pays)
			}
			// The same card under another provider is another token.
			e.publish(chargeBody("other", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"1", 100))
			if r := e.waitResults("other", 1, 10*time.Second)[0]; r.Outcome != messages.OutcomeSucceeded {
				t.Fatalf("another token: %+v", r)
			}
			e.assertNoSecrets(token)
		})
	}
}

// Issue 15: the 11th declined attempt of one token within 24 hours is not
// sent: declined/retry_limit_reached, with retry_after a day after the
// first decline. A token's success clears its count.
func TestAttemptBudgetPerToken(t *testing.T) {
	e := newEnv(t)
	withGovernor(e)
	e.startWorker(e.store(), e.client(5*time.Second))
	token := dinterotest.TokenDeclinedNoPolicy + "budget"
	start := time.Now()
	for i := range 10 {
		ref := fmt.Sprint("budget-", i)
		e.publish(chargeBody(ref, messages.ProductBamboraCreditcard, messages.OperationUnscheduledPurchase, token, 100))
		if r := e.waitResults(ref, 1, 10*time.Second)[0]; r.Outcome != messages.OutcomeDeclined || r.Error.Code == messages.CodeRetryLimitReached {
			t.Fatalf("attempt %d: %+v, want Dintero's decline", i+1, r)
		}
	}
	pays := e.sandbox.Counters().PayRequests
	e.publish(chargeBody("budget-10", messages.ProductBamboraCreditcard, messages.OperationUnscheduledPurchase, token, 100))
	r := e.waitResults("budget-10", 1, 10*time.Second)[0]
	if r.Outcome != messages.OutcomeDeclined || r.Error == nil || r.Error.Code != messages.CodeRetryLimitReached || r.Error.RetryAfter == nil {
		t.Fatalf("11th attempt: %+v; want declined/retry_limit_reached with retry_after", r)
	}
	if d := r.Error.RetryAfter.Sub(start); d < 24*time.Hour-time.Minute || d > 24*time.Hour+time.Minute {
		t.Errorf("retry_after is %s after the first decline, want 24h", d)
	}
	if got := e.sandbox.Counters().PayRequests; got != pays {
		t.Fatalf("the 11th attempt was sent (%d pay calls)", got-pays)
	}
}

// Issues 14 and 15: a DO_NOT_RETRY decline whose answer was lost (an
// outage) is learned by the lookup that resolves the parked charge, and
// blocks the token like an answered one: a later reference with the token
// is declined token_blocked without calling Dintero.
func TestBlockLearnedByLookup(t *testing.T) {
	e, gw := newOutageEnv(t)
	withGovernor(e)
	e.startWorker(e.store(), gw)
	token := dinterotest.TokenDoNotRetry + "lost"
	e.publish(chargeBody("lost-decline", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, token, 100))
	if r := e.waitResults("lost-decline", 1, 15*time.Second)[0]; r.Outcome != messages.OutcomeUnknown {
		t.Fatalf("first event %+v, want unknown (the decline's answer was lost)", r)
	}
	gw.down.Store(false)
	if r := e.waitResults("lost-decline", 2, 20*time.Second)[1]; r.Outcome != messages.OutcomeDeclined {
		t.Fatalf("resolved as %+v, want declined", r)
	}
	pays := e.sandbox.Counters().PayRequests
	e.publish(chargeBody("after", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, token, 100))
	r := e.waitResults("after", 1, 10*time.Second)[0]
	if r.Outcome != messages.OutcomeDeclined || r.Error == nil || r.Error.Code != messages.CodeTokenBlocked {
		t.Fatalf("a later reference with the token: %+v, want declined/token_blocked", r)
	}
	if got := e.sandbox.Counters().PayRequests; got != pays {
		t.Fatalf("%d pay calls for the blocked token, want 0", got-pays)
	}
}

// blockingGateway blocks the token in the store, as another request's
// DO_NOT_RETRY would, and waits, before it passes a charge on: the charge's
// attempt was reserved before the block.
type blockingGateway struct {
	worker.Gateway
	store *idempotency.Store
	hash  string
}

func (g *blockingGateway) PaySession(ctx context.Context, body []byte, opts ...dintero.CallOption) (*dintero.Transaction, error) {
	if err := g.store.TokenBlock(ctx, g.hash, dintero.RetryDoNotRetry); err != nil {
		return nil, err
	}
	time.Sleep(300 * time.Millisecond)
	return g.Gateway.PaySession(ctx, body, opts...)
}

// Issue 15, found by make chaos: a charge whose attempt was reserved before
// another request blocked its token, and that then waited (for a call slot,
// a backoff, a Retry-After), is not sent: the token is looked at again right
// before the pay call, and the request is answered token_blocked.
func TestTokenBlockedWhileWaiting(t *testing.T) {
	e := newEnv(t)
	withGovernor(e)
	token := dinterotest.TokenAuthorized + "waits"
	store := e.store()
	gw := &blockingGateway{Gateway: e.client(5 * time.Second), store: store,
		hash: worker.TokenHash(e.cfg.TokenKey, messages.ProductPayExCreditcard, token)}
	e.startWorker(store, gw)
	e.publish(chargeBody("waited", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, token, 100))
	r := e.waitResults("waited", 1, 10*time.Second)[0]
	if r.Outcome != messages.OutcomeDeclined || r.Error == nil || r.Error.Code != messages.CodeTokenBlocked {
		t.Fatalf("got %+v; want declined/token_blocked", r)
	}
	if n := e.ledgerFor("waited"); n != 0 {
		t.Fatalf("%d charges of a token blocked before the pay call was sent", n)
	}
	if pays := e.sandbox.Counters().PayRequests; pays != 0 {
		t.Fatalf("%d pay calls sent with a blocked token", pays)
	}
}
