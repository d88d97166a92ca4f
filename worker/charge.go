package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/messages"
)

// delivery is one delivery of one request message.
type delivery struct {
	msg       jetstream.Msg
	seq       uint64 // stream sequence: the request's identity
	delivered uint64 // NumDelivered, 1 on the first delivery
	published time.Time
	trace     string // the request's valid traceparent, or ""
	log       *slog.Logger
}

// newDelivery reads what the worker needs of a message's metadata and
// headers. A message without JetStream metadata is terminated.
func (w *Worker) newDelivery(msg jetstream.Msg) (*delivery, bool) {
	meta, err := msg.Metadata()
	if err != nil {
		w.log.Error("message without JetStream metadata; terminating it", "subject", msg.Subject(), "err", err)
		_ = msg.TermWithReason("no metadata")
		return nil, false
	}
	d := &delivery{msg: msg, seq: meta.Sequence.Stream, delivered: meta.NumDelivered,
		published: meta.Timestamp, trace: traceparentOf(msg.Headers())}
	if d.delivered > 1 {
		w.m.redelivered()
	}
	return d, true
}

// verdict is what a charge attempt came to: a final result, or a reason to
// try again later.
type verdict struct {
	result     *messages.ChargeResult // final; nil means retry later
	why        string                 // for retries and give-ups
	maybeSent  bool                   // Dintero may have charged: recover by lookup first
	retryAfter time.Duration          // Dintero asked us to wait this long
	label      string                 // metrics label of a retry; "dintero" when empty
}

func (w *Worker) handleCharge(ctx context.Context, msg jetstream.Msg) {
	d, ok := w.newDelivery(msg)
	if !ok {
		return
	}
	data := msg.Data()
	req, err := messages.DecodeChargeRequest(data)
	if err != nil {
		d.log = lazyWith(w.log, slog.Uint64("stream_seq", d.seq), slog.Uint64("attempt", d.delivered))
		w.rejectInvalid(ctx, d, data, err)
		return
	}
	ref := req.Session.Order.MerchantReference
	d.log = lazyWith(w.log, slog.String("merchant_reference", ref), slog.Uint64("stream_seq", d.seq), slog.Uint64("attempt", d.delivered))

	fp, err := messages.Fingerprint(data)
	if err != nil { // DecodeChargeRequest accepted it, so this cannot happen
		w.rejectInvalid(ctx, d, data, err)
		return
	}
	claim, err := w.store.Claim(ctx, idempotency.ChargeKey(ref), fp, d.seq)
	if err != nil {
		w.retryLater(ctx, d, req, nil, verdict{why: "idempotency store: " + err.Error(), label: "store"})
		return
	}
	w.m.claim(claim.State)
	switch claim.State {
	case idempotency.StateCompleted:
		w.answerFromRecord(ctx, d, claim)
	case idempotency.StateConflict:
		w.rejectConflict(ctx, d, req, data)
	case idempotency.StateInProgress:
		// Another live worker is charging this reference; its result will
		// be stored, and this message answered from it. Never give up here.
		delay := min(max(claim.LeaseRemaining, w.cfg.RetryDelay), w.cfg.MaxRetryDelay)
		d.log.Debug("reference in progress elsewhere; retrying later", "delay", delay)
		w.m.retry("in_progress")
		_ = msg.NakWithDelay(delay)
	case idempotency.StateNew, idempotency.StateRecovered:
		w.charge(ctx, d, req, data, claim)
	default:
		w.retryLater(ctx, d, req, nil, verdict{why: fmt.Sprintf("unexpected claim state %v", claim.State)})
	}
}

// charge runs one charge attempt for a claim this worker owns.
func (w *Worker) charge(ctx context.Context, d *delivery, req *messages.ChargeRequest, body []byte, claim idempotency.Claim) {
	ref := req.Session.Order.MerchantReference
	ctx = dintero.WithTraceparent(ctx, d.trace)
	stop := w.heartbeat(ctx, d.msg, idempotency.ChargeKey(ref), claim.Token)
	defer stop() // stop may run twice

	v := w.askDintero(ctx, d, req, body, claim)
	// Dintero has answered: the claim is about to be completed or
	// released, so stop renewing its lease (a renewal racing the
	// completion only logs a misleading warning).
	stop()
	if v.result == nil {
		w.retryLater(ctx, d, req, &claim, v)
		return
	}
	w.complete(ctx, d, claim, v.result)
}

// askDintero takes one of the MaxInFlight call slots and charges, after
// looking the reference up first when an earlier attempt may have reached
// Dintero.
func (w *Worker) askDintero(ctx context.Context, d *delivery, req *messages.ChargeRequest, body []byte, claim idempotency.Claim) verdict {
	if !w.acquireCall(ctx) {
		return verdict{why: "stopped while waiting to call Dintero", label: "shutdown",
			maybeSent: claim.State == idempotency.StateRecovered}
	}
	defer w.releaseCall()
	if claim.State == idempotency.StateRecovered {
		// An earlier attempt may have reached Dintero: find out before
		// charging.
		d.log.Info("recovering an unfinished charge: looking it up at Dintero", "claims", claim.Attempts)
		if v := w.lookup(ctx, req, claim.Attempts); v.result != nil || v.why != "" {
			return v
		}
	}
	tx, err := w.gw.PaySession(ctx, body)
	return w.interpretPay(ctx, req, claim.Attempts, tx, err)
}

// interpretPay turns the answer of POST /v1/sessions/pay into a verdict.
func (w *Worker) interpretPay(ctx context.Context, req *messages.ChargeRequest, attempts int, tx *dintero.Transaction, err error) verdict {
	if err == nil {
		return verdict{result: w.resultFromTransaction(req, attempts, tx)}
	}
	var derr *dintero.Error
	if !errors.As(err, &derr) {
		return verdict{why: "dintero: " + err.Error(), maybeSent: true}
	}
	switch derr.Kind {
	case dintero.KindDeclined:
		return verdict{result: w.resultFromTransaction(req, attempts, derr.Transaction)}
	case dintero.KindUnknownOutcome:
		// The card may have been charged: ask Dintero what happened.
		v := w.lookup(ctx, req, attempts)
		if v.result == nil && v.why == "" {
			v.why = "outcome unknown (" + derr.Error() + ") and no transaction found yet"
		}
		v.maybeSent = v.result == nil
		return v
	case dintero.KindPermanent, dintero.KindInvalid:
		if derr.DuplicateReference() {
			// Dintero refused a second successful charge: the first one
			// is ours, from an attempt whose answer was lost.
			v := w.lookup(ctx, req, attempts)
			if v.result == nil && v.why == "" {
				v.why = "Dintero reports a duplicate merchant_reference but lists no transaction for it"
			}
			v.maybeSent = v.result == nil
			return v
		}
		if derr.StatusCode == 400 || derr.StatusCode == 422 {
			return verdict{result: w.failure(req, messages.OutcomeRejected, attempts, dinteroError(derr))}
		}
		// 403, 404 and the like: retrying will not help, but the request
		// itself may be fine once the account is fixed.
		return verdict{result: w.failure(req, messages.OutcomeFailed, attempts, dinteroError(derr))}
	case dintero.KindTransient:
		return verdict{why: derr.Error(), retryAfter: derr.RetryAfter}
	case dintero.KindAuth:
		w.log.Error("Dintero refused our credentials; check DINTERO_CLIENT_ID/DINTERO_CLIENT_SECRET", "err", derr)
		return verdict{why: derr.Error()}
	}
	return verdict{why: derr.Error(), maybeSent: true}
}

// lookup asks Dintero for the transactions of the request's reference and
// says what they mean: a final result, or a reason to try again later. An
// empty verdict means Dintero has no transaction for it: go charge.
func (w *Worker) lookup(ctx context.Context, req *messages.ChargeRequest, attempts int) verdict {
	ref := req.Session.Order.MerchantReference
	txs, err := w.gw.TransactionsByMerchantReference(ctx, ref)
	if err != nil {
		return verdict{why: "transaction lookup: " + err.Error(), maybeSent: true}
	}
	tx, kind := pickTransaction(txs, ref)
	switch kind {
	case pickSucceeded:
		if n := countSucceeded(txs, ref); n > 1 {
			w.log.Error("Dintero holds more than one successful charge for one merchant_reference",
				"merchant_reference", ref, "charges", n)
		}
		if tx.Amount != req.Session.Order.Amount || tx.Currency != req.Session.Order.Currency {
			// The reference was charged for another body (the idempotency
			// record was lost): this request conflicts with that charge.
			return verdict{result: w.failure(req, messages.OutcomeRejected, attempts, conflictError(ref))}
		}
		return verdict{result: w.resultFromTransaction(req, attempts, tx)}
	case pickPending:
		return verdict{why: "transaction " + tx.ID + " is " + tx.Status + " at Dintero", maybeSent: true}
	case pickDeclined:
		return verdict{result: w.resultFromTransaction(req, attempts, tx)}
	}
	return verdict{}
}

type pickKind int

const (
	pickNone pickKind = iota
	pickSucceeded
	pickPending
	pickDeclined
)

// pickTransaction chooses the transaction that decides a reference: the
// oldest success, else anything still pending, else the newest decline.
func pickTransaction(txs []dintero.Transaction, ref string) (*dintero.Transaction, pickKind) {
	var succeeded, pending, declined *dintero.Transaction
	for i := range txs {
		tx := &txs[i]
		if tx.MerchantReference != "" && tx.MerchantReference != ref {
			continue
		}
		switch {
		case dintero.Succeeded(tx.Status):
			if succeeded == nil || tx.CreatedAt.Before(succeeded.CreatedAt) {
				succeeded = tx
			}
		case dintero.Declined(tx.Status):
			if declined == nil || tx.CreatedAt.After(declined.CreatedAt) {
				declined = tx
			}
		default:
			pending = tx
		}
	}
	switch {
	case succeeded != nil:
		return succeeded, pickSucceeded
	case pending != nil:
		return pending, pickPending
	case declined != nil:
		return declined, pickDeclined
	}
	return nil, pickNone
}

func countSucceeded(txs []dintero.Transaction, ref string) int {
	n := 0
	for i := range txs {
		if dintero.Succeeded(txs[i].Status) && (txs[i].MerchantReference == "" || txs[i].MerchantReference == ref) {
			n++
		}
	}
	return n
}

// retryLater hands the message back for a later delivery, or gives up when
// deliveries have run out. claim is nil when this worker owns no claim.
func (w *Worker) retryLater(ctx context.Context, d *delivery, req *messages.ChargeRequest, claim *idempotency.Claim, v verdict) {
	ref := req.Session.Order.MerchantReference
	if d.delivered >= uint64(w.cfg.MaxDeliver) {
		d.log.Error("giving up on a request after its last delivery", "reason", v.why, "max_deliver", w.cfg.MaxDeliver)
		attempts := 0
		if claim != nil {
			attempts = claim.Attempts
		}
		res := w.failure(req, messages.OutcomeFailed, attempts, &messages.ResultError{
			Code:    messages.CodeGaveUp,
			Message: fmt.Sprintf("gave up after %d deliveries: %s", d.delivered, v.why),
		})
		if claim != nil {
			if err := w.store.Complete(ctx, idempotency.ChargeKey(ref), claim.Token, d.seq, mustJSON(res), true); err != nil {
				d.log.Warn("could not record the failed result", "err", err)
			}
		}
		w.deadLetter(ctx, d, v.why)
		w.publish(ctx, d, res, mustJSON(res), "gave up")
		return
	}
	if claim != nil {
		if err := w.store.Release(ctx, idempotency.ChargeKey(ref), claim.Token, v.maybeSent); err != nil {
			d.log.Warn("could not release the claim; its lease will expire", "err", err)
		}
	}
	if v.label == "" {
		v.label = "dintero"
	}
	w.m.retry(v.label)
	delay := max(w.retryDelay(d.delivered), min(v.retryAfter, w.cfg.MaxRetryDelay))
	d.log.Warn("charge not finished; retrying later", "reason", v.why, "delay", delay, "maybe_sent", v.maybeSent)
	_ = d.msg.NakWithDelay(delay)
}

// complete stores the final result in the claim, then publishes it and acks.
func (w *Worker) complete(ctx context.Context, d *delivery, claim idempotency.Claim, res *messages.ChargeResult) {
	data := mustJSON(res)
	err := w.store.Complete(ctx, idempotency.ChargeKey(res.MerchantReference), claim.Token, d.seq, data, res.Outcome == messages.OutcomeFailed)
	if err != nil {
		// The charge stands at Dintero; a later delivery finds it through
		// the claim (or, once the lease runs out, through a lookup).
		d.log.Warn("could not store the result; retrying later", "outcome", res.Outcome, "err", err)
		w.m.retry("store")
		_ = d.msg.NakWithDelay(w.retryDelay(d.delivered))
		return
	}
	if res.Outcome == messages.OutcomeRejected || res.Outcome == messages.OutcomeFailed {
		// Dintero refused the request (or a conflict was found there):
		// keep the payload for whoever looks into it.
		w.deadLetter(ctx, d, string(res.Outcome)+": "+res.Error.Message)
	}
	w.publish(ctx, d, res, data, "")
}

// answerFromRecord publishes the stored result of a completed reference.
func (w *Worker) answerFromRecord(ctx context.Context, d *delivery, claim idempotency.Claim) {
	if claim.Sequence == d.seq {
		// This very message completed the record and then was not acked:
		// publish the same result again under the same Nats-Msg-Id.
		var res messages.ChargeResult
		if err := json.Unmarshal(claim.Result, &res); err != nil {
			d.log.Error("stored result is not valid JSON", "err", err)
			_ = d.msg.NakWithDelay(w.cfg.MaxRetryDelay)
			return
		}
		w.publish(ctx, d, &res, claim.Result, "")
		return
	}
	var res messages.ChargeResult
	if err := json.Unmarshal(claim.Result, &res); err != nil {
		d.log.Error("stored result is not valid JSON", "err", err)
		_ = d.msg.NakWithDelay(w.cfg.MaxRetryDelay)
		return
	}
	res.Duplicate = true
	d.log.Debug("duplicate request answered from the idempotency record", "outcome", res.Outcome)
	w.publish(ctx, d, &res, mustJSON(&res), "")
}

// rejectInvalid answers a request that failed validation: a rejected result,
// the payload kept in the dead-letter stream, and TermWithReason.
func (w *Worker) rejectInvalid(ctx context.Context, d *delivery, data []byte, err error) {
	rerr := &messages.ResultError{Code: messages.CodeInvalidRequest, Message: err.Error()}
	var ve *messages.ValidationError
	if errors.As(err, &ve) {
		rerr.Fields = ve.Fields
	}
	res := &messages.ChargeResult{
		MerchantReference: messages.MerchantReference(data),
		Outcome:           messages.OutcomeRejected,
		Error:             rerr,
		CompletedAt:       w.now().UTC(),
	}
	d.log.Info("request rejected", "merchant_reference", res.MerchantReference, "err", err)
	w.deadLetter(ctx, d, "invalid request: "+err.Error())
	w.publish(ctx, d, res, mustJSON(res), "invalid request")
}

// rejectConflict answers a request that reuses a merchant_reference with a
// different body. The stored record is left as it is.
func (w *Worker) rejectConflict(ctx context.Context, d *delivery, req *messages.ChargeRequest, data []byte) {
	res := w.failure(req, messages.OutcomeRejected, 0, conflictError(req.Session.Order.MerchantReference))
	d.log.Warn("conflicting request rejected: merchant_reference reused with a different body")
	w.deadLetter(ctx, d, "conflict: merchant_reference reused with a different body")
	w.publish(ctx, d, res, mustJSON(res), "conflict")
}

// publish sends the result with its deterministic Nats-Msg-Id and, once
// JetStream has stored it, acks the request (or terminates it with reason
// when termReason is set). A failed publish hands the request back.
func (w *Worker) publish(ctx context.Context, d *delivery, res *messages.ChargeResult, data []byte, termReason string) {
	msg := resultMsg(messages.KindCharge, res.Outcome, res.MerchantReference,
		messages.ResultMsgID(res.MerchantReference, res.Outcome, d.seq), data, d.trace, w.now())
	if w.publishAndAck(ctx, d, msg, termReason) {
		w.m.answered(res, w.now().Sub(d.published).Seconds())
		d.log.Debug("request done", "outcome", res.Outcome, "status", res.Status, "transaction_id", res.TransactionID)
	}
}
