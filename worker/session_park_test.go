package worker_test

// A session request whose creation's outcome is unknown after its last
// delivery is parked like a charge, never answered failed while Dintero
// may hold a session for it: failed means Dintero holds none.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/worker"
)

// sessionOutcomes lists the outcomes of session events.
func sessionOutcomes(rs []messages.SessionResult) []messages.Outcome {
	var out []messages.Outcome
	for _, r := range rs {
		out = append(out, r.Outcome)
	}
	return out
}

// liveSessions returns the sessions Dintero holds for ref that are not
// cancelled.
func liveSessions(e *env, ref string) []string {
	var out []string
	for id, st := range sessionStates(e, ref) {
		if st != dinterotest.SessionCancelled {
			out = append(out, id)
		}
	}
	return out
}

// waitSessionFinals waits until ref has n session results that are not
// unknown or needs_review, and returns every event of ref.
func (e *env) waitSessionFinals(ref string, n int, within time.Duration) []messages.SessionResult {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		e.mu.Lock()
		got := append([]messages.SessionResult(nil), e.sessions[ref]...)
		e.mu.Unlock()
		finals := 0
		for _, r := range got {
			if r.Outcome != messages.OutcomeUnknown && r.Outcome != messages.OutcomeNeedsReview {
				finals++
			}
		}
		if finals >= n {
			return got
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: %d answers after %s, want %d; events %v", ref, finals, within, n, sessionOutcomes(got))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A session Dintero made during an outage (every creation's answer lost,
// lookups failing) is parked after the last delivery: an unknown event,
// never failed; a second request with the reference meanwhile creates
// nothing. Once Dintero answers, both end created with the same session,
// the only one live: every session nobody was shown is cancelled.
func TestSessionCreatedInOutageParkedThenCreated(t *testing.T) {
	e, gw := newOutageEnv(t)
	e.startWorker(e.store(), gw)
	const ref = "session-outage-1"
	body := i12SessionBody(ref, messages.ProductBamboraCreditcard, dinterotest.TokenAuthorized+"1", 500, "")
	i12PublishSession(e, body)

	first := e.waitSessionResults(ref, 1, 15*time.Second)[0]
	if first.Outcome != messages.OutcomeUnknown || first.Error == nil || first.Error.Code != messages.CodeOutcomeUnknown ||
		first.NextCheckAt == nil || first.SessionID != "" || first.URL != "" {
		t.Fatalf("first event %+v; want unknown with outcome_unknown, next_check_at and no session", first)
	}
	made := len(sessionStates(e, ref))
	if made != e.cfg.MaxDeliver {
		t.Fatalf("Dintero made %d sessions, want one per delivery (%d)", made, e.cfg.MaxDeliver)
	}
	rec, err := e.store().Get(context.Background(), idempotency.SessionKey(ref))
	if err != nil || !rec.Parked {
		t.Fatalf("record %+v, %v; want parked", rec, err)
	}

	// The publisher's retry meets the parked record: it only looks up.
	i12PublishSession(e, body)
	got := e.waitSessionResults(ref, 2, 15*time.Second)
	if got[1].Outcome != messages.OutcomeUnknown {
		t.Fatalf("events %v; the retry's first event %+v, want unknown", sessionOutcomes(got), got[1])
	}
	if n := len(sessionStates(e, ref)); n != made {
		t.Fatalf("Dintero holds %d sessions after the retry, want %d: a parked reference got a new session", n, made)
	}

	gw.down.Store(false)
	got = e.waitSessionFinals(ref, 2, 20*time.Second)
	var answered []messages.SessionResult
	for _, r := range got {
		switch r.Outcome {
		case messages.OutcomeUnknown, messages.OutcomeNeedsReview:
		case messages.OutcomeCreated:
			answered = append(answered, r)
		default:
			t.Errorf("event %+v; want only unknown, needs_review and created", r)
		}
	}
	if len(answered) != 2 || answered[0].SessionID == "" || answered[0].SessionID != answered[1].SessionID ||
		answered[0].URL == "" || answered[0].Duplicate == answered[1].Duplicate {
		t.Fatalf("answers %+v; want created twice with one session, one of them a duplicate", answered)
	}
	id := answered[0].SessionID
	deadline := time.Now().Add(5 * time.Second)
	for {
		live := liveSessions(e, ref)
		if len(live) == 1 && live[0] == id {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("live sessions %v, want only %s; all %v", live, id, sessionStates(e, ref))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := e.sandbox.PaySession(id, "123"); err != nil {
		t.Errorf("the customer cannot pay the session answered: %v", err)
	}
	e.assertNoMoreSessionResults(ref, len(got), 2*time.Second)
	e.assertNoSecrets()
}

// A session request whose creations all failed without Dintero making a
// session (5xx before anything was done, which the client cannot tell from
// a lost answer) is parked too; while the lookups fail through the whole
// schedule it gets needs_review, and once a lookup answers that Dintero
// holds no session it ends failed/not_created.
func TestSessionNeverCreatedFailsAfterLookup(t *testing.T) {
	e, gw := newOutageEnv(t)
	gw.down.Store(false)
	e.startWorker(e.store(), gw)
	// A first session fetches the access token before Dintero fails.
	i12PublishSession(e, i12SessionBody("session-warm", messages.ProductPayExCreditcard, dinterotest.TokenAuthorized+"1", 100, ""))
	e.waitSessionResults("session-warm", 1, 10*time.Second)
	e.sandbox.SetFaults(dinterotest.Faults{ErrorRate: 1})
	const ref = "session-never-made"
	i12PublishSession(e, i12SessionBody(ref, messages.ProductPayExCreditcard, dinterotest.TokenAuthorized+"2", 700, ""))

	got := e.waitSessionResults(ref, 2, 30*time.Second)
	if got[0].Outcome != messages.OutcomeUnknown || got[1].Outcome != messages.OutcomeNeedsReview || got[1].NextCheckAt == nil {
		t.Fatalf("events %v (%+v); want unknown then needs_review with next_check_at", sessionOutcomes(got), got)
	}
	e.sandbox.SetFaults(dinterotest.Faults{})
	got = e.waitSessionFinals(ref, 1, 15*time.Second)
	f := got[len(got)-1]
	if f.Outcome != messages.OutcomeFailed || f.Error == nil || f.Error.Code != messages.CodeNotCreated || f.Duplicate || f.SessionID != "" {
		t.Fatalf("final %+v, want failed/not_created", f)
	}
	if n := len(sessionStates(e, ref)); n != 0 {
		t.Fatalf("Dintero holds %d sessions for %s, want none", n, ref)
	}
	e.assertNoMoreSessionResults(ref, len(got), time.Second)
}

// The sweep before an answer is what keeps one live session per
// reference: a request answered with the remembered session while Dintero
// cannot list the reference's sessions is not answered then, but parked,
// and answered with that session once the sweep has run.
func TestSessionAnsweredOnlyAfterItsSweep(t *testing.T) {
	e, gw := newOutageEnv(t)
	gw.down.Store(false)
	e.startWorker(e.store(), gw)
	const ref = "session-unswept"
	body := i12SessionBody(ref, messages.ProductDinteroPSPCreditcard, dinterotest.TokenAuthorized+"3", 900, "")
	i12PublishSession(e, body)
	created := e.waitSessionResults(ref, 1, 10*time.Second)[0]
	if created.Outcome != messages.OutcomeCreated || created.Duplicate {
		t.Fatalf("first answer %+v, want created", created)
	}

	// Redis loses the record, and Dintero cannot be asked: the retry finds
	// the remembered session but cannot sweep.
	i12FlushRedis(e)
	gw.down.Store(true)
	i12PublishSession(e, body)
	got := e.waitSessionResults(ref, 2, 15*time.Second)
	if got[1].Outcome != messages.OutcomeUnknown {
		t.Fatalf("events %v; the retry's %+v, want unknown while its sweep cannot run", sessionOutcomes(got), got[1])
	}
	gw.down.Store(false)
	got = e.waitSessionFinals(ref, 2, 15*time.Second)
	last := got[len(got)-1]
	if last.Outcome != messages.OutcomeCreated || last.SessionID != created.SessionID || !last.Duplicate {
		t.Fatalf("the retry's answer %+v, want the first session %s, duplicate", last, created.SessionID)
	}
	if n := len(sessionStates(e, ref)); n != 1 {
		t.Fatalf("Dintero holds %d sessions, want 1", n)
	}
}

// An operator closes a parked session request (payctl resolve --as failed):
// none of its sessions was answered, so the verdict applies; the sessions
// the outage left open, which nobody was shown, are cancelled.
func TestParkedSessionClosedByOperator(t *testing.T) {
	e, gw := newOutageEnv(t)
	e.cfg.ResolveSchedule = []time.Duration{time.Hour} // only the operator's lookup comes
	e.startWorker(e.store(), gw)
	const ref = "session-operator"
	body := i12SessionBody(ref, messages.ProductPayExCreditcard, dinterotest.TokenAuthorized+"4", 300, "")
	i12PublishSession(e, body)
	if r := e.waitSessionResults(ref, 1, 15*time.Second)[0]; r.Outcome != messages.OutcomeUnknown {
		t.Fatalf("first event %+v, want unknown", r)
	}
	if n := len(liveSessions(e, ref)); n == 0 {
		t.Fatal("the outage left no session open; the test needs one")
	}
	gw.down.Store(false)

	// The verdict, as payctl resolve --as failed publishes it.
	info, err := e.js.Stream(context.Background(), messages.StreamRequests)
	if err != nil {
		t.Fatal(err)
	}
	m, err := info.GetLastMsgForSubject(context.Background(), worker.ScheduleSubjects(messages.KindSession, ref))
	if err != nil {
		t.Fatalf("the parked request's schedule: %v", err)
	}
	v := nats.NewMsg(m.Subject)
	v.Data = m.Data
	for k, vals := range m.Header {
		v.Header[k] = vals
	}
	v.Header.Set("Nats-Schedule", "@at "+time.Now().UTC().Format(time.RFC3339))
	v.Header.Set(worker.HeaderResolveAs, string(messages.OutcomeFailed))
	v.Header.Set(worker.HeaderResolvedBy, "ops@example.com")
	v.Header.Set(worker.HeaderResolveWhy, "no session in the backoffice")
	if _, err := e.js.PublishMsg(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	got := e.waitSessionFinals(ref, 1, 15*time.Second)
	f := got[len(got)-1]
	if f.Outcome != messages.OutcomeFailed || f.Error == nil || f.Error.Code != messages.CodeClosedByOperator ||
		!strings.Contains(f.Error.Message, "ops@example.com") {
		t.Fatalf("final %+v, want failed/closed_by_operator naming the operator", f)
	}
	waitNoLiveSession(t, e, ref, 5*time.Second)
}

// waitNoLiveSession waits until Dintero holds no open session for ref.
func waitNoLiveSession(t *testing.T, e *env, ref string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for len(liveSessions(e, ref)) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("sessions of %s: %v, want every one cancelled", ref, sessionStates(e, ref))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
