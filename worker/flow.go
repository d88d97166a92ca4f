package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/messages"
)

// The flow every request goes through, charge or session alike:
//
//	decode ─ invalid ─────────────────────────▶ rejected (dead letter, Term)
//	claim the reference (idempotency store)
//	  completed ─▶ the stored result (duplicate unless it is this message's)
//	  conflict ──▶ rejected (dead letter)
//	  in progress elsewhere ─▶ try again after the other owner's lease
//	  new, recovered ─▶ the kind's Dintero call, heartbeat and fence around it
//
// Each step returns a decision; settle carries it out. What differs between
// the kinds is their kind value and their request type (charge.go,
// session.go).

// A kind is what differs between charge and session requests, besides
// their request types.
type kind struct {
	name    string // messages.KindCharge or messages.KindSession
	subject string // the request subject (in the default namespace)
	// msgIDPrefix goes before the reference in a result's Nats-Msg-Id.
	msgIDPrefix string
	// decode checks a body (messages.DecodeChargeRequest, ...).
	decode func(body []byte) (request, error)
	// reference extracts a merchant_reference from a body that failed
	// decoding, best effort.
	reference func(body []byte) string
	// bare is a result for a body that never got past decoding: rejected
	// when it is invalid, failed when it could not be handled at all.
	bare func(ref string, outcome messages.Outcome, rerr *messages.ResultError, now time.Time) *result
	// fromRecord turns a stored result into the answer to a request:
	// as it is, or marked duplicate.
	fromRecord func(stored []byte, duplicate bool) (*result, error)
}

// A request is a valid request of one kind.
type request interface {
	// key is the request's idempotency record.
	key() idempotency.Key
	// call asks Dintero for a request whose claim d owns, and decides.
	call(ctx context.Context, w *Worker, d *delivery) decision
	// fail is a final result without a transaction: rejected or failed.
	fail(outcome messages.Outcome, rerr *messages.ResultError, attempts int, now time.Time) *result
}

// aroundSlot is what a request does just outside its call slot, where a
// round trip to Redis does not hold one of the slots that bound the calls
// to Dintero (chargeRequest: the token governor's).
type aroundSlot interface {
	// beforeSlot runs before the slot is taken; a decision ends the call.
	beforeSlot(ctx context.Context, w *Worker, d *delivery) *decision
	// afterSlot runs once the slot is given back, or was not had.
	afterSlot(ctx context.Context, w *Worker, d *delivery)
}

// handle takes one delivery through the flow up to its decision.
func (w *Worker) handle(ctx context.Context, d *delivery) decision {
	body := d.msg.Data()
	req, err := d.kind.decode(body)
	if err != nil {
		d.log = lazyWith(w.log, append(traceAttrs(ctx), slog.String("kind", d.kind.name), slog.Uint64("stream_seq", d.seq),
			slog.Uint64("attempt", d.delivered))...)
		return w.rejectInvalid(d, body, err)
	}
	d.req, d.key = req, req.key()
	d.log = lazyWith(w.log, append(traceAttrs(ctx), slog.String("merchant_reference", d.key.Ref), slog.String("kind", d.kind.name),
		slog.Uint64("stream_seq", d.seq), slog.Uint64("attempt", d.delivered))...)

	fp, err := messages.Fingerprint(body)
	if err != nil { // the decoder accepted it, so this cannot happen
		return w.rejectInvalid(d, body, err)
	}
	sent := time.Now()
	cctx, span := w.cfg.Tracer.Start(ctx, "claim")
	claim, err := w.store.Claim(cctx, d.key, fp, d.seq)
	span.SetAttributes(attribute.String("payworker.claim", claim.State.String()))
	endSpan(span, err)
	if err != nil {
		return retry("store", fmt.Errorf("idempotency store: %w", err))
	}
	w.m.claim(claim.State)
	switch claim.State {
	case idempotency.StateCompleted:
		return w.answerFromRecord(d, claim)
	case idempotency.StateConflict:
		rerr := conflictError(d.key.Ref)
		return decision{result: req.fail(messages.OutcomeRejected, rerr, 0, w.now()), deadLetter: "conflict: " + rerr.Message}
	case idempotency.StateInProgress:
		// Another live owner is on it; its result will be stored, and
		// this message answered from it. Never give up here.
		return decision{reason: "in_progress", wait: true, after: claim.LeaseRemaining,
			err: errors.New("the reference is being handled by another delivery")}
	case idempotency.StateNew, idempotency.StateRecovered, idempotency.StateParked:
		d.claim, d.owned = claim, true
		d.resolving = d.resolving || claim.State == idempotency.StateParked
		d.lease.renewed(sent, w.store.Lease())
		return w.callDintero(ctx, d)
	}
	return retry("store", fmt.Errorf("unexpected claim state %v", claim.State))
}

// callDintero runs the kind's Dintero call for a claim this delivery owns:
// with a heartbeat from before the wait for a call slot until Dintero has
// answered, and the fence on the claim.
func (w *Worker) callDintero(ctx context.Context, d *delivery) decision {
	stop := w.heartbeat(ctx, d)
	defer stop()
	if around, ok := d.req.(aroundSlot); ok {
		if dec := around.beforeSlot(ctx, w, d); dec != nil {
			return *dec
		}
		defer around.afterSlot(ctx, w, d)
	}
	if !w.acquireCall(ctx) {
		return decision{reason: "shutdown", err: context.Cause(ctx), maybeSent: d.claim.State == idempotency.StateRecovered}
	}
	dec := d.req.call(ctx, w, d)
	w.releaseCall()
	// Dintero has answered: stop renewing the lease before the claim is
	// completed or released (a renewal racing the completion only logs a
	// misleading warning).
	stop()
	if _, lost := d.lease.valid(time.Now()); lost || errors.Is(dec.err, errLostClaim) {
		// The claim is another delivery's now: leave the record alone.
		d.owned = false
		if dec.result == nil {
			dec.wait, dec.reason = true, "lost_claim"
		}
	}
	return dec
}

// answerFromRecord answers with the stored result of a completed
// reference: as it is when this very message completed it (and was not
// acked), else marked duplicate.
func (w *Worker) answerFromRecord(d *delivery, claim idempotency.Claim) decision {
	r, err := d.kind.fromRecord(claim.Result, claim.Sequence != d.seq)
	if err != nil {
		return retry("store", fmt.Errorf("stored result: %w", err))
	}
	r.stored = true
	return finish(r)
}

// rejectInvalid answers a body that failed validation: a rejected result
// with the field errors (at most maxResultFields of them), the payload in
// the dead-letter stream, and TermWithReason.
func (w *Worker) rejectInvalid(d *delivery, body []byte, err error) decision {
	rerr := &messages.ResultError{Code: messages.CodeInvalidRequest, Message: err.Error()}
	var ve *messages.ValidationError
	if errors.As(err, &ve) {
		rerr.Fields = ve.Fields
	}
	capFields(rerr)
	d.log.Info("request rejected: invalid", "err", rerr.Message)
	return decision{result: d.kind.bare(d.kind.reference(body), messages.OutcomeRejected, rerr, w.now()),
		deadLetter: "invalid request: " + rerr.Message, term: "invalid request"}
}
