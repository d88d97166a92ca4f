package worker_test

// Tests of issue 12's broken promises, named after their items
// (TestIssue12ItemN...): items 1 to 4 here, 5 to 7 in
// promises_answers_test.go, 8 and 9 in promises_keys_test.go, 11, 13 and 14
// in promises_security_test.go. Each failed on the code before its fix.
// They use only exported APIs and the harness (harness_test.go), so that
// they hold whatever the worker's insides become; their helpers are
// prefixed i12.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/messages"
)

// Issue 12 item 1: a session request whose idempotency record Redis lost
// is answered with the session Dintero already holds for the reference;
// the customer never gets a second payment link.
func TestIssue12Item1SessionFenceAfterRedisLoss(t *testing.T) {
	e := newEnv(t)
	e.startWorker(e.store(), e.client(5*time.Second))
	const ref = "i12-1-session"
	body := i12SessionBody(ref, messages.ProductBamboraCreditcard, dinterotest.TokenAuthorized+"1", 500, "")
	i12PublishSession(e, body)
	first := e.waitSessionResults(ref, 1, 10*time.Second)[0]
	if first.Outcome != messages.OutcomeCreated || first.SessionID == "" || first.URL == "" {
		t.Fatalf("first session request: %+v, want created", first)
	}

	i12FlushRedis(e) // a failover, an eviction, FLUSHALL: the record is gone

	i12PublishSession(e, body)
	second := e.waitSessionResults(ref, 2, 10*time.Second)[1]
	if n := e.sandbox.Counters().SessionsCreated; n != 1 {
		t.Errorf("Dintero holds %d sessions for %s, want 1: the customer can pay each link", n, ref)
	}
	if second.Outcome != messages.OutcomeCreated || second.SessionID != first.SessionID || second.URL != first.URL || !second.Duplicate {
		t.Errorf("repeat after Redis lost the record: %+v\nwant created with the first session %s (%s) and duplicate: true",
			second, first.SessionID, first.URL)
	}
	e.assertNoMoreSessionResults(ref, 2, 300*time.Millisecond)
}

// Issue 12 item 2: a worker that lost its claim never sends the pay call.
// Worker A claims X and waits for its access token while its lease is not
// renewed (to Redis it looks paused, as under SIGSTOP); worker B takes the
// claim over, looks X up and charges it; then A's token arrives. A must
// not charge: Dintero sees exactly one pay call for X.
func TestIssue12Item2LostClaimNeverCharges(t *testing.T) {
	e := newEnv(t)
	const ref = "i12-2-lost-claim"
	body := chargeBody(ref, messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"1", 1500)

	// A's token endpoint holds every token request until released.
	auth := i12HoldTokens(t, e.sandbox.URL())
	gwA, err := dintero.New(dintero.Config{
		AccountID:    dinterotest.DefaultAccountID,
		ClientID:     dinterotest.DefaultClientID,
		ClientSecret: dinterotest.DefaultClientSecret,
		APIURL:       e.sandbox.URL(),
		AuthURL:      auth.URL,
		Timeout:      30 * time.Second, // longer than the hold: the fetch must not time out
	})
	if err != nil {
		t.Fatal(err)
	}
	grace := e.cfg.ShutdownGrace
	e.cfg.ShutdownGrace = time.Minute // A keeps its charge going after it stops pulling
	paused := &i12FrozenLease{Store: e.store(), resumed: make(chan struct{})}
	stopA := e.startWorker(paused, gwA)
	e.cfg.ShutdownGrace = grace

	e.publish(body)
	select {
	case <-auth.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("worker A never asked for an access token")
	}
	// A stops pulling, so that the second message goes to B; its charge
	// stays where it is, waiting for the token.
	go stopA()
	e.startWorker(e.store(), e.client(5*time.Second))
	e.publish(body) // the publisher's retry, after A's lease ran out
	first := e.waitResults(ref, 1, 15*time.Second)[0]
	if first.Outcome != messages.OutcomeSucceeded {
		t.Fatalf("worker B: %+v, want succeeded", first)
	}

	close(paused.resumed)
	auth.release() // A resumes, its claim long lost
	got := e.waitResults(ref, 2, 20*time.Second)
	e.assertNoMoreResults(ref, 2, 500*time.Millisecond)
	c := e.sandbox.Counters()
	if c.PayRequests != 1 || c.DuplicatesRefused != 0 {
		t.Errorf("Dintero got %d pay calls for %s and refused %d as duplicates; want 1 and 0: "+
			"a worker that lost its claim must not send its pay call", c.PayRequests, ref, c.DuplicatesRefused)
	}
	if n := e.ledgerFor(ref); n != 1 {
		t.Errorf("ledger has %d charges for %s, want 1", n, ref)
	}
	finals, dups := 0, 0
	for _, r := range got {
		if r.Outcome != messages.OutcomeSucceeded || r.TransactionID != first.TransactionID {
			t.Errorf("result %+v, want succeeded with transaction %s", r, first.TransactionID)
		}
		if r.Duplicate {
			dups++
		} else {
			finals++
		}
	}
	if finals != 1 || dups != 1 {
		t.Errorf("%d final results and %d duplicate answers for %s, want 1 and 1: %+v", finals, dups, ref, got)
	}
}

// Issue 12 item 3 (a): after Redis lost the record of a declined reference,
// the same request is answered with the decline Dintero holds, and the card
// is not tried again.
func TestIssue12Item3DeclinedReferenceAfterRedisLoss(t *testing.T) {
	e := newEnv(t)
	e.startWorker(e.store(), e.client(5*time.Second))
	const ref = "i12-3a-declined"
	body := chargeBody(ref, messages.ProductDinteroPSPCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenDoNotRetry+"1", 700)
	e.publish(body)
	first := e.waitResults(ref, 1, 10*time.Second)[0]
	if first.Outcome != messages.OutcomeDeclined || first.TransactionID == "" {
		t.Fatalf("first request: %+v, want declined", first)
	}

	i12FlushRedis(e)

	e.publish(body)
	second := e.waitResults(ref, 2, 10*time.Second)[1]
	if n := i12Transactions(e, ref); n != 1 {
		t.Errorf("Dintero holds %d transactions for %s, want 1: the declined card was tried again", n, ref)
	}
	if second.Outcome != messages.OutcomeDeclined || second.TransactionID != first.TransactionID {
		t.Errorf("repeat after Redis lost the record: %+v\nwant declined with the first transaction %s", second, first.TransactionID)
	}
}

// Issue 12 item 3 (b): after Redis lost the record, a request that reuses a
// charged reference with another card is a conflict, not a success borrowed
// from the first card's charge.
func TestIssue12Item3OtherCardAfterRedisLoss(t *testing.T) {
	e := newEnv(t)
	e.startWorker(e.store(), e.client(5*time.Second))
	const ref = "i12-3b-other-card"
	e.publish(chargeBody(ref, messages.ProductBamboraCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"card-A", 900))
	first := e.waitResults(ref, 1, 10*time.Second)[0]
	if first.Outcome != messages.OutcomeSucceeded {
		t.Fatalf("card A: %+v, want succeeded", first)
	}

	i12FlushRedis(e)

	e.publish(chargeBody(ref, messages.ProductBamboraCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"card-B", 900))
	second := e.waitResults(ref, 2, 10*time.Second)[1]
	if second.Outcome != messages.OutcomeRejected || second.Error == nil || second.Error.Code != messages.CodeConflict {
		t.Errorf("card B on %s after Redis lost the record: %+v, want rejected with code conflict", ref, second)
	}
	if n := e.ledgerFor(ref); n != 1 {
		t.Errorf("ledger has %d charges for %s, want card A's only", n, ref)
	}
}

// Issue 12 item 4: a charge that reuses the reference of a session the
// customer paid is a conflict: it is never answered succeeded with the
// customer's payment while the saved card was not charged.
func TestIssue12Item4ChargeOnPaidSessionReference(t *testing.T) {
	e := newEnv(t)
	e.startWorker(e.store(), e.client(5*time.Second))
	const ref = "i12-4-shared"
	i12PublishSession(e, i12SessionBody(ref, messages.ProductBamboraCreditcard, dinterotest.TokenAuthorized+"1", 900, ""))
	created := e.waitSessionResults(ref, 1, 10*time.Second)[0]
	if created.Outcome != messages.OutcomeCreated {
		t.Fatalf("session: %+v, want created", created)
	}
	if tx, err := e.sandbox.PaySession(created.SessionID, "123"); err != nil || !dintero.Succeeded(tx.Status) {
		t.Fatalf("the customer pays: %v %+v", err, tx)
	}

	e.publish(chargeBody(ref, messages.ProductBamboraCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"2", 900))
	r := e.waitResults(ref, 1, 10*time.Second)[0]
	if r.Outcome != messages.OutcomeRejected || r.Error == nil || r.Error.Code != messages.CodeConflict {
		t.Errorf("charge on the reference of a paid session: %+v, want rejected with code conflict", r)
	}
	var ops []string
	for _, c := range e.sandbox.Ledger() {
		if c.MerchantReference == ref {
			ops = append(ops, c.Operation)
		}
	}
	if len(ops) != 1 || ops[0] != "customer_initiated" {
		t.Errorf("ledger for %s: operations %v, want only the session's payment (customer_initiated)", ref, ops)
	}
}

// i12SessionBody is a customer-initiated session request; callback may be
// "" for none.
func i12SessionBody(ref, provider, token string, amount int64, callback string) []byte {
	cb := ""
	if callback != "" {
		cb = fmt.Sprintf(`, "callback_url": %q`, callback)
	}
	return fmt.Appendf(nil, `{
  "url": {"return_url": "https://example.com/thankyou"%s},
  "order": {"amount": %d, "currency": "NOK", "merchant_reference": %q},
  "customer": {"email": "john.doe@example.com", "tokens": {%q: {"payment_token": %q}}},
  "profile_id": "default"
}`, cb, amount, ref, provider, token)
}

// i12PublishSession publishes a session request body as it is (valid or
// not) as a message of its own (its own Nats-Msg-Id), as a publisher's
// retry would be.
func i12PublishSession(e *env, body []byte) {
	e.t.Helper()
	msg := nats.NewMsg(messages.SubjectSessionRequest)
	msg.Data = body
	msg.Header.Set(messages.HeaderMsgID, fmt.Sprintf("i12-session-%d", time.Now().UnixNano()))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.js.PublishMsg(ctx, msg); err != nil {
		e.t.Fatalf("publish session: %v", err)
	}
}

// i12FlushRedis loses every idempotency record, as a failover without the
// last writes or an eviction would.
func i12FlushRedis(e *env) {
	e.t.Helper()
	if err := e.rdb.FlushAll(context.Background()).Err(); err != nil {
		e.t.Fatalf("FLUSHALL: %v", err)
	}
}

// i12Transactions counts the sandbox's transactions for ref, declined ones
// included.
func i12Transactions(e *env, ref string) int {
	n := 0
	for _, tx := range e.sandbox.Transactions() {
		if tx.MerchantReference == ref {
			n++
		}
	}
	return n
}

// i12FrozenLease is the store of a paused worker (SIGSTOP): its lease
// renewals do not reach Redis until it resumes, and then they are answered
// as Redis answers them.
type i12FrozenLease struct {
	*idempotency.Store
	resumed chan struct{}
}

func (s *i12FrozenLease) Extend(ctx context.Context, key idempotency.Key, token string) error {
	select {
	case <-s.resumed:
		return s.Store.Extend(ctx, key, token)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// i12TokenHold forwards to the sandbox, holding every token request until
// release.
type i12TokenHold struct {
	URL     string
	arrived chan struct{} // closed when the first token request arrives
	release func()
}

func i12HoldTokens(t *testing.T, sandboxURL string) *i12TokenHold {
	t.Helper()
	target, err := url.Parse(sandboxURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	h := &i12TokenHold{arrived: make(chan struct{})}
	released := make(chan struct{})
	var arrivedOnce, releaseOnce sync.Once
	h.release = func() { releaseOnce.Do(func() { close(released) }) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/auth/token") {
			arrivedOnce.Do(func() { close(h.arrived) })
			select {
			case <-released:
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(h.release) // runs first: Close waits for held requests
	h.URL = srv.URL
	return h
}
