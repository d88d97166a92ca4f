package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/messages"
)


// handleSession creates a customer-initiated session (POST
// /v1/sessions-profile) once per merchant_reference and publishes its
// created result with the URL the customer must open. The completed or
// failed result follows from Dintero's callback (see Callbacks).
func (w *Worker) handleSession(ctx context.Context, msg jetstream.Msg) {
	d, ok := w.newDelivery(msg)
	if !ok {
		return
	}
	data := msg.Data()
	req, err := messages.DecodeSessionRequest(data)
	if err != nil {
		d.log = lazyWith(w.log, slog.Uint64("stream_seq", d.seq), slog.Uint64("attempt", d.delivered))
		rerr := &messages.ResultError{Code: messages.CodeInvalidRequest, Message: err.Error()}
		var ve *messages.ValidationError
		if errors.As(err, &ve) {
			rerr.Fields = ve.Fields
		}
		res := &messages.SessionResult{MerchantReference: messages.SessionMerchantReference(data),
			Outcome: messages.OutcomeRejected, Error: rerr, CompletedAt: w.now().UTC()}
		w.deadLetter(ctx, d, "invalid request: "+err.Error())
		w.publishSession(ctx, d, res, mustMarshal(res), "invalid request")
		return
	}
	ref := req.Order.MerchantReference
	d.log = lazyWith(w.log, slog.String("merchant_reference", ref), slog.Uint64("stream_seq", d.seq),
		slog.Uint64("attempt", d.delivered), slog.String("kind", messages.KindSession))
	fp, err := messages.Fingerprint(data)
	if err != nil {
		_ = msg.TermWithReason("fingerprint: " + err.Error())
		return
	}
	claim, err := w.store.Claim(ctx, idempotency.SessionKey(ref), fp, d.seq)
	if err != nil {
		w.sessionRetry(ctx, d, req, nil, "idempotency store: "+err.Error(), "store")
		return
	}
	w.m.claim(claim.State)
	switch claim.State {
	case idempotency.StateCompleted:
		var res messages.SessionResult
		if err := json.Unmarshal(claim.Result, &res); err != nil {
			d.log.Error("stored session result is not valid JSON", "err", err)
			_ = msg.NakWithDelay(w.cfg.MaxRetryDelay)
			return
		}
		data := claim.Result
		if claim.Sequence != d.seq {
			res.Duplicate = true
			data = mustMarshal(&res)
		}
		w.publishSession(ctx, d, &res, data, "")
	case idempotency.StateConflict:
		res := w.sessionBase(req)
		res.Outcome = messages.OutcomeRejected
		res.Error = conflictError(ref)
		w.deadLetter(ctx, d, "conflict: merchant_reference reused with a different body")
		w.publishSession(ctx, d, res, mustMarshal(res), "conflict")
	case idempotency.StateInProgress:
		w.m.retry("in_progress")
		_ = msg.NakWithDelay(min(max(claim.LeaseRemaining, w.cfg.RetryDelay), w.cfg.MaxRetryDelay))
	case idempotency.StateNew, idempotency.StateRecovered:
		w.createSession(ctx, d, req, data, claim)
	}
}

func (w *Worker) createSession(ctx context.Context, d *delivery, req *messages.SessionRequest, body []byte, claim idempotency.Claim) {
	ref := req.Order.MerchantReference
	if w.cfg.CallbackURL != "" {
		b, err := withCallbackURL(body, w.cfg.CallbackURL)
		if err != nil {
			w.sessionRetry(ctx, d, req, &claim, "setting the callback URL: "+err.Error(), "internal")
			return
		}
		body = b
	}
	// Like a charge: the request's trace context goes to Dintero, and the
	// message and the claim are kept alive while waiting for a slot and
	// for Dintero.
	ctx = dintero.WithTraceparent(ctx, d.trace)
	stop := w.heartbeat(ctx, d.msg, idempotency.SessionKey(ref), claim.Token)
	defer stop() // stop may run twice
	if !w.acquireCall(ctx) {
		stop()
		w.sessionRetry(ctx, d, req, &claim, "stopped while waiting to call Dintero", "shutdown")
		return
	}
	created, err := w.gw.CreateSessionProfile(ctx, body)
	w.releaseCall()
	stop()
	res := w.sessionBase(req)
	var derr *dintero.Error
	switch {
	case err == nil:
		res.Outcome = messages.OutcomeCreated
		res.SessionID = created.ID
		res.URL = created.URL
	case errors.As(err, &derr) && (derr.Kind == dintero.KindPermanent || derr.Kind == dintero.KindInvalid):
		res.Outcome = messages.OutcomeRejected
		res.Error = dinteroError(derr)
	default:
		w.sessionRetry(ctx, d, req, &claim, err.Error(), "dintero")
		return
	}
	data := mustMarshal(res)
	if err := w.store.Complete(ctx, idempotency.SessionKey(ref), claim.Token, d.seq, data, false); err != nil {
		d.log.Warn("could not store the session result; retrying later", "err", err)
		w.m.retry("store")
		_ = d.msg.NakWithDelay(w.retryDelay(d.delivered))
		return
	}
	if res.Outcome == messages.OutcomeRejected {
		w.deadLetter(ctx, d, "rejected: "+res.Error.Message)
	}
	w.publishSession(ctx, d, res, data, "")
}

// sessionRetry hands a session request back, or gives up with a failed
// result after the last delivery.
func (w *Worker) sessionRetry(ctx context.Context, d *delivery, req *messages.SessionRequest, claim *idempotency.Claim, why, label string) {
	key := idempotency.SessionKey(req.Order.MerchantReference)
	if d.delivered >= uint64(w.cfg.MaxDeliver) {
		d.log.Error("giving up on a session request after its last delivery", "reason", why)
		res := w.sessionBase(req)
		res.Outcome = messages.OutcomeFailed
		res.Error = &messages.ResultError{Code: messages.CodeGaveUp, Message: fmt.Sprintf("gave up after %d deliveries: %s", d.delivered, why)}
		data := mustMarshal(res)
		if claim != nil {
			if err := w.store.Complete(ctx, key, claim.Token, d.seq, data, true); err != nil {
				d.log.Warn("could not record the failed result", "err", err)
			}
		}
		w.deadLetter(ctx, d, why)
		w.publishSession(ctx, d, res, data, "gave up")
		return
	}
	if claim != nil {
		// Creating a session moves no money: a retry may simply create it.
		if err := w.store.Release(ctx, key, claim.Token, false); err != nil {
			d.log.Warn("could not release the claim; its lease will expire", "err", err)
		}
	}
	w.m.retry(label)
	delay := w.retryDelay(d.delivered)
	d.log.Warn("session not created; retrying later", "reason", why, "delay", delay)
	_ = d.msg.NakWithDelay(delay)
}

func (w *Worker) sessionBase(req *messages.SessionRequest) *messages.SessionResult {
	return &messages.SessionResult{
		MerchantReference: req.Order.MerchantReference,
		Amount:            req.Order.Amount,
		Currency:          req.Order.Currency,
		CompletedAt:       w.now().UTC(),
	}
}

// publishSession publishes a session result and acks (or terminates) the
// request once JetStream stored it.
func (w *Worker) publishSession(ctx context.Context, d *delivery, res *messages.SessionResult, data []byte, termReason string) {
	msg := resultMsg(messages.KindSession, res.Outcome, res.MerchantReference,
		messages.ResultMsgID("session:"+res.MerchantReference, res.Outcome, d.seq), data, d.trace, w.now())
	if w.publishAndAck(ctx, d, msg, termReason) {
		w.m.result(res.Outcome, res.Duplicate, w.now().Sub(d.published).Seconds())
	}
}

// mustMarshal marshals a result type, which has no field that can fail.
func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("worker: marshal result: " + err.Error())
	}
	return b
}

// withCallbackURL returns body with url.callback_url set to callback plus
// report_error=true. Other fields are kept as they are.
func withCallbackURL(body []byte, callback string) ([]byte, error) {
	u, err := url.Parse(callback)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("report_error", "true")
	u.RawQuery = q.Encode()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, err
	}
	urls := map[string]json.RawMessage{}
	if raw, ok := top["url"]; ok {
		if err := json.Unmarshal(raw, &urls); err != nil {
			return nil, err
		}
	}
	if urls["callback_url"], err = json.Marshal(u.String()); err != nil {
		return nil, err
	}
	if top["url"], err = json.Marshal(urls); err != nil {
		return nil, err
	}
	return json.Marshal(top)
}
