package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/messages/publish"
)

// pubRec records a message that the requests stream accepted.
type pubRec struct {
	Index   int    // in plan.Msgs
	Seq     uint64 // in PAYMENT_REQUESTS
	At      time.Time
	Retries int  // failed publish attempts before the ack
	DupAck  bool // the stream reported it as a duplicate (a retry after a lost ack)
}

// publisher sends the plan at a steady rate. A conflicting request is held
// back until its original has a result, so that "the conflicting amount was
// charged" can only mean a bug.
type publisher struct {
	js    jetstream.JetStream
	pl    plan
	tr    *tracker
	rate  float64 // messages per second
	log   *slog.Logger
	mu    sync.Mutex
	pubs  []pubRec
	seqOf map[int]uint64 // plan index -> request seq
	held  []int          // conflicts waiting for their original
}

func newPublisher(js jetstream.JetStream, pl plan, tr *tracker, rate float64, log *slog.Logger) *publisher {
	return &publisher{js: js, pl: pl, tr: tr, rate: rate, log: log, seqOf: make(map[int]uint64, len(pl.Msgs))}
}

// published returns a copy of what was published so far.
func (p *publisher) published() []pubRec {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]pubRec(nil), p.pubs...)
}

// seqs returns the request sequences published so far.
func (p *publisher) seqs() []uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]uint64, len(p.pubs))
	for i, r := range p.pubs {
		out[i] = r.Seq
	}
	return out
}

// heldBack returns how many conflicts still wait for their original.
func (p *publisher) heldBack() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.held)
}

// runSchedule publishes every planned message at its time: message i at
// start + i/rate. A late schedule (NATS down) catches up without sleeping.
func (p *publisher) runSchedule(ctx context.Context) error {
	start := time.Now()
	for i, m := range p.pl.Msgs {
		due := start.Add(time.Duration(float64(i) / p.rate * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-time.After(d):
			}
		}
		if err := p.releaseHeld(ctx); err != nil {
			return err
		}
		if m.Kind == kindConflict && !p.originalDone(m) {
			p.mu.Lock()
			p.held = append(p.held, i)
			p.mu.Unlock()
			continue
		}
		if err := p.publish(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// drainHeld publishes held conflicts as their originals finish, until none
// is left or ctx ends.
func (p *publisher) drainHeld(ctx context.Context) error {
	for p.heldBack() > 0 {
		if err := p.releaseHeld(ctx); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

func (p *publisher) originalDone(m planned) bool {
	p.mu.Lock()
	seq, ok := p.seqOf[m.Original]
	p.mu.Unlock()
	return ok && p.tr.has(seq)
}

func (p *publisher) releaseHeld(ctx context.Context) error {
	p.mu.Lock()
	held := p.held
	p.held = nil
	p.mu.Unlock()
	var keep []int
	for _, i := range held {
		m := p.pl.Msgs[i]
		if !p.originalDone(m) {
			keep = append(keep, i)
			continue
		}
		if err := p.publish(ctx, m); err != nil {
			return err
		}
	}
	p.mu.Lock()
	p.held = append(keep, p.held...)
	p.mu.Unlock()
	return nil
}

// publish sends one message, retrying with the same Nats-Msg-Id until the
// stream acknowledges it: a retry after a lost ack is de-duplicated.
func (p *publisher) publish(ctx context.Context, m planned) error {
	retries := 0
	for {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		var opts []publish.Option
		if m.Dunning > 0 {
			opts = append(opts, publish.RetryUntil(time.Now().Add(dunningWindow)))
		}
		ack, err := publish.ChargeBody(pctx, p.js, m.Body, m.MsgID, opts...)
		cancel()
		if err == nil {
			p.mu.Lock()
			p.pubs = append(p.pubs, pubRec{Index: m.Index, Seq: ack.Sequence, At: time.Now(), Retries: retries, DupAck: ack.Duplicate})
			p.seqOf[m.Index] = ack.Sequence
			p.mu.Unlock()
			if ack.Duplicate && retries == 0 {
				p.log.Warn("first publish reported as duplicate", "merchant_reference", m.Ref, "msg_id", m.MsgID, "seq", ack.Sequence)
			}
			return nil
		}
		var verr *messages.ValidationError
		if errors.As(err, &verr) {
			return fmt.Errorf("publish %s: %w", m.MsgID, err)
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		retries++
		if retries == 1 || retries%20 == 0 {
			p.log.Info("publish failed; retrying", "msg_id", m.MsgID, "retries", retries, "err", err)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
