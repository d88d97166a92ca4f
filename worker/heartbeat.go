package worker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/payworker/payworker/idempotency"
)

// heartbeat keeps a slow request alive while it waits for a call slot and
// for Dintero: every third of the shorter of AckWait and the claim's lease
// it tells the server the message is in progress and renews the lease. A
// renewal refused because the claim was taken over marks the lease lost,
// so the fence stops any call still to be sent. The returned function stops
// the heartbeat and waits for a beat in progress, cancelling it; it may be
// called more than once.
//
// It runs on a timer, not on a goroutine of its own: most requests end
// long before the first beat, and starting (and waking) a goroutine for
// every charge was a tenth of the worker's own CPU per charge.
func (w *Worker) heartbeat(ctx context.Context, d *delivery) (stop func()) {
	every := min(w.cfg.AckWait, w.store.Lease()) / 3
	hb := &beats{}
	hb.mu.Lock()
	defer hb.mu.Unlock()
	hb.t = time.AfterFunc(every, func() {
		hb.mu.Lock()
		if hb.stopped {
			hb.mu.Unlock()
			return
		}
		bctx, cancel := context.WithCancel(ctx)
		hb.cancel = cancel
		hb.running.Add(1)
		hb.mu.Unlock()
		defer hb.running.Done()
		defer cancel()

		w.beat(bctx, d)
		hb.mu.Lock()
		hb.cancel = nil
		if !hb.stopped {
			hb.t.Reset(every)
		}
		hb.mu.Unlock()
	})
	return func() {
		hb.mu.Lock()
		hb.stopped = true
		hb.t.Stop()
		if hb.cancel != nil {
			hb.cancel()
		}
		hb.mu.Unlock()
		hb.running.Wait()
	}
}

// beat is one heartbeat: InProgress, then the lease.
func (w *Worker) beat(ctx context.Context, d *delivery) {
	if err := d.msg.InProgress(); err != nil {
		d.log.Debug("in-progress heartbeat failed", "err", err)
	}
	if !d.owned {
		return
	}
	sent := time.Now()
	err := w.store.Extend(ctx, d.key, d.claim.Token)
	switch {
	case err == nil:
		d.lease.renewed(sent, w.store.Lease())
	case errors.Is(err, idempotency.ErrNotOwner):
		d.lease.markLost()
		d.log.Warn("the claim was taken over while this worker held it; it will not call Dintero for it", "err", err)
	case ctx.Err() == nil:
		d.log.Warn("lease renewal failed", "err", err)
	}
}

// beats is the state of one heartbeat.
type beats struct {
	mu      sync.Mutex
	t       *time.Timer
	stopped bool
	cancel  context.CancelFunc // of the beat in progress
	running sync.WaitGroup     // the beat in progress
}
