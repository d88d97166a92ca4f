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
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/payworker/payworker/dintero/dinterotest"
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
