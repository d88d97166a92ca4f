package worker

import (
	"encoding/json"
	"time"

	"github.com/payworker/payworker/messages"
)

// A decision is what the flow decided should happen to a message. The
// handlers only decide; settle carries a decision out, in the one safe
// order (see settle.go).
//
// With a result, the request is finished: the result is stored in the
// claim (when this delivery owns one), the request copied to the
// dead-letter stream when deadLetter is set, the result published with its
// deterministic Nats-Msg-Id, and the message acked, or terminated when term
// is set. Without one, the message is handed back for a later delivery:
// the claim released (saying whether Dintero may hold a charge), then
// NakWithDelay; after the last delivery settle turns that into a final
// failed result (gave_up).
type decision struct {
	result     *result
	deadLetter string // with a result: keep a copy of the request, with this reason
	term       string // with a result: TermWithReason instead of Ack
	// forget, with a result: delete the claim's record instead of storing
	// the result in it (the record must not stand in another request's way).
	forget bool

	// Without a result:
	err       error         // why the request is not finished (logged, and in a gave_up result)
	reason    string        // metrics label: dintero, store, lookup, shutdown, in_progress, ...
	after     time.Duration // wait at least this long (Dintero's Retry-After, another owner's lease)
	maybeSent bool          // Dintero may hold a charge: the next attempt looks the reference up first
	wait      bool          // another owner is on it: keep trying, never give up
	// park: the outcome is unknown and Dintero cannot be asked now: park
	// the request and look it up on the resolution schedule (park.go).
	park bool
	// retryAt: dunning (dunning.go): release the claim, charge the request
	// again at retryAt, and publish event (retry_scheduled).
	retryAt time.Time
	event   *result
}

// finish is the decision to end a request with r.
func finish(r *result) decision { return decision{result: r} }

// retry is the decision to try again later, for reason (a metrics label)
// because of err.
func retry(reason string, err error) decision { return decision{reason: reason, err: err} }

// unsure is retry for a failure after which Dintero may hold a charge.
func unsure(reason string, err error) decision {
	return decision{reason: reason, err: err, maybeSent: true}
}

// A result is a result event, marshalled, with what the flow needs to know
// about it.
type result struct {
	kind      string // messages.KindCharge, messages.KindSession
	outcome   messages.Outcome
	ref       string // merchant_reference, "" when a body had none
	body      []byte // the JSON event
	duplicate bool   // answered from an earlier request's record
	// stored: the result is already the claim's (answered from the
	// record), so it is not stored again.
	stored bool
	// reopenable: a later claim re-opens the record (a failed outcome).
	reopenable bool
	// keep, when set, is what the record keeps instead of body: the
	// result of the request the record is kept for, when this delivery's
	// answer is a duplicate of it.
	keep []byte
	// idSuffix makes the Nats-Msg-Id of one of several events of a kind
	// for one request unique (a retry_scheduled event per attempt).
	idSuffix string
	// For the request's log line.
	status, transactionID string
}

// chargeResult marshals a charge result.
func chargeResult(res *messages.ChargeResult) *result {
	return &result{kind: messages.KindCharge, outcome: res.Outcome, ref: res.MerchantReference,
		body: mustJSON(res), duplicate: res.Duplicate, reopenable: res.Outcome == messages.OutcomeFailed,
		status: res.Status, transactionID: res.TransactionID}
}

// sessionResult marshals a session result.
func sessionResult(res *messages.SessionResult) *result {
	return &result{kind: messages.KindSession, outcome: res.Outcome, ref: res.MerchantReference,
		body: mustJSON(res), duplicate: res.Duplicate, reopenable: res.Outcome == messages.OutcomeFailed,
		status: res.Status, transactionID: res.TransactionID}
}

// answerWith turns a stored result of type T into the answer to a request:
// the stored bytes as they are, or, for another request, the result marked
// duplicate.
func answerWith[T any](stored []byte, duplicate bool, wrap func(*T) *result, markDuplicate func(*T)) (*result, error) {
	var res T
	if err := json.Unmarshal(stored, &res); err != nil {
		return nil, err
	}
	if !duplicate {
		r := wrap(&res)
		r.body = stored
		return r, nil
	}
	markDuplicate(&res)
	return wrap(&res), nil
}

// mustJSON marshals a result type, none of whose fields can fail.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("worker: marshal result: " + err.Error())
	}
	return b
}
