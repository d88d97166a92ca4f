package worker

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/messages"
)

// Dunning, asked for per request (messages.HeaderRetryUntil): a charge
// declined softly (Dintero's RETRY_AFTER_DELAY, or insufficient funds) is
// charged again later, under the same merchant_reference (Dintero's
// strict-success toggle refuses only a second success), until the
// publisher's deadline:
//
//   - the next attempt is due at Dintero's retry_after, else after the
//     next wait of Config.DunningSchedule (default 24h, then 48h three
//     times: days 1, 3, 5 and 7);
//   - it is a JetStream message schedule (schedule.go) carrying the
//     attempt's number, so it survives every restart; the request is acked
//     meanwhile, and a non-final retry_scheduled event says when;
//   - the token governor counts every attempt: one over the token's budget
//     ends the dunning declined (retry_limit_reached), and a hard decline
//     ends it and blocks the token;
//   - the request gets one final result: succeeded, or declined when the
//     deadline, the schedule or the budget ends it.

// HeaderAttempt, on a scheduled copy of a dunning request, is the number of
// the attempt it is (2 for the first retry).
const HeaderAttempt = "Payworker-Attempt"

// HeaderAttemptSince, on the parked copy of a dunning attempt, is when the
// attempt began: the declines Dintero holds from before it belong to the
// attempts before.
const HeaderAttemptSince = "Payworker-Attempt-Since"

// DefaultDunningSchedule is the default Config.DunningSchedule: attempts on
// days 1, 3, 5 and 7 after the first decline.
func DefaultDunningSchedule() []time.Duration {
	return []time.Duration{24 * time.Hour, 48 * time.Hour, 48 * time.Hour, 48 * time.Hour}
}

// readDunning reads a request's dunning deadline and attempt number.
func readDunning(d *delivery, h nats.Header) {
	if t, err := time.Parse(time.RFC3339, h.Get(messages.HeaderRetryUntil)); err == nil {
		d.retryUntil = t
	}
	d.attempt = 1
	if n, err := strconv.Atoi(h.Get(HeaderAttempt)); err == nil && n > 1 {
		d.attempt = n
	}
	if t, err := time.Parse(time.RFC3339Nano, h.Get(HeaderAttemptSince)); err == nil {
		d.since = t
	}
}

// attemptSince is when d's dunning attempt began: its copy's arrival, or,
// for the parked copy of an attempt, the arrival of the attempt's own copy.
func (d *delivery) attemptSince() time.Time {
	if !d.since.IsZero() {
		return d.since
	}
	return d.copyAt
}

// softDecline reports whether a decline may be retried later: Dintero says
// RETRY_AFTER_DELAY, or the funds were short, and nothing says not to.
func softDecline(e *dintero.EventError) bool {
	if e == nil || hardDecline(e) != "" {
		return false
	}
	if e.RetryPolicy != nil && slices.Contains(e.RetryPolicy.RetryCodes, dintero.RetryAfterDelay) {
		return true
	}
	return slices.Contains(e.Type, "INSUFFICIENT_FUNDS")
}

// dun decides on a decline of a request that asked for dunning: the next
// attempt when the decline is soft and the deadline and the schedule allow
// one, else the decline as the final result.
func (w *Worker) dun(d *delivery, c *chargeRequest, tx *dintero.Transaction) decision {
	final := finish(c.fromTransaction(tx, d.attempts(), w.now()))
	if d.retryUntil.IsZero() || w.cfg.DisableDunning || d.attempt > len(w.cfg.DunningSchedule) || !softDecline(tx.LastError()) {
		return final
	}
	next := w.now().Add(w.cfg.DunningSchedule[d.attempt-1])
	if e := tx.LastError(); e != nil && e.RetryPolicy != nil && e.RetryPolicy.RetryAfter != nil {
		// Dintero's time, even when it has passed (an attempt resolved
		// late): then the next attempt is due now.
		next = *e.RetryPolicy.RetryAfter
		if soon := w.now().Add(time.Second); next.Before(soon) {
			next = soon
		}
	}
	if next.After(d.retryUntil) {
		d.log.Info("soft decline past the dunning deadline: final", "retry_until", d.retryUntil, "next_attempt_at", next)
		return final
	}
	rerr := declineError(tx)
	ev := c.base(d.attempts(), w.now())
	ev.Outcome, ev.Error, ev.Status, ev.TransactionID, ev.Attempt = messages.OutcomeRetryScheduled, rerr, tx.Status, tx.ID, d.attempt
	at := next.UTC()
	ev.NextAttemptAt = &at
	r := chargeResult(ev)
	r.idSuffix = "-" + strconv.Itoa(d.attempt) // one event per attempt
	return decision{retryAt: next, event: r}
}

// holdMargin is how long past its next attempt's due time a dunning
// request's hold on its record lasts. The attempt normally claims the
// record well within it; if it does not (its scheduled copy is late, or
// Redis lost the final result the request stored), duplicates stop
// waiting and are handled as without a hold: Dintero's strict toggle and
// the lookup keep the reference charged once.
const holdMargin = 2 * time.Minute

// scheduleAttempt carries out a decision to try again later: the record is
// released but held for this request (nothing is charged now; another
// request of the reference waits for this one's final result rather than
// charging beside it), the next attempt scheduled, and the retry_scheduled
// event published. It reports whether the message may be acked.
func (w *Worker) scheduleAttempt(ctx context.Context, d *delivery, dec decision) bool {
	if d.owned {
		// A parked attempt that turned out declined is unparked: the next
		// one may charge. The hold lasts until the next attempt is due,
		// plus holdMargin; that attempt holds the record again.
		unpark := d.claim.State == idempotency.StateParked
		if err := w.store.Hold(ctx, d.key, d.claim.Token, d.seq, time.Until(dec.retryAt)+holdMargin, unpark); err != nil {
			d.log.Warn("could not release the claim; its lease will run out", "err", err)
		}
	}
	extra := nats.Header{HeaderAttempt: {strconv.Itoa(d.attempt + 1)},
		messages.HeaderRetryUntil: {d.retryUntil.UTC().Format(time.RFC3339)}}
	if err := w.schedule(ctx, d, RetrySubject(d.kind.name, d.key.Ref, d.seq), dec.retryAt, extra); err != nil {
		d.log.Warn("could not schedule the next attempt; retrying later", "err", err)
		w.nak(d, "dunning", w.retryDelay(d.delivered))
		return false
	}
	if err := w.publishResult(ctx, d, dec.event); err != nil {
		d.log.Warn("could not publish the retry_scheduled event", "err", err) // non-final
	}
	w.m.dunningScheduled(d.attempt)
	d.log.Info("soft decline: next attempt scheduled", "attempt", d.attempt, "next_attempt_at", dec.retryAt.UTC())
	return true
}
