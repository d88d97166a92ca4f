package worker

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/messages"
)

// resultFromTransaction is the final result for a transaction Dintero
// reported for the request: succeeded or declined.
func (w *Worker) resultFromTransaction(req *messages.ChargeRequest, attempts int, tx *dintero.Transaction) *messages.ChargeResult {
	res := w.base(req, attempts)
	res.Status = tx.Status
	res.TransactionID = tx.ID
	res.SessionID = tx.SessionID
	if tx.Amount != 0 {
		res.Amount = tx.Amount
	}
	if tx.Currency != "" {
		res.Currency = tx.Currency
	}
	if dintero.Succeeded(tx.Status) {
		res.Outcome = messages.OutcomeSucceeded
		return res
	}
	res.Outcome = messages.OutcomeDeclined
	res.Error = &messages.ResultError{Code: tx.Status, Message: "authorization " + tx.Status}
	if e := tx.LastError(); e != nil {
		if e.Code != "" {
			res.Error.Code = e.Code
		}
		if e.Message != "" {
			res.Error.Message = e.Message
		}
		res.Error.Types = e.Type
		if e.RetryPolicy != nil {
			res.Error.RetryCodes = e.RetryPolicy.RetryCodes
			res.Error.RetryAfter = e.RetryPolicy.RetryAfter
		}
	}
	return res
}

// failure is a result without a transaction: rejected or failed.
func (w *Worker) failure(req *messages.ChargeRequest, outcome messages.Outcome, attempts int, rerr *messages.ResultError) *messages.ChargeResult {
	res := w.base(req, attempts)
	res.Outcome = outcome
	res.Error = rerr
	return res
}

func (w *Worker) base(req *messages.ChargeRequest, attempts int) *messages.ChargeResult {
	return &messages.ChargeResult{
		MerchantReference:  req.Session.Order.MerchantReference,
		Amount:             req.Session.Order.Amount,
		Currency:           req.Session.Order.Currency,
		PaymentProductType: req.Payment.PaymentProductType,
		Operation:          req.Payment.Operation,
		Attempts:           attempts,
		CompletedAt:        w.now().UTC(),
	}
}

func dinteroError(err *dintero.Error) *messages.ResultError {
	code := err.Code
	if code == "" {
		code = "http_" + strconv.Itoa(err.StatusCode)
	}
	return &messages.ResultError{Code: code, Message: err.Error()}
}

func conflictError(ref string) *messages.ResultError {
	return &messages.ResultError{
		Code:    messages.CodeConflict,
		Message: "merchant_reference " + strconv.Quote(ref) + " was already used by a request with a different body; nothing was charged for this one",
	}
}

// deadLetter keeps a copy of the request, with the reason, in the
// dead-letter stream. Failures are logged: the result still tells the
// publisher what happened.
func (w *Worker) deadLetter(ctx context.Context, d *delivery, reason string) {
	msg := newMsg(messages.SubjectDeadLetters, d.msg.Data(), "dead:"+strconv.FormatUint(d.seq, 10))
	msg.Header.Set(messages.HeaderDeadReason, reason)
	msg.Header.Set(messages.HeaderDeadSubject, d.msg.Subject())
	msg.Header.Set(messages.HeaderDeadSequence, strconv.FormatUint(d.seq, 10))
	if _, err := w.js.PublishMsg(ctx, msg); err != nil {
		d.log.Error("could not dead-letter a request", "reason", reason, "err", err)
		return
	}
	w.m.deadLettered()
}

func newMsg(subject string, data []byte, msgID string) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(messages.HeaderMsgID, msgID)
	return m
}

// mustJSON marshals a result; ChargeResult has no field that can fail.
func mustJSON(res *messages.ChargeResult) []byte {
	b, err := json.Marshal(res)
	if err != nil {
		panic("worker: marshal result: " + err.Error())
	}
	return b
}
