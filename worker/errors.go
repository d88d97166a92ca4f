package worker

import (
	"errors"
	"strconv"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/messages"
)

// ErrConfig is wrapped by the error Run and Setup return when a stream or
// the consumer exists with settings that would break a guarantee (a
// server-side MaxDeliver below the worker's, an ack policy that is not
// explicit, a filter that misses a request subject, ...). Retrying does
// not help: the settings must be fixed.
var ErrConfig = errors.New("worker: stream or consumer configuration breaks a guarantee")

// declineError says why Dintero declined tx: the error of its newest event
// that has one (code, message, types, retry advice), or the bare status.
// It is the one mapping from a Dintero decline to a result error, used for
// charges, lookups and callbacks alike. The dintero client has already
// scrubbed every string of tx.
func declineError(tx *dintero.Transaction) *messages.ResultError {
	rerr := &messages.ResultError{Code: tx.Status, Message: "authorization " + tx.Status}
	e := tx.LastError()
	if e == nil {
		return rerr
	}
	switch {
	case e.Code != "":
		rerr.Code = e.Code
	case len(e.Type) > 0:
		rerr.Code = e.Type[0]
	}
	if e.Message != "" {
		rerr.Message = capMessage(e.Message)
	}
	rerr.Types = e.Type
	if e.RetryPolicy != nil {
		rerr.RetryCodes = e.RetryPolicy.RetryCodes
		rerr.RetryAfter = e.RetryPolicy.RetryAfter
	}
	return rerr
}

// dinteroError is the result error of a call Dintero refused.
func dinteroError(err *dintero.Error) *messages.ResultError {
	code := err.Code
	if code == "" {
		code = "http_" + strconv.Itoa(err.StatusCode)
	}
	return &messages.ResultError{Code: code, Message: capMessage(err.Error())}
}

// conflictError is the result error of a request that reuses a reference.
func conflictError(ref string) *messages.ResultError {
	return &messages.ResultError{
		Code: messages.CodeConflict,
		Message: capMessage("merchant_reference " + strconv.Quote(ref) +
			" was already used by another request or payment; nothing was charged for this one"),
	}
}
