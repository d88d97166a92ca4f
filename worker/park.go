package worker

import (
	"context"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/messages"
)

// Unknown outcomes. A charge that may have reached Dintero (its pay call
// timed out, was reset or got a 5xx after it was sent, and the lookups by
// merchant_reference failed too) is never finalised as failed while its
// outcome is unknown, nor is a session request whose creation may have made
// a session (its answer lost, or an earlier delivery's) that could not be
// looked up or swept. When its deliveries run out, or a resolution lookup
// fails, it is parked:
//
//   - its record is parked (idempotency.Store.Park): every later request
//     with the reference only looks it up, nobody charges it or creates a
//     session for it;
//   - it is scheduled (schedule.go) for a lookup at the next step of
//     Config.ResolveSchedule, then every Config.ReviewEvery once the
//     schedule is over;
//   - the first time, a non-final unknown event is published, and at the
//     end of the schedule a non-final needs_review event (an operator
//     closes it with payctl resolve);
//   - the request is acked: nothing is held in worker memory or
//     unacknowledged while it waits.
//
// A scheduled lookup that answers ends the request: succeeded or declined
// with Dintero's transaction, or failed (not_charged) when Dintero holds
// none for the reference; for a session request, created with the session
// remembered (or made now, see resolveSession), or failed (not_created)
// when Dintero holds no session of the request.

// A parker is a request that can be parked (charges and sessions).
type parker interface {
	// event is a non-final event of the request.
	event(outcome messages.Outcome, rerr *messages.ResultError, next time.Time, attempts int, now time.Time) *result
}

// mayPark reports whether a request not finished after its last delivery
// must be parked rather than given up: Dintero may hold a charge for it.
func (w *Worker) mayPark(d *delivery, dec decision) bool {
	_, ok := d.req.(parker)
	return ok && (!d.owned || dec.maybeSent || d.resolving)
}

// park parks d's request (see above). It reports whether the message may
// be acked; when the schedule cannot be published it hands the message back
// instead.
func (w *Worker) park(ctx context.Context, d *delivery, dec decision) bool {
	step := d.origin.step + 1
	wait := w.cfg.ReviewEvery
	if step <= len(w.cfg.ResolveSchedule) {
		wait = w.cfg.ResolveSchedule[step-1]
	}
	next := w.now().Add(wait)
	if d.owned {
		if err := w.store.Park(ctx, d.key, d.claim.Token, d.recordSeq()); err != nil {
			// The schedule carries the parked state all the same.
			d.log.Warn("could not mark the record parked", "err", err)
		}
	}
	subject := ScheduleSubject(d.kind.name, d.key.Ref, d.seq)
	extra := nats.Header{HeaderResolveStep: {strconv.Itoa(step)}}
	if d.attempt > 1 {
		// A dunning attempt is resolved as that attempt: the declines
		// before it are not its answer.
		extra.Set(HeaderAttempt, strconv.Itoa(d.attempt))
		extra.Set(HeaderAttemptSince, d.attemptSince().UTC().Format(time.RFC3339Nano))
	}
	if err := w.schedule(ctx, d, subject, next, extra); err != nil {
		d.log.Warn("could not park the request; retrying later", "err", err)
		w.nak(d, "park", w.retryDelay(d.delivered))
		return false
	}
	why := "unknown"
	if dec.err != nil {
		why = dec.err.Error()
	}
	d.log.Warn("outcome unknown: request parked", "step", step, "next_check_at", next.UTC(), "err", dec.err)
	w.m.parked(step)
	outcome := messages.Outcome("")
	switch {
	case step == 1:
		outcome = messages.OutcomeUnknown
	case step == len(w.cfg.ResolveSchedule)+1:
		outcome = messages.OutcomeNeedsReview
		w.m.needsReview()
		d.log.Error("outcome still unknown after the whole resolution schedule: needs review (payctl resolve)", "err", dec.err)
	}
	if outcome != "" {
		p := d.req.(parker)
		rerr := &messages.ResultError{Code: messages.CodeOutcomeUnknown, Message: capMessage(why)}
		if err := w.publishResult(ctx, d, p.event(outcome, rerr, next, d.attempts(), w.now())); err != nil {
			// Non-final: the final result still comes.
			d.log.Warn("could not publish the "+string(outcome)+" event", "err", err)
		}
	}
	return true
}

// resolveCharge is the Dintero step of a parked charge: a lookup, never a
// charge. What Dintero holds decides; a lookup that fails parks the request
// again. An operator's verdict (payctl resolve --as) applies only where
// Dintero shows no transaction.
func (w *Worker) resolveCharge(ctx context.Context, d *delivery, c *chargeRequest) decision {
	if d.origin.copy {
		w.m.parkedAge(w.now().Sub(d.published))
	}
	dec, found := w.lookupCharge(ctx, d, c)
	switch {
	case found && dec.result == nil && !dec.retryAt.IsZero():
		// A dunning attempt Dintero declined softly: the dunning goes on.
		w.m.resolved(messages.OutcomeRetryScheduled, d.origin.step)
		return dec
	case found && dec.result != nil:
		if d.origin.resolveAs != "" {
			d.log.Warn("Dintero shows a transaction: the operator's verdict is not applied",
				"resolve_as", d.origin.resolveAs, "outcome", dec.result.outcome, "by", d.origin.by)
		}
		w.m.resolved(dec.result.outcome, d.origin.step)
		return w.resolvedFor(d, dec)
	case found && (d.origin.resolveAs == "" || dec.reason != "lookup"):
		// The lookup failed, or Dintero shows a transaction still pending.
		dec.park = true
		return dec
	}
	rerr := &messages.ResultError{Code: messages.CodeNotCharged,
		Message: "Dintero holds no transaction for this merchant_reference: nothing was charged; the request may be sent again"}
	outcome := messages.OutcomeFailed
	if as := d.origin.resolveAs; as != "" {
		d.log.Warn("closed by an operator", "resolve_as", as, "by", d.origin.by, "why", d.origin.why)
		outcome = as
		rerr = &messages.ResultError{Code: messages.CodeClosedByOperator,
			Message: capMessage("closed as " + string(as) + " by " + d.origin.by + ": " + d.origin.why)}
	}
	w.m.resolved(outcome, d.origin.step)
	return w.resolvedFor(d, finish(c.fail(outcome, rerr, d.attempts(), w.now())))
}

// parkAgain is the decision of a resolution that could not decide: park
// the request again, for the next step of the schedule.
func parkAgain(reason string, err error) decision {
	return decision{reason: reason, err: err, park: true}
}

// resolvedFor marks the result of a resolution a duplicate when the
// delivery resolved another request's parked record.
func (w *Worker) resolvedFor(d *delivery, dec decision) decision {
	if dec.result != nil && d.recordSeq() != d.seq {
		r, err := d.kind.fromRecord(dec.result.body, true)
		if err == nil {
			r.reopenable, r.keep = dec.result.reopenable, dec.result.body
			dec.result = r
		}
	}
	return dec
}

// event is a non-final event of a charge: unknown, needs_review.
func (c *chargeRequest) event(outcome messages.Outcome, rerr *messages.ResultError, next time.Time, attempts int, now time.Time) *result {
	res := c.base(attempts, now)
	res.Outcome, res.Error = outcome, rerr
	n := next.UTC()
	res.NextCheckAt = &n
	return chargeResult(res)
}

// parkedEvery is how often a worker counts the parked requests.
const parkedEvery = 15 * time.Second

// countParked sets payworker_parked_requests every parkedEvery until ctx
// ends: the schedules of parked requests in the requests stream, one per
// request, the same for every pod (alert on the max).
func (w *Worker) countParked(ctx context.Context) {
	t := time.NewTicker(parkedEvery)
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		s, err := w.js.Stream(ictx, w.names.StreamRequests)
		if err == nil {
			var info *jetstream.StreamInfo
			if info, err = s.Info(ictx, jetstream.WithSubjectFilter(w.names.schedules)); err == nil {
				w.m.parkedNow(len(info.State.Subjects))
			}
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			w.log.Debug("could not count the parked requests", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
