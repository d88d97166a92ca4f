package main

import (
	"strings"
	"testing"
	"time"

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
	ds := func(ref, id string) dinteroSession {
		s := dinteroSession{ID: id, Kind: "profile"}
		s.Order.MerchantReference = ref
		return s
	}
	in := sessionInput{
		Published: []sessionPub{pub("S1", 10, false), pub("S1", 11, true), pub("S2", 12, false), pub("S2", 13, true), pub("S3", 14, false)},
		Results:   []sessionResult{res("S1", 10, "a", false), res("S1", 11, "a", true), res("S2", 12, "b", false), res("S2", 13, "c", false), res("S2", 13, "c", false)},
		Dintero:   []dinteroSession{ds("S1", "a"), ds("S2", "b"), ds("S2", "c"), {ID: "p", Kind: "pay"}},
	}
	r := &report{}
	auditSessions(in, r)
	s := r.Sessions
	if s.Published != 5 || s.NoResult != 1 || s.Extra != 1 || s.MultiSession != 1 || s.Duplicates != 1 || s.Outcomes[messages.OutcomeCreated] != 4 {
		t.Errorf("report %+v", s)
	}
	all := strings.Join(r.Problems, "\n")
	for _, want := range []string{"no result for session request S3", "2 results for session request S2", "Dintero holds 2 sessions for S2", "answered with session c"} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
}
