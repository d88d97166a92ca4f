package worker_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/messages"
)

// publishWithHeader publishes a charge body with one extra header.
func (e *env) publishWithHeader(body []byte, key, value string) uint64 {
	e.t.Helper()
	m := nats.NewMsg(messages.SubjectChargeRequest)
	m.Data = body
	m.Header.Set(key, value)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := e.js.PublishMsg(ctx, m)
	if err != nil {
		e.t.Fatal(err)
	}
	return ack.Sequence
}

// Issue 15: a request with dunning on a card that declines twice with
// RETRY_AFTER_DELAY and then succeeds ends succeeded after two
// retry_scheduled events, under one merchant_reference, surviving a worker
// that dies and a NATS restart between attempts; one final result.
func TestDunningRecoversASoftDecline(t *testing.T) {
	e := newEnvWith(t, dinterotest.Options{Seed: 1, RetryAfterDelay: 2 * time.Second})
	withGovernor(e)
	stop := e.startWorker(e.store(), e.client(5*time.Second))
	const ref = "dunning-1"
	body := chargeBody(ref, messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.SoftDeclineToken(2, "a"), 100)
	e.publishWithHeader(body, messages.HeaderRetryUntil, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))

	first := e.waitResults(ref, 1, 10*time.Second)[0]
	if first.Outcome != messages.OutcomeRetryScheduled || first.Attempt != 1 || first.NextAttemptAt == nil || first.Error == nil {
		t.Fatalf("first event %+v; want retry_scheduled, attempt 1, next_attempt_at, the decline", first)
	}
	// The worker dies and NATS restarts before the next attempt is due.
	stop()
	if err := e.nats.Restart(); err != nil {
		t.Fatal(err)
	}
	e.startWorker(e.store(), e.client(5*time.Second))

	got := e.waitResults(ref, 3, 30*time.Second)
	if !slices.Equal(outcomes(got), []messages.Outcome{messages.OutcomeRetryScheduled, messages.OutcomeRetryScheduled, messages.OutcomeSucceeded}) {
		t.Fatalf("events %v; want retry_scheduled twice, then succeeded", outcomes(got))
	}
	final := got[2]
	if final.Attempt != 3 || final.Duplicate || final.MerchantReference != ref {
		t.Fatalf("final %+v; want attempt 3 under %s", final, ref)
	}
	e.assertNoMoreResults(ref, 3, 3*time.Second)
	if n := e.ledgerFor(ref); n != 1 {
		t.Fatalf("ledger %d authorizations for %s, want 1", n, ref)
	}
}

// Issue 15: without the header, or past its deadline, a soft decline is
// final at once.
func TestDunningOnlyWhenAskedAndInTime(t *testing.T) {
	e := newEnvWith(t, dinterotest.Options{Seed: 1, RetryAfterDelay: time.Hour})
	e.startWorker(e.store(), e.client(5*time.Second))
	e.publish(chargeBody("plain", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.SoftDeclineToken(1, "b"), 100))
	if r := e.waitResults("plain", 1, 10*time.Second)[0]; r.Outcome != messages.OutcomeDeclined {
		t.Fatalf("without dunning: %+v, want declined", r)
	}
	body := chargeBody("late", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.SoftDeclineToken(1, "c"), 100)
	e.publishWithHeader(body, messages.HeaderRetryUntil, time.Now().Add(time.Minute).UTC().Format(time.RFC3339))
	if r := e.waitResults("late", 1, 10*time.Second)[0]; r.Outcome != messages.OutcomeDeclined {
		t.Fatalf("retry_after (1h) past the deadline (1m): %+v, want declined", r)
	}
	// A hard decline is never retried, deadline or not.
	hard := chargeBody("hard", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenDoNotRetry+"d", 100)
	e.publishWithHeader(hard, messages.HeaderRetryUntil, time.Now().Add(48*time.Hour).UTC().Format(time.RFC3339))
	if r := e.waitResults("hard", 1, 10*time.Second)[0]; r.Outcome != messages.OutcomeDeclined {
		t.Fatalf("hard decline with dunning: %+v, want declined", r)
	}
}

// Issue 14 and 15 together: a dunning attempt whose answer is lost in an
// outage (Dintero declined it again) is parked as that attempt, and once
// Dintero answers it is resolved as that attempt: its own decline, not the
// first attempt's, decides, and the dunning goes on to the attempt that
// pays. One final result.
func TestDunningAttemptParkedResolvesAsThatAttempt(t *testing.T) {
	e := newEnvWith(t, dinterotest.Options{Seed: 1, RetryAfterDelay: 2 * time.Second})
	e.cfg.MaxDeliver = 3
	e.cfg.ResolveSchedule = []time.Duration{2 * time.Second, 2 * time.Second, 2 * time.Second}
	e.cfg.ReviewEvery = 2 * time.Second
	withGovernor(e)
	gw := &outageGateway{Gateway: e.client(time.Second)}
	e.startWorker(e.store(), gw)
	const ref = "dunning-parked"
	body := chargeBody(ref, messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.SoftDeclineToken(2, "p"), 100)
	e.publishWithHeader(body, messages.HeaderRetryUntil, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))

	if first := e.waitResults(ref, 1, 10*time.Second)[0]; first.Outcome != messages.OutcomeRetryScheduled || first.Attempt != 1 {
		t.Fatalf("first event %+v; want retry_scheduled for attempt 1", first)
	}
	gw.down.Store(true) // attempt 2 reaches Dintero, its answer is lost
	if second := e.waitResults(ref, 2, 20*time.Second)[1]; second.Outcome != messages.OutcomeUnknown || second.Attempt != 2 {
		t.Fatalf("second event %+v; want unknown for attempt 2", second)
	}
	gw.down.Store(false)

	t.Cleanup(func() {
		if t.Failed() {
			t.Log(e.logs.String())
		}
	})
	got := e.waitResults(ref, 4, 30*time.Second)
	want := []messages.Outcome{messages.OutcomeRetryScheduled, messages.OutcomeUnknown, messages.OutcomeRetryScheduled, messages.OutcomeSucceeded}
	if !slices.Equal(outcomes(got), want) {
		t.Fatalf("events %v; want %v", outcomes(got), want)
	}
	if got[2].Attempt != 2 || got[3].Attempt != 3 {
		t.Errorf("retry_scheduled for attempt %d, succeeded at attempt %d; want 2 and 3", got[2].Attempt, got[3].Attempt)
	}
	e.assertNoMoreResults(ref, 4, 3*time.Second)
	if n := e.ledgerFor(ref); n != 1 {
		t.Fatalf("ledger %d authorizations for %s, want 1", n, ref)
	}
}

// Found by make chaos-outage: a duplicate of a dunning request that arrives
// between two of its attempts waits for the request's final result and is
// answered with it (duplicate), instead of charging the reference beside
// the request's own attempts and starting a dunning of its own.
func TestDunningDuplicateWaitsForTheFinalResult(t *testing.T) {
	e := newEnvWith(t, dinterotest.Options{Seed: 1, RetryAfterDelay: 2 * time.Second})
	withGovernor(e)
	e.startWorker(e.store(), e.client(5*time.Second))
	const ref = "dunning-dup"
	body := chargeBody(ref, messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.SoftDeclineToken(2, "dup"), 100)
	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	e.publishWithHeader(body, messages.HeaderRetryUntil, until)
	if first := e.waitResults(ref, 1, 10*time.Second)[0]; first.Outcome != messages.OutcomeRetryScheduled {
		t.Fatalf("first event %+v; want retry_scheduled", first)
	}
	e.publishWithHeader(body, messages.HeaderRetryUntil, until) // the publisher sends it again

	got := e.waitResults(ref, 4, 40*time.Second)
	var finals, dups []messages.ChargeResult
	for _, r := range got {
		if r.Outcome == messages.OutcomeRetryScheduled {
			continue
		}
		if r.Duplicate {
			dups = append(dups, r)
		} else {
			finals = append(finals, r)
		}
	}
	if len(finals) != 1 || finals[0].Outcome != messages.OutcomeSucceeded || finals[0].Attempt != 3 ||
		len(dups) != 1 || dups[0].Outcome != messages.OutcomeSucceeded || dups[0].TransactionID != finals[0].TransactionID {
		t.Fatalf("events %+v; want the request's succeeded (attempt 3) and the duplicate answered with it", got)
	}
	e.assertNoMoreResults(ref, 4, 3*time.Second)
	if pays := e.sandbox.Counters().PayRequests; pays != 3 {
		t.Fatalf("%d pay calls, want 3 (the request's own attempts)", pays)
	}
}
