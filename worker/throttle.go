package worker

import (
	"context"
	"sync"
	"time"
)

// A throttle narrows the worker's calls to Dintero when Dintero answers 429
// (rate limited) in spite of the shared rate limit (other clients use the
// account, or the configured rate is too high), and widens them again while
// it does not: it halves the calls the worker may have in flight, at most
// once a second, and gives one back for every run of as many answers
// without a 429, up to MaxInFlight (additive increase, multiplicative
// decrease, as TCP does with its window). A pool of pods so settles under
// Dintero's limit instead of each retrying its 429s at full width.
type throttle struct {
	mu      sync.Mutex
	max     int
	limit   int // calls allowed in flight now
	active  int // calls in flight
	okRun   int // answers without a 429 since the last change
	lastCut time.Time
	m       *Metrics
}

func newThrottle(max int, m *Metrics) *throttle {
	t := &throttle{max: max, limit: max, m: m}
	m.callSlots(max)
	return t
}

// admit takes a call slot unless the limit is reached.
func (t *throttle) admit() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.active >= t.limit {
		return false
	}
	t.active++
	return true
}

func (t *throttle) done() {
	t.mu.Lock()
	t.active--
	t.mu.Unlock()
}

// observe takes an HTTP status Dintero answered.
func (t *throttle) observe(status int, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case status == 429:
		t.okRun = 0
		if now.Sub(t.lastCut) >= time.Second && t.limit > 1 {
			t.limit = max(1, t.limit/2)
			t.lastCut = now
			t.m.callSlots(t.limit)
		}
	case status >= 200 && status < 300 && t.limit < t.max:
		t.okRun++
		if t.okRun >= t.limit {
			t.limit++
			t.okRun = 0
			t.m.callSlots(t.limit)
		}
	}
}

// ObserveDintero tells the worker how Dintero answered one HTTP call (op,
// status; fits dintero.Config.Observe): a 429 narrows the calls the worker
// makes at once, answers without one widen them again.
func (w *Worker) ObserveDintero(_ string, status int, _ time.Duration) {
	w.throttle.observe(status, time.Now())
}

// acquireCall waits for one of the MaxInFlight slots for calling Dintero,
// within the throttle's limit. It reports false when ctx ends first;
// otherwise releaseCall must follow.
func (w *Worker) acquireCall(ctx context.Context) bool {
	for {
		select {
		case w.calls <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		if w.throttle.admit() {
			return true
		}
		<-w.calls
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
	}
}

func (w *Worker) releaseCall() {
	w.throttle.done()
	<-w.calls
}
