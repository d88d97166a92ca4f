package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/messages"
)

func TestNewSessionPlan(t *testing.T) {
	msgs, err := newSessionPlan(7, 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 20 {
		t.Fatalf("%d messages, want 20", len(msgs))
	}
	first := map[string]time.Duration{}
	for i, m := range msgs {
		if i > 0 && m.Due < msgs[i-1].Due {
			t.Errorf("not in time order at %d", i)
		}
		if _, err := messages.DecodeSessionRequest(m.Body); err != nil {
			t.Errorf("%s: %v", m.MsgID, err)
		}
		if !m.Retry {
			first[m.Ref] = m.Due
			continue
		}
		d, ok := first[m.Ref]
		if !ok || m.Due-d < 3*time.Second || m.Due-d > 10*time.Second || m.MsgID != m.Ref+":retry" {
			t.Errorf("retry %s at %s, first at %s (seen %v)", m.MsgID, m.Due, d, ok)
		}
	}
}

func TestAuditSessions(t *testing.T) {
	pub := func(ref string, seq uint64, retry bool) sessionPub {
		return sessionPub{sessionMsg: sessionMsg{Ref: ref, MsgID: ref, Retry: retry}, Seq: seq}
	}
	res := func(ref string, seq uint64, id string, dup bool) sessionResult {
		return sessionResult{ReqSeq: seq, Result: messages.SessionResult{MerchantReference: ref, Outcome: messages.OutcomeCreated, SessionID: id, Duplicate: dup}}
	}
	t0 := time.Date(2026, 11, 30, 19, 57, 43, 0, time.UTC)
	ds := func(ref, id, state string) dinteroSession {
		s := dinteroSession{ID: id, Kind: "profile", State: state, CreatedAt: t0}
		s.Order.MerchantReference = ref
		if state == dinterotest.SessionCancelled {
			s.CancelledAt = t0.Add(6 * time.Second)
		}
		return s
	}
	open, cancelled := dinterotest.SessionOpen, dinterotest.SessionCancelled
	in := sessionInput{
		Published: []sessionPub{pub("S1", 10, false), pub("S1", 11, true), pub("S2", 12, false), pub("S2", 13, true), pub("S3", 14, false),
			pub("S4", 15, false), pub("S4", 16, true), pub("S5", 17, false)},
		Results: []sessionResult{res("S1", 10, "a", false), res("S1", 11, "a", true), res("S2", 12, "b", false), res("S2", 13, "c", false), res("S2", 13, "c", false),
			res("S4", 15, "d", false), res("S4", 16, "d", true), res("S5", 17, "f", false)},
		Dintero: []dinteroSession{
			ds("S1", "a", open), ds("S2", "b", open), ds("S2", "c", open), {ID: "p", Kind: "pay", State: dinterotest.SessionPaid},
			// S4: a second session, cancelled: reported, not a violation.
			ds("S4", "d", open), ds("S4", "e", cancelled),
			// S5: answered with the session that was cancelled.
			ds("S5", "f", cancelled), ds("S5", "g", open),
		},
	}
	r := &report{}
	auditSessions(in, r)
	s := r.Sessions
	if s.Published != 8 || s.NoResult != 1 || s.Extra != 1 || s.MultiSession != 1 || s.AnsweredCancelled != 1 ||
		s.Duplicates != 2 || s.Outcomes[messages.OutcomeCreated] != 7 {
		t.Errorf("report %+v", s)
	}
	if ids := []string{}; len(s.Cancelled) == 2 {
		for _, c := range s.Cancelled {
			ids = append(ids, c.ID)
		}
		if slices.Sort(ids); !slices.Equal(ids, []string{"e", "f"}) {
			t.Errorf("cancelled sessions %v, want e and f", ids)
		}
	} else {
		t.Errorf("cancelled sessions %+v, want e and f", s.Cancelled)
	}
	all := strings.Join(r.Problems, "\n")
	for _, want := range []string{"no result for session request S3", "2 results for session request S2", "Dintero holds 2 live sessions for S2",
		"answered with session c", "S5 were answered with session f, which Dintero holds cancelled"} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "S4") {
		t.Errorf("a cancelled second session is a problem:\n%s", all)
	}
	v := strings.Join(r.violations(), "; ")
	for _, want := range []string{"references with more than one live Dintero session", "session requests answered with a cancelled session"} {
		if !strings.Contains(v, want) {
			t.Errorf("violations %q lack %q", v, want)
		}
	}

	// Only the cancelled extra: no violation, one reported row.
	in = sessionInput{
		Published: []sessionPub{pub("S4", 15, false), pub("S4", 16, true)},
		Results:   []sessionResult{res("S4", 15, "d", false), res("S4", 16, "d", true)},
		Dintero:   []dinteroSession{ds("S4", "d", open), ds("S4", "e", cancelled)},
	}
	r = &report{}
	auditSessions(in, r)
	if v := r.violations(); len(v) != 0 || len(r.Problems) != 0 {
		t.Errorf("violations %v, problems %v; want none", v, r.Problems)
	}
	var b strings.Builder
	printSessions(func(name string, v any, rule string) { fmt.Fprintf(&b, "%s|%v|%s\n", name, v, rule) },
		func(name string, n int) { fmt.Fprintf(&b, "%s|%d|check\n", name, n) }, r)
	printCancelledSessions(&b, r, 10)
	out := b.String()
	for _, want := range []string{"extra Dintero sessions cancelled|1|reported (not must-be-0): on 1 references",
		"references with more than one live Dintero session|0|check", "S4: e made at 19:57:43.000, cancelled at 19:57:49.000"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// Parked session requests: their unknown and needs_review events are not
// answers, and failed is a lie only while Dintero held a live session for
// the reference.
func TestAuditParkedSessions(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 20, 0, 0, 0, time.UTC)
	pub := func(ref string, seq uint64) sessionPub {
		return sessionPub{sessionMsg: sessionMsg{Ref: ref, MsgID: ref}, Seq: seq}
	}
	res := func(ref string, seq uint64, o messages.Outcome, at time.Time) sessionResult {
		r := sessionResult{ReqSeq: seq, At: at, Result: messages.SessionResult{MerchantReference: ref, Outcome: o}}
		if o == messages.OutcomeFailed {
			r.Result.Error = &messages.ResultError{Code: messages.CodeNotCreated}
		}
		if o == messages.OutcomeCreated {
			r.Result.SessionID = ref + "-live"
		}
		return r
	}
	ds := func(ref, id string, made, cancelled time.Time) dinteroSession {
		s := dinteroSession{ID: id, Kind: "profile", State: dinterotest.SessionOpen, CreatedAt: made}
		s.Order.MerchantReference = ref
		if !cancelled.IsZero() {
			s.State, s.CancelledAt = dinterotest.SessionCancelled, cancelled
		}
		return s
	}
	var never time.Time
	in := sessionInput{
		Published: []sessionPub{pub("P1", 1), pub("P2", 2), pub("P3", 3), pub("P4", 4), pub("P5", 5)},
		Results: []sessionResult{
			// P1: parked, then created: one answer.
			res("P1", 1, messages.OutcomeUnknown, t0), res("P1", 1, messages.OutcomeCreated, t0.Add(time.Minute)),
			// P2: parked, needs review, then failed; its only session was
			// cancelled before: no lie.
			res("P2", 2, messages.OutcomeUnknown, t0), res("P2", 2, messages.OutcomeNeedsReview, t0.Add(time.Minute)),
			res("P2", 2, messages.OutcomeFailed, t0.Add(2*time.Minute)),
			// P3: failed while its session was live: the lie.
			res("P3", 3, messages.OutcomeFailed, t0.Add(time.Minute)),
			// P4: failed; a session made afterwards is no lie.
			res("P4", 4, messages.OutcomeFailed, t0),
			// P5: only parked: no answer.
			res("P5", 5, messages.OutcomeUnknown, t0),
		},
		Dintero: []dinteroSession{
			ds("P1", "P1-live", t0, never), ds("P1", "P1-lost", t0, t0.Add(time.Minute)),
			ds("P2", "P2-a", t0, t0.Add(90*time.Second)),
			ds("P3", "P3-a", t0, never),
			ds("P4", "P4-a", t0.Add(time.Second), never),
		},
	}
	r := &report{}
	auditSessions(in, r)
	s := r.Sessions
	if s.NoResult != 1 || s.Extra != 0 || s.FailedButHeld != 1 || s.MultiSession != 0 || s.AnsweredCancelled != 0 ||
		s.Interim[messages.OutcomeUnknown] != 3 || s.Interim[messages.OutcomeNeedsReview] != 1 ||
		s.Outcomes[messages.OutcomeCreated] != 1 || s.Outcomes[messages.OutcomeFailed] != 3 {
		t.Errorf("report %+v", s)
	}
	all := strings.Join(r.Problems, "\n")
	for _, want := range []string{"no result for session request P5", "session request P3 answered failed (not_created) while Dintero held session P3-a"} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
	for _, not := range []string{"P1", "P2", "P4"} {
		if strings.Contains(all, "request "+not+" ") {
			t.Errorf("problems name %s:\n%s", not, all)
		}
	}
	if v := strings.Join(r.violations(), "; "); !strings.Contains(v, "session requests answered failed while Dintero held a session") {
		t.Errorf("violations %q lack the failed-but-held check", v)
	}
	var b strings.Builder
	printSessions(func(name string, v any, rule string) { fmt.Fprintf(&b, "%s|%v|%s\n", name, v, rule) },
		func(name string, n int) { fmt.Fprintf(&b, "%s|%d|check\n", name, n) }, r)
	for _, want := range []string{"session requests answered failed while Dintero held a session for the reference|1|check",
		"session events unknown / needs_review|3 / 1|"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}
