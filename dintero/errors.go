package dintero

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind classifies an Error by what the caller should do next. See the
// package documentation.
type Kind int

// Error kinds. The zero Kind means "not a *dintero.Error" (see KindOf).
const (
	// KindTransient: nothing happened at Dintero (or a read-only call
	// failed); the call may be retried later.
	KindTransient Kind = iota + 1
	// KindUnknownOutcome: a payment (or session creation) request may or
	// may not have been processed. Look the charge (or session) up by
	// merchant_reference before charging (or creating one) again.
	KindUnknownOutcome
	// KindDeclined: the payment was processed and refused (status FAILED,
	// DECLINED or AUTHORIZATION_VOIDED). Final for this attempt; follow
	// the retry policy on Error.Transaction.
	KindDeclined
	// KindPermanent: Dintero refused the call for a reason that is not the
	// request's body (403, 404, 409 and other 4xx, an answer that cannot be
	// decoded); repeating it unchanged will fail again.
	KindPermanent
	// KindAuth: the credentials or account are wrong (token endpoint
	// refused them, or the API answered 401 twice).
	KindAuth
	// KindInvalid: Dintero refused the request as invalid (400 or 422).
	// On a payment under a strict merchant-reference toggle this is also
	// how a reused merchant_reference is refused (see DuplicateReference):
	// a caller that cannot tell should look the reference up.
	KindInvalid
)

// String returns the kind's snake_case name.
func (k Kind) String() string {
	switch k {
	case KindTransient:
		return "transient"
	case KindUnknownOutcome:
		return "unknown_outcome"
	case KindDeclined:
		return "declined"
	case KindPermanent:
		return "permanent"
	case KindAuth:
		return "auth"
	case KindInvalid:
		return "invalid"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Op values of Error.Op.
const (
	OpAuth             = "auth"
	OpPay              = "pay"
	OpCreateSession    = "create_session"
	OpCancelSession    = "cancel_session"
	OpListSessions     = "list_sessions"
	OpGetTransaction   = "get_transaction"
	OpListTransactions = "list_transactions"
)

// CodeDuplicateMerchantReference is the error.code of the 400 Dintero
// returns when the strict-success-merchant-reference toggle refuses a
// second charge on a merchant_reference that already succeeded.
const CodeDuplicateMerchantReference = "DUPLICATE_MERCHANT_REFERENCE"

// Error is the error returned by every Client method. Its fields never hold
// the client secret, an access token or a request body.
type Error struct {
	// Op is the operation: "auth", "pay", "create_session",
	// "cancel_session", "list_sessions", "get_transaction" or
	// "list_transactions".
	Op string
	// Kind says what the caller should do; see the package documentation.
	Kind Kind
	// StatusCode is the HTTP status, 0 when no response was received.
	StatusCode int
	// Code is Dintero's error.code, or for a decline the
	// events[].error.code of the transaction.
	Code string
	// Message is Dintero's error.message (or events[].error.message).
	Message string
	// RequestID is the response's Request-Id header, if any.
	RequestID string
	// RetryAfter is the parsed Retry-After header (seconds or HTTP date);
	// 0 if none.
	RetryAfter time.Duration
	// Transaction is the FAILED/DECLINED transaction for KindDeclined, and
	// the transaction in an unexpected status for a 200 KindUnknownOutcome.
	Transaction *Transaction
	// Err is the underlying cause (network error, context error, decode
	// error, the error of a fence; see WithFence), if any.
	Err error

	fenced bool // a fence stopped the call before anything was sent
}

// Error formats the error, e.g.
// "dintero pay: declined (FAILED): INSUFFICIENT_FUNDS: Insufficient funds".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("dintero ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	b.WriteString(e.Kind.String())
	switch {
	case e.Transaction != nil && e.Transaction.Status != "":
		fmt.Fprintf(&b, " (%s)", e.Transaction.Status)
	case e.StatusCode != 0:
		fmt.Fprintf(&b, " (HTTP %d)", e.StatusCode)
	}
	if e.Code != "" {
		b.WriteString(": ")
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " [request_id=%s]", e.RequestID)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// DuplicateReference reports whether Dintero refused the payment because
// the merchant_reference was used before (400 with code
// DUPLICATE_MERCHANT_REFERENCE under a strict merchant-reference toggle).
// The caller should look that charge up instead of charging again.
// Dintero does not document the code; a 400 without it may still be one.
func (e *Error) DuplicateReference() bool {
	return e != nil && e.Kind == KindInvalid && e.Code == CodeDuplicateMerchantReference
}

// RetryPolicy returns the retry advice of a declined transaction
// (events[].error.retry_policy), or nil.
func (e *Error) RetryPolicy() *RetryPolicy {
	if e == nil || e.Transaction == nil {
		return nil
	}
	if le := e.Transaction.LastError(); le != nil {
		return le.RetryPolicy
	}
	return nil
}

// KindOf returns the Kind of the first *Error in err's chain, or 0 if err
// is nil or holds no *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}
