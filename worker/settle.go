package worker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"

	"github.com/payworker/payworker/messages"
)

// process takes one message through the flow and settles it. A panic
// anywhere in the flow becomes a retry, so MaxDeliver bounds it like any
// other failure.
func (w *Worker) process(ctx context.Context, msg jetstream.Msg) {
	w.m.inflight(1)
	defer w.m.inflight(-1)
	d, err := w.readDelivery(msg)
	if err != nil {
		// No metadata, or a subject no kind is published on.
		w.log.Error("unreadable message", "subject", msg.Subject(), "err", err)
		w.settle(ctx, &delivery{msg: msg, log: w.log, delivered: 1},
			decision{deadLetter: "unreadable: " + err.Error(), term: "unreadable"})
		return
	}
	if d.delivered > 1 {
		w.m.redelivered()
	}
	ctx, span := w.startRequest(ctx, d)
	dec := w.protect(ctx, d)
	if r := dec.result; r != nil {
		span.SetAttributes(attribute.String("payworker.outcome", string(r.outcome)))
	}
	w.settle(ctx, d, dec)
	endSpan(span, dec.err)
}

// protect runs the flow and turns a panic into a decision to retry.
func (w *Worker) protect(ctx context.Context, d *delivery) (dec decision) {
	defer func() {
		if p := recover(); p != nil {
			d.log.Error("panic while handling a request", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			dec = decision{reason: "panic", err: fmt.Errorf("panic: %v", p), maybeSent: d.owned}
		}
	}()
	return w.handle(ctx, d)
}

// settle carries out a decision. It is, with nak, the one place where a
// request message is acknowledged, handed back or terminated, and where a
// result is stored and published. The order is what makes a crash between
// any two steps harmless:
//
//	finished:     store the result in the claim → dead letter → publish → Ack (or Term)
//	not finished: release the claim → NakWithDelay
//
// A result stored but not published is published again by the next
// delivery, under the same Nats-Msg-Id; one published but not acked is
// de-duplicated by JetStream. A request whose outcome is unknown is
// parked (park.go) and acked. After the last delivery a request that is not
// finished is parked when Dintero may hold a charge for it, and gets a
// failed result (gave_up) only when it cannot; one whose result cannot be
// published goes to the dead-letter stream and is terminated: nothing is
// handed back forever.
func (w *Worker) settle(ctx context.Context, d *delivery, dec decision) {
	last := d.delivered >= uint64(w.cfg.MaxDeliver)
	defer w.recoverSettle(ctx, d, last)
	if dec.result == nil && dec.term == "" {
		switch {
		case dec.park, last && !dec.wait && w.mayPark(d, dec):
			if !w.park(ctx, d, dec) {
				return
			}
		case !dec.retryAt.IsZero():
			if !w.scheduleAttempt(ctx, d, dec) {
				return
			}
		case last && !dec.wait:
			dec = w.giveUp(d, dec)
		default:
			w.handBack(ctx, d, dec)
			return
		}
	}
	if !w.record(ctx, d, dec) {
		return
	}
	dec, ok := w.send(ctx, d, dec, last)
	if !ok {
		return
	}
	var err error
	if dec.term != "" {
		err = d.msg.TermWithReason(dec.term)
	} else {
		err = d.msg.Ack()
	}
	if err != nil {
		d.log.Warn("ack failed; the request will be redelivered and answered from its record", "err", err)
		return
	}
	if r := dec.result; r != nil {
		w.m.result(r.outcome, r.duplicate, w.now().Sub(d.published).Seconds())
		d.log.Debug("request done", "outcome", r.outcome, "status", r.status, "transaction_id", r.transactionID,
			"duplicate", r.duplicate)
	}
}

// record stores a decision's result in the claim this delivery owns (or
// forgets the claim's record), and hands the message back when it cannot.
func (w *Worker) record(ctx context.Context, d *delivery, dec decision) bool {
	r := dec.result
	if r == nil || !d.owned || r.stored {
		return true
	}
	var err error
	if dec.forget {
		err = w.store.Forget(ctx, d.key, d.claim.Token)
	} else {
		body, seq := r.body, d.seq
		if r.keep != nil {
			// This delivery resolved another request's parked record: the
			// record keeps that request's own result (resolvedFor).
			body, seq = r.keep, d.recordSeq()
		}
		err = w.store.Complete(ctx, d.key, d.claim.Token, seq, body, r.reopenable)
	}
	if err != nil {
		// Dintero's answer stands; a later delivery finds it through the
		// claim, or through a lookup once the lease runs out.
		d.log.Warn("could not store the result; retrying later", "outcome", r.outcome, "err", err)
		w.nak(d, "store", w.retryDelay(d.delivered))
		return false
	}
	return true
}

// send publishes the decision's dead letter and result, and hands the
// message back when it cannot. After the last delivery, a result that
// cannot be published is replaced by a dead letter (an operator can replay
// it; the replay is answered from the stored result) and a Term.
func (w *Worker) send(ctx context.Context, d *delivery, dec decision, last bool) (decision, bool) {
	if dec.deadLetter != "" {
		if err := w.deadLetter(ctx, d, dec.deadLetter); err != nil {
			d.log.Error("could not dead-letter a request", "reason", truncate(dec.deadLetter, maxReasonBytes), "err", err)
			if dec.result == nil { // nothing else keeps the payload: keep the message
				w.nak(d, "dead_letter", w.retryDelay(d.delivered))
				return dec, false
			}
			dec.deadLetter = ""
		}
	}
	if dec.result == nil {
		return dec, true
	}
	err := w.publishResult(ctx, d, dec.result)
	if err == nil {
		return dec, true
	}
	if !last || dec.deadLetter == "" && w.deadLetter(ctx, d, fmt.Sprintf("the %s result could not be published: %v", dec.result.outcome, err)) != nil {
		d.log.Warn("could not publish the result; retrying later", "outcome", dec.result.outcome, "err", err)
		w.nak(d, "publish", w.retryDelay(d.delivered))
		return dec, false
	}
	d.log.Error("giving up publishing the result; the request is in the dead-letter stream", "err", err)
	return decision{term: "result not published"}, true
}

// recoverSettle handles a panic while settling: the message is handed back,
// or after its last delivery dead-lettered and terminated.
func (w *Worker) recoverSettle(ctx context.Context, d *delivery, last bool) {
	p := recover()
	if p == nil {
		return
	}
	d.log.Error("panic while settling a request", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	if !last || d.panicked {
		w.nak(d, "panic", w.cfg.MaxRetryDelay)
		return
	}
	d.panicked = true
	w.settle(ctx, d, decision{deadLetter: fmt.Sprintf("panic while settling: %v", p), term: "panic"})
}

// nak hands a message back for another delivery after delay (at once when
// delay is 0).
func (w *Worker) nak(d *delivery, reason string, delay time.Duration) {
	w.m.retry(reason)
	var err error
	if delay > 0 {
		err = d.msg.NakWithDelay(delay)
	} else {
		err = d.msg.Nak()
	}
	if err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
		d.log.Debug("nak failed; the message comes back after AckWait", "err", err)
	}
}

// giveUp turns a request that is still not finished after its last
// delivery into a failed result (gave_up), with a dead letter.
func (w *Worker) giveUp(d *delivery, dec decision) decision {
	why := "unknown"
	if dec.err != nil {
		why = dec.err.Error()
	}
	d.log.Error("giving up on a request after its last delivery", "err", dec.err, "max_deliver", w.cfg.MaxDeliver)
	rerr := &messages.ResultError{Code: messages.CodeGaveUp,
		Message: capMessage(fmt.Sprintf("gave up after %d deliveries: %s", d.delivered, why))}
	var r *result
	if d.req != nil {
		r = d.req.fail(messages.OutcomeFailed, rerr, d.attempts(), w.now())
	} else { // it never got past decoding: a panic, say
		r = d.kind.bare(d.kind.reference(d.msg.Data()), messages.OutcomeFailed, rerr, w.now())
	}
	return decision{result: r, deadLetter: "gave up: " + why}
}

// handBack releases the claim (saying whether Dintero may hold a charge)
// and hands the message back for a later delivery.
func (w *Worker) handBack(ctx context.Context, d *delivery, dec decision) {
	if d.owned {
		if err := w.store.Release(ctx, d.key, d.claim.Token, dec.maybeSent); err != nil {
			d.log.Warn("could not release the claim; its lease will run out", "err", err)
		}
	}
	w.nak(d, dec.reason, w.handBackDelay(d, dec))
}

// handBackDelay is how long a message handed back waits: exponential
// backoff, at least what Dintero asked for; another owner's lease when
// that owner is working on the request.
func (w *Worker) handBackDelay(d *delivery, dec decision) time.Duration {
	if dec.wait {
		delay := min(max(dec.after, w.cfg.RetryDelay), w.cfg.MaxRetryDelay)
		d.log.Debug("not finished; trying again later", "reason", dec.reason, "err", dec.err, "delay", delay)
		return delay
	}
	delay := max(w.retryDelay(d.delivered), min(dec.after, w.cfg.MaxRetryDelay))
	d.log.Warn("not finished; trying again later", "reason", dec.reason, "err", dec.err, "delay", delay,
		"maybe_sent", dec.maybeSent)
	return delay
}

// retryDelay is the NakWithDelay for the given delivery count: exponential
// from RetryDelay, capped at MaxRetryDelay, with ±20 % jitter so that
// redeliveries from a burst spread out.
func (w *Worker) retryDelay(delivered uint64) time.Duration {
	d := w.cfg.RetryDelay
	for i := uint64(1); i < delivered && d < w.cfg.MaxRetryDelay; i++ {
		d *= 2
	}
	d = min(d, w.cfg.MaxRetryDelay)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
