package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/idempotency"
)

// A delivery is one delivery of one request message, and what the flow
// learns about it on the way.
type delivery struct {
	msg       jetstream.Msg
	kind      *kind
	seq       uint64 // the request's identity: its stream sequence
	delivered uint64 // NumDelivered, 1 on the first delivery
	published time.Time
	log       *slog.Logger

	origin origin // what a scheduled copy says of its request (schedule.go)
	// Dunning (dunning.go): the publisher's deadline (zero: no dunning),
	// the attempt this delivery is (1: the request itself), and when this
	// message itself was published (for a copy, later than its request).
	retryUntil time.Time
	attempt    int
	copyAt     time.Time
	since      time.Time // HeaderAttemptSince, when set (dunning.go)

	req   request         // the decoded request, nil until decoded
	key   idempotency.Key // the request's record, once decoded
	claim idempotency.Claim
	owned bool  // this delivery owns claim
	lease lease // how long the claim is surely ours
	// resolving: the request's outcome is unknown (it was parked): this
	// delivery only looks it up, and never charges.
	resolving bool

	panicked bool // settling it panicked once already
}

// readDelivery reads what the flow needs of a message's metadata and
// headers.
func (w *Worker) readDelivery(msg jetstream.Msg) (*delivery, error) {
	meta, err := msg.Metadata()
	if err != nil {
		return nil, err
	}
	k := w.kinds[msg.Subject()]
	if k == nil {
		return nil, fmt.Errorf("no request kind is published on %s", msg.Subject())
	}
	d := &delivery{msg: msg, kind: k, seq: meta.Sequence.Stream, delivered: meta.NumDelivered,
		published: meta.Timestamp, log: w.log}
	d.copyAt = meta.Timestamp
	readOrigin(d, msg.Headers())
	readDunning(d, msg.Headers())
	d.resolving = d.origin.step > 0
	return d, nil
}

// recordSeq is the sequence the request's record is kept under: the
// request that parked it, while a parked record is resolved by another.
func (d *delivery) recordSeq() uint64 {
	if d.owned && d.claim.State == idempotency.StateParked {
		return d.claim.Sequence
	}
	return d.seq
}

// attempts is how many deliveries of the request's reference reached the
// Dintero step, this one included, as far as the claim knows.
func (d *delivery) attempts() int {
	if d.owned {
		return d.claim.Attempts
	}
	return 0
}

// errLostClaim is the fence's answer when this delivery's claim was taken
// over (its lease ran out while the worker was paused, say): it must not
// call Dintero, and the new owner answers the request.
var errLostClaim = errors.New("the claim on the merchant_reference was taken over")

// A lease says until when, by this process's monotonic clock, a claim is
// surely still its own. The lease runs on Redis's clock from the moment
// Redis took or renewed the claim; counting it from before the command was
// sent, minus a tenth for clocks that run at different rates, errs on the
// safe side. A process paused past it (SIGSTOP, a long GC, a VM freeze)
// finds the time gone when it resumes.
type lease struct {
	mu    sync.Mutex
	until time.Time
	lost  bool
}

func (l *lease) renewed(sent time.Time, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.lost {
		l.until = sent.Add(d - d/10)
	}
}

func (l *lease) markLost() {
	l.mu.Lock()
	l.lost = true
	l.mu.Unlock()
}

// valid reports whether the claim is surely still held at now, and whether
// it is known to be lost.
func (l *lease) valid(now time.Time) (held, lost bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.lost && now.Before(l.until), l.lost
}

// fence is asked by the Dintero client right before it sends a payment or
// creates a session (dintero.WithFence), after every wait: the call slot,
// the token fetch, a backoff. Within the lease it costs nothing; past it,
// the claim is renewed in Redis first, and the call is stopped when that
// fails.
func (w *Worker) fence(d *delivery) func(context.Context) error {
	return func(ctx context.Context) error {
		held, lost := d.lease.valid(time.Now())
		switch {
		case held:
			return nil
		case lost:
			return errLostClaim
		}
		sent := time.Now()
		err := w.store.Extend(ctx, d.key, d.claim.Token)
		switch {
		case err == nil:
			d.lease.renewed(sent, w.store.Lease())
			return nil
		case errors.Is(err, idempotency.ErrNotOwner):
			d.lease.markLost()
			return errLostClaim
		}
		return fmt.Errorf("cannot confirm the claim on the merchant_reference: %w", err)
	}
}
