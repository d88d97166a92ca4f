package worker

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/messages"
)

// TestChargeDecisions runs one delivery of a charge through the flow for
// every kind of answer Dintero can give, with the claim new (nothing known
// at Dintero) and recovered (an earlier attempt may have reached it), and
// checks the decision: the outcome, the pay calls sent (and whether
// strict-merchant-reference was on), the lookups made, what happened to
// the claim, and how the message was settled.
func TestChargeDecisions(t *testing.T) {
	const ref = "order-1"
	retryAt := time.Date(2026, 12, 24, 0, 0, 0, 0, time.UTC)
	ok := func(int, bool) (*dintero.Transaction, error) { return authorized(ref), nil }
	decline := func(code string, at *time.Time) func(int, bool) (*dintero.Transaction, error) {
		return func(int, bool) (*dintero.Transaction, error) {
			tx := declined(ref, code, at)
			return tx, &dintero.Error{Op: dintero.OpPay, Kind: dintero.KindDeclined, Transaction: tx, Code: "INSUFFICIENT_FUNDS"}
		}
	}
	fail := func(kind dintero.Kind, status int, code string) func(int, bool) (*dintero.Transaction, error) {
		return func(int, bool) (*dintero.Transaction, error) {
			return nil, &dintero.Error{Op: dintero.OpPay, Kind: kind, StatusCode: status, Code: code, Message: "refused",
				RetryAfter: map[bool]time.Duration{true: 7 * time.Second}[status == 429]}
		}
	}
	// duplicateThenOK: the strict call is refused as a duplicate, the next
	// one (strict-success) succeeds.
	duplicateThenOK := func(n int, strict bool) (*dintero.Transaction, error) {
		if strict {
			return fail(dintero.KindInvalid, 400, dintero.CodeDuplicateMerchantReference)(n, strict)
		}
		return authorized(ref), nil
	}
	none := func() ([]dintero.Transaction, error) { return nil, nil }
	found := func(tx *dintero.Transaction) func() ([]dintero.Transaction, error) {
		return func() ([]dintero.Transaction, error) { return []dintero.Transaction{*tx}, nil }
	}
	lookupFails := func() ([]dintero.Transaction, error) {
		return nil, &dintero.Error{Op: dintero.OpListTransactions, Kind: dintero.KindTransient, StatusCode: 503}
	}
	otherCard := authorized(ref)
	otherCard.Amount = 100

	type want struct {
		outcome   messages.Outcome // "" means handed back
		code      string           // error.code of the result
		retry     []string         // error.retry_codes
		pays      []bool           // strict flag of each pay call sent
		lookups   int
		store     string // last store call
		settled   string // ack, term or nak
		minDelay  time.Duration
		reason    string
		maybeSent bool
	}
	tests := []struct {
		name  string
		state idempotency.State
		pay   func(int, bool) (*dintero.Transaction, error)
		list  func() ([]dintero.Transaction, error)
		want  want
	}{
		{"new: authorized", idempotency.StateNew, ok, none,
			want{outcome: messages.OutcomeSucceeded, pays: []bool{true}, store: "complete", settled: "ack"}},
		{"new: declined DO_NOT_RETRY", idempotency.StateNew, decline(dintero.RetryDoNotRetry, nil), none,
			want{outcome: messages.OutcomeDeclined, code: "INSUFFICIENT_FUNDS", retry: []string{dintero.RetryDoNotRetry}, pays: []bool{true}, store: "complete", settled: "ack"}},
		{"new: declined RETRY_AFTER_DELAY", idempotency.StateNew, decline(dintero.RetryAfterDelay, &retryAt), none,
			want{outcome: messages.OutcomeDeclined, code: "INSUFFICIENT_FUNDS", retry: []string{dintero.RetryAfterDelay}, pays: []bool{true}, store: "complete", settled: "ack"}},
		{"new: declined RETRY_IMMEDIATELY", idempotency.StateNew, decline(dintero.RetryImmediately, nil), none,
			want{outcome: messages.OutcomeDeclined, code: "INSUFFICIENT_FUNDS", retry: []string{dintero.RetryImmediately}, pays: []bool{true}, store: "complete", settled: "ack"}},
		{"new: 400 invalid, nothing at Dintero", idempotency.StateNew, fail(dintero.KindInvalid, 400, "INVALID_PAYMENT_TOKEN"), none,
			want{outcome: messages.OutcomeRejected, code: "INVALID_PAYMENT_TOKEN", pays: []bool{true}, lookups: 1, store: "complete", settled: "ack"}},
		{"new: duplicate-reference 400, our charge found", idempotency.StateNew, fail(dintero.KindInvalid, 400, dintero.CodeDuplicateMerchantReference), found(authorized(ref)),
			want{outcome: messages.OutcomeSucceeded, pays: []bool{true}, lookups: 1, store: "complete", settled: "ack"}},
		{"new: duplicate-reference 400, a decline found", idempotency.StateNew, fail(dintero.KindInvalid, 400, dintero.CodeDuplicateMerchantReference), found(declined(ref, dintero.RetryDoNotRetry, nil)),
			want{outcome: messages.OutcomeDeclined, code: "INSUFFICIENT_FUNDS", retry: []string{dintero.RetryDoNotRetry}, pays: []bool{true}, lookups: 1, store: "complete", settled: "ack"}},
		{"new: duplicate-reference 400, another charge found", idempotency.StateNew, fail(dintero.KindInvalid, 400, dintero.CodeDuplicateMerchantReference), found(otherCard),
			want{outcome: messages.OutcomeRejected, code: messages.CodeConflict, pays: []bool{true}, lookups: 1, store: "forget", settled: "ack"}},
		{"new: duplicate-reference 400, no transaction", idempotency.StateNew, duplicateThenOK, none,
			want{outcome: messages.OutcomeSucceeded, pays: []bool{true, false}, lookups: 1, store: "complete", settled: "ack"}},
		{"new: 403", idempotency.StateNew, fail(dintero.KindPermanent, 403, "FORBIDDEN"), none,
			want{outcome: messages.OutcomeFailed, code: "FORBIDDEN", pays: []bool{true}, store: "complete reopenable", settled: "ack"}},
		{"new: 401", idempotency.StateNew, fail(dintero.KindAuth, 401, "ACCESS_FORBIDDEN"), none,
			want{pays: []bool{true}, store: "release", settled: "nak", reason: "auth"}},
		{"new: 429 Retry-After 7s", idempotency.StateNew, fail(dintero.KindTransient, 429, ""), none,
			want{pays: []bool{true}, store: "release", settled: "nak", minDelay: time.Second, reason: "dintero"}},
		{"new: 5xx, nothing found", idempotency.StateNew, fail(dintero.KindUnknownOutcome, 502, ""), none,
			want{pays: []bool{true}, lookups: 1, store: "release maybe_sent", settled: "nak", reason: "dintero", maybeSent: true}},
		{"new: 5xx, charge found", idempotency.StateNew, fail(dintero.KindUnknownOutcome, 502, ""), found(authorized(ref)),
			want{outcome: messages.OutcomeSucceeded, pays: []bool{true}, lookups: 1, store: "complete", settled: "ack"}},
		{"new: timeout, lookup fails", idempotency.StateNew, fail(dintero.KindUnknownOutcome, 0, ""), lookupFails,
			want{pays: []bool{true}, lookups: 1, store: "release maybe_sent", settled: "nak", reason: "lookup", maybeSent: true}},
		{"recovered: our charge found", idempotency.StateRecovered, ok, found(authorized(ref)),
			want{outcome: messages.OutcomeSucceeded, lookups: 1, store: "complete", settled: "ack"}},
		{"recovered: a decline decides", idempotency.StateRecovered, ok, found(declined(ref, dintero.RetryAfterDelay, &retryAt)),
			want{outcome: messages.OutcomeDeclined, code: "INSUFFICIENT_FUNDS", retry: []string{dintero.RetryAfterDelay}, lookups: 1, store: "complete", settled: "ack"}},
		{"recovered: another charge found", idempotency.StateRecovered, ok, found(otherCard),
			want{outcome: messages.OutcomeRejected, code: messages.CodeConflict, lookups: 1, store: "forget", settled: "ack"}},
		{"recovered: nothing found, charged", idempotency.StateRecovered, ok, none,
			want{outcome: messages.OutcomeSucceeded, pays: []bool{false}, lookups: 1, store: "complete", settled: "ack"}},
		{"recovered: lookup fails, not charged", idempotency.StateRecovered, ok, lookupFails,
			want{lookups: 1, store: "release maybe_sent", settled: "nak", reason: "lookup", maybeSent: true}},
		{"recovered: 5xx after nothing found", idempotency.StateRecovered, fail(dintero.KindUnknownOutcome, 500, ""), none,
			want{pays: []bool{false}, lookups: 2, store: "release maybe_sent", settled: "nak", reason: "dintero", maybeSent: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &fakeStore{state: tt.state}
			gw := &fakeGateway{pay: tt.pay, list: tt.list}
			js := &fakeJS{}
			w := newTestWorker(store, gw, js)
			msg := chargeMsg(ref, "tok-A")
			d, err := w.readDelivery(msg)
			if err != nil {
				t.Fatal(err)
			}
			dec := w.handle(context.Background(), d)
			w.settle(context.Background(), d, dec)

			if !slices.Equal(gw.sent(), tt.want.pays) {
				t.Errorf("pay calls (strict?) %v, want %v", gw.sent(), tt.want.pays)
			}
			if gw.lookups != tt.want.lookups {
				t.Errorf("%d lookups, want %d", gw.lookups, tt.want.lookups)
			}
			calls := store.log()
			if last := calls[len(calls)-1]; last != tt.want.store {
				t.Errorf("store calls %v, want the last to be %q", calls, tt.want.store)
			}
			if ops := msg.ops(); len(ops) != 1 || ops[0] != tt.want.settled {
				t.Errorf("message settled %v, want [%s]", ops, tt.want.settled)
			}
			if tt.want.outcome == "" {
				if dec.result != nil || dec.reason != tt.want.reason || dec.maybeSent != tt.want.maybeSent {
					t.Errorf("decision %+v; want a retry for %q, maybe_sent %v", dec, tt.want.reason, tt.want.maybeSent)
				}
				if msg.delay < tt.want.minDelay {
					t.Errorf("handed back for %s, want at least %s", msg.delay, tt.want.minDelay)
				}
				if len(js.published) != 0 {
					t.Errorf("published %v for a request handed back", js.subjects())
				}
				return
			}
			res := publishedCharge(t, js, tt.want.outcome)
			if tt.want.code != "" && (res.Error == nil || res.Error.Code != tt.want.code) {
				t.Errorf("error %+v, want code %q", res.Error, tt.want.code)
			}
			if tt.want.retry != nil && !slices.Equal(res.Error.RetryCodes, tt.want.retry) {
				t.Errorf("retry codes %v, want %v", res.Error.RetryCodes, tt.want.retry)
			}
			if slices.Contains(tt.want.retry, dintero.RetryAfterDelay) && (res.Error.RetryAfter == nil || !res.Error.RetryAfter.Equal(retryAt)) {
				t.Errorf("retry_after %v, want %v", res.Error.RetryAfter, retryAt)
			}
		})
	}
}

// publishedCharge returns the one charge result published, checking its
// subject, and that a rejected or failed request was dead-lettered.
func publishedCharge(t *testing.T, js *fakeJS, outcome messages.Outcome) messages.ChargeResult {
	t.Helper()
	var res messages.ChargeResult
	var results, dead int
	for _, m := range js.published {
		switch m.Subject {
		case messages.SubjectDeadLetters:
			dead++
		case messages.ResultSubject(messages.KindCharge, outcome):
			results++
			if err := json.Unmarshal(m.Data, &res); err != nil {
				t.Fatal(err)
			}
		default:
			t.Errorf("published on %s", m.Subject)
		}
	}
	if results != 1 {
		t.Fatalf("%d %s results published (%v), want 1", results, outcome, js.subjects())
	}
	if wantDead := outcome == messages.OutcomeRejected || outcome == messages.OutcomeFailed; (dead == 1) != wantDead {
		t.Errorf("%d dead letters for a %s result", dead, outcome)
	}
	if res.Outcome != outcome {
		t.Errorf("outcome %s, want %s", res.Outcome, outcome)
	}
	return res
}

// TestClaimDecisions: what the other answers of the store lead to.
func TestClaimDecisions(t *testing.T) {
	stored := mustJSON(&messages.ChargeResult{MerchantReference: "order-1", Outcome: messages.OutcomeSucceeded, TransactionID: "T1"})
	tests := []struct {
		name      string
		store     *fakeStore
		settled   string
		outcome   messages.Outcome
		duplicate bool
	}{
		{"completed by this message", &fakeStore{state: idempotency.StateCompleted, result: stored, seq: 42}, "ack", messages.OutcomeSucceeded, false},
		{"completed by another", &fakeStore{state: idempotency.StateCompleted, result: stored, seq: 7}, "ack", messages.OutcomeSucceeded, true},
		{"conflict", &fakeStore{state: idempotency.StateConflict}, "ack", messages.OutcomeRejected, false},
		{"in progress elsewhere", &fakeStore{state: idempotency.StateInProgress}, "nak", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := &fakeGateway{pay: func(int, bool) (*dintero.Transaction, error) { t.Fatal("pay called"); return nil, nil }}
			js := &fakeJS{}
			w := newTestWorker(tt.store, gw, js)
			msg := chargeMsg("order-1", "tok")
			msg.delivered = 99 // past MaxDeliver: in progress elsewhere still never gives up
			w.process(context.Background(), msg)
			if ops := msg.ops(); len(ops) != 1 || ops[0] != tt.settled {
				t.Fatalf("settled %v, want [%s]", ops, tt.settled)
			}
			if got := tt.store.log(); len(got) != 1 {
				t.Errorf("store calls %v: the record of a claim this delivery does not own was touched", got)
			}
			if tt.outcome == "" {
				if msg.delay < 700*time.Millisecond {
					t.Errorf("handed back for %s, want the other owner's lease (700ms)", msg.delay)
				}
				return
			}
			res := publishedCharge(t, js, tt.outcome)
			if res.Duplicate != tt.duplicate {
				t.Errorf("duplicate %v, want %v", res.Duplicate, tt.duplicate)
			}
		})
	}
}

// TestGiveUpAfterLastDelivery: a request still not finished after
// MaxDeliver deliveries ends failed (gave_up) with a dead letter and an ack
// when nothing can have reached Dintero (a 429); when something may have
// (a panic while it held the claim, in the middle of the pay call) it is
// parked instead, with an unknown event and a schedule, and acked: never
// handed back forever (issue 12 item 6, issue 14).
func TestGiveUpAfterLastDelivery(t *testing.T) {
	for name, tt := range map[string]struct {
		pay     func(int, bool) (*dintero.Transaction, error)
		outcome messages.Outcome
	}{
		"not sent": {func(int, bool) (*dintero.Transaction, error) {
			return nil, &dintero.Error{Op: dintero.OpPay, Kind: dintero.KindTransient, StatusCode: 429}
		}, messages.OutcomeFailed},
		"panic": {func(int, bool) (*dintero.Transaction, error) { panic("boom") }, messages.OutcomeUnknown},
	} {
		t.Run(name, func(t *testing.T) {
			store := &fakeStore{state: idempotency.StateNew}
			js := &fakeJS{}
			w := newTestWorker(store, &fakeGateway{pay: tt.pay}, js)
			for n := uint64(1); n <= 3; n++ {
				msg := chargeMsg("order-1", "tok")
				msg.delivered = n
				w.process(context.Background(), msg)
				want := "nak"
				if n == 3 {
					want = "ack"
				}
				if ops := msg.ops(); len(ops) != 1 || ops[0] != want {
					t.Fatalf("delivery %d settled %v, want [%s]", n, ops, want)
				}
			}
			if tt.outcome == messages.OutcomeUnknown {
				subjects := js.subjects()
				if len(subjects) != 2 || !strings.HasPrefix(subjects[0], "payworker.schedule.charge.") ||
					subjects[1] != messages.ResultSubject(messages.KindCharge, messages.OutcomeUnknown) {
					t.Fatalf("published %v; want a schedule, then the unknown event", subjects)
				}
				if calls := store.log(); calls[len(calls)-1] != "park" {
					t.Errorf("store calls %v, want the record parked", calls)
				}
				return
			}
			res := publishedCharge(t, js, tt.outcome)
			if res.Error == nil || res.Error.Code != messages.CodeGaveUp {
				t.Errorf("error %+v, want gave_up", res.Error)
			}
		})
	}
}

// TestPausedPastLeaseNeverSends (issue 12 item 2): a worker that loses its
// claim while it waits for the token (its lease ran out, another delivery
// took the claim over) sends nothing, and leaves the record alone.
func TestPausedPastLeaseNeverSends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &fakeStore{state: idempotency.StateNew, lease: 2 * time.Second, lost: true}
		gw := &fakeGateway{
			pay:        func(int, bool) (*dintero.Transaction, error) { return authorized("order-1"), nil },
			beforeSend: func() { time.Sleep(5 * time.Second) }, // the token fetch of a paused process
		}
		js := &fakeJS{}
		w := newTestWorker(store, gw, js)
		w.cfg.AckWait = time.Hour // no heartbeat during the pause: the process is stopped
		msg := chargeMsg("order-1", "tok")
		w.process(context.Background(), msg)
		if sent := gw.sent(); len(sent) != 0 {
			t.Fatalf("%d pay calls sent after the claim was lost", len(sent))
		}
		if ops := msg.ops(); len(ops) != 1 || ops[0] != "nak" {
			t.Errorf("settled %v, want [nak]", ops)
		}
		for _, c := range store.log() {
			if c != "claim" && c != "extend" {
				t.Errorf("store call %q on a claim that is another's", c)
			}
		}
	})
}

// TestFenceWithinLeaseAsksNothing: within the lease the fence costs no
// Redis call; past it, one renewal.
func TestFenceWithinLeaseAsksNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &fakeStore{state: idempotency.StateNew, lease: 10 * time.Second}
		gw := &fakeGateway{pay: func(int, bool) (*dintero.Transaction, error) { return authorized("order-1"), nil }}
		w := newTestWorker(store, gw, &fakeJS{})
		w.cfg.AckWait = time.Hour
		w.process(context.Background(), chargeMsg("order-1", "tok"))
		if got := store.log(); slices.Contains(got, "extend") {
			t.Errorf("store calls %v: the fence asked Redis within the lease", got)
		}
		store.calls = nil
		gw.beforeSend = func() { time.Sleep(9500 * time.Millisecond) } // past 90 % of the lease
		w.process(context.Background(), chargeMsg("order-2", "tok"))
		if got := store.log(); !slices.Contains(got, "extend") || len(gw.sent()) != 2 {
			t.Errorf("store calls %v, pay calls %d: want one renewal and the charge sent", got, len(gw.sent()))
		}
	})
}

// TestResultHeadersAreEncoded (issue 16 item 5): ce-id and ce-subject are
// percent-encoded as the CloudEvents binding asks, and decode back.
func TestResultHeadersAreEncoded(t *testing.T) {
	ref := "ordre 42 ø%\"x"
	r := chargeResult(&messages.ChargeResult{MerchantReference: ref, Outcome: messages.OutcomeSucceeded})
	id := messages.ResultMsgID(ref, messages.OutcomeSucceeded, 7)
	m := resultMsg(messages.NamesFor(""), r, id, time.Now())
	for h, want := range map[string]string{messages.HeaderCESubject: ref, messages.HeaderCEID: id} {
		got := m.Header.Get(h)
		if strings.ContainsAny(got, " \"ø") || strings.Count(got, "%") < 3 {
			t.Errorf("%s = %q, not percent-encoded", h, got)
		}
		if dec, err := url.PathUnescape(got); err != nil || dec != want {
			t.Errorf("%s decodes to %q (%v), want %q", h, dec, err, want)
		}
	}
	if got := m.Header.Get(messages.HeaderCEDataContentType); got != "application/json" {
		t.Errorf("%s = %q", messages.HeaderCEDataContentType, got)
	}
	if got := m.Header.Get(messages.HeaderMsgID); got != id {
		t.Errorf("Nats-Msg-Id %q, want the raw id %q", got, id)
	}
}
