package main

import (
	"testing"
	"time"

	"github.com/payworker/payworker/messages"
)

func TestTrackerLatencies(t *testing.T) {
	tr := newTracker()
	base := time.Now().Add(-time.Minute)
	pubs := []pubRec{{Index: 0, Seq: 1, At: base}, {Index: 1, Seq: 2, At: base.Add(30 * time.Second)}, {Index: 2, Seq: 3, At: base}}
	tr.add(resultMsg{ReqSeq: 1})
	tr.add(resultMsg{ReqSeq: 2})
	tr.add(resultMsg{ReqSeq: 2}) // a second result does not move the first
	if tr.missing([]uint64{1, 2, 3}) != 1 || !tr.has(2) || tr.has(3) {
		t.Fatalf("missing/has wrong: missing %d, has(2) %v, has(3) %v", tr.missing([]uint64{1, 2, 3}), tr.has(2), tr.has(3))
	}
	lat := tr.latencies(pubs)
	if len(lat) != 2 || lat[0] > lat[1] {
		t.Fatalf("latencies = %v, want two, sorted", lat)
	}
	s := tr.slowest(pubs, 5)
	if len(s) != 2 || s[0].Pub.Seq != 1 || s[1].Pub.Seq != 2 {
		t.Errorf("slowest = %+v, want seq 1 then 2", s)
	}
	if got := tr.slowest(pubs, 1); len(got) != 1 {
		t.Errorf("slowest(1) returned %d", len(got))
	}
}

func TestTrackerWaitsForTheFinalResult(t *testing.T) {
	tr := newTracker()
	tr.add(resultMsg{ReqSeq: 1, Result: messages.ChargeResult{Outcome: messages.OutcomeUnknown}})
	if tr.has(1) {
		t.Fatal("an unknown event finished the request")
	}
	tr.add(resultMsg{ReqSeq: 1, Result: messages.ChargeResult{Outcome: messages.OutcomeSucceeded}})
	if !tr.has(1) || tr.interim != 1 {
		t.Errorf("has(1) = %v, interim = %d; want true, 1", tr.has(1), tr.interim)
	}
	// A session request is answered by its created result.
	tr.add(resultMsg{ReqSeq: 2, Subject: "payments.session.result.created", Result: messages.ChargeResult{Outcome: messages.OutcomeCreated}})
	if !tr.has(2) {
		t.Error("a session's created result did not answer its request")
	}
	// A parked session request's unknown and needs_review events do not.
	tr.add(resultMsg{ReqSeq: 3, Subject: "payments.session.result.unknown", Result: messages.ChargeResult{Outcome: messages.OutcomeUnknown}})
	tr.add(resultMsg{ReqSeq: 3, Subject: "payments.session.result.needs_review", Result: messages.ChargeResult{Outcome: messages.OutcomeNeedsReview}})
	if tr.has(3) || tr.interim != 3 {
		t.Errorf("has(3) = %v, interim = %d; want false, 3: a session's non-final event answered it", tr.has(3), tr.interim)
	}
	tr.add(resultMsg{ReqSeq: 3, Subject: "payments.session.result.failed", Result: messages.ChargeResult{Outcome: messages.OutcomeFailed}})
	if !tr.has(3) {
		t.Error("a parked session's failed result did not answer its request")
	}
}
