package worker

import (
	"testing"
	"time"
)

// Issue 17: 429s halve the calls in flight, at most once a second; answers
// without one give them back one per run, up to MaxInFlight.
func TestThrottleAIMD(t *testing.T) {
	th := newThrottle(64, nil)
	now := time.Now()
	th.observe(429, now)
	th.observe(429, now.Add(500*time.Millisecond)) // the same burst of 429s
	if th.limit != 32 {
		t.Fatalf("after a burst of 429s: limit %d, want 32", th.limit)
	}
	th.observe(429, now.Add(1100*time.Millisecond))
	if th.limit != 16 {
		t.Fatalf("after 429s a second later: limit %d, want 16", th.limit)
	}
	for range 16 {
		th.observe(200, now)
	}
	if th.limit != 17 {
		t.Fatalf("after 16 answers without a 429: limit %d, want 17", th.limit)
	}
	for i := 0; i < 10000 && th.limit < 64; i++ {
		th.observe(200, now)
	}
	if th.limit != 64 {
		t.Fatalf("limit %d after many good answers, want back to 64", th.limit)
	}
	for range 64 {
		if !th.admit() {
			t.Fatal("a slot within the limit refused")
		}
	}
	if th.admit() {
		t.Fatal("a slot over the limit admitted")
	}
	th.done()
	if !th.admit() {
		t.Fatal("a freed slot refused")
	}
}
