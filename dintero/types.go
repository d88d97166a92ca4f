package dintero

import (
	"fmt"
	"log/slog"
	"time"
)

// Transaction statuses as Dintero reports them (Transaction.status).
const (
	StatusInitiated                 = "INITIATED"
	StatusAuthorized                = "AUTHORIZED"
	StatusAuthorizationVoided       = "AUTHORIZATION_VOIDED"
	StatusCaptured                  = "CAPTURED"
	StatusPartiallyCaptured         = "PARTIALLY_CAPTURED"
	StatusPartiallyCapturedRefunded = "PARTIALLY_CAPTURED_REFUNDED"
	StatusRefunded                  = "REFUNDED"
	StatusPartiallyRefunded         = "PARTIALLY_REFUNDED"
	StatusDeclined                  = "DECLINED"
	StatusFailed                    = "FAILED"
	StatusUnknown                   = "UNKNOWN"
	StatusOnHold                    = "ON_HOLD"
)

// Retry codes in events[].error.retry_policy.retry_codes.
const (
	RetryDoNotRetry  = "DO_NOT_RETRY"
	RetryImmediately = "RETRY_IMMEDIATELY"
	RetryAfterDelay  = "RETRY_AFTER_DELAY"
)

// Feature toggles sent in the Dintero-Feature-Toggles header.
const (
	ToggleStrictMerchantReference        = "strict-merchant-reference"
	ToggleStrictSuccessMerchantReference = "strict-success-merchant-reference"
)

// AccessToken is the body of a successful POST /v1/accounts/{aid}/auth/token.
type AccessToken struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// LogValue keeps the bearer token out of logs (it implements
// slog.LogValuer; JSON encoding is unaffected).
func (t AccessToken) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("access_token", "[REDACTED]"),
		slog.String("token_type", t.TokenType),
		slog.Int64("expires_in", t.ExpiresIn),
	)
}

// String keeps the bearer token out of fmt output.
func (t AccessToken) String() string {
	return fmt.Sprintf("dintero.AccessToken{AccessToken:[REDACTED] TokenType:%q ExpiresIn:%d}", t.TokenType, t.ExpiresIn)
}

// GoString is like String, for %#v.
func (t AccessToken) GoString() string { return t.String() }

// SessionCreated is the body of a successful POST /v1/sessions-profile.
type SessionCreated struct {
	ID  string `json:"id"`
	URL string `json:"url"`
}

// Session is the subset of Dintero's checkout session (GET
// /v1/sessions/{id}, GET /v1/sessions, POST /v1/sessions/{id}/cancel) that
// payworker reads. Unknown fields, the customer's among them, are ignored
// on decode.
type Session struct {
	ID    string       `json:"id"`
	Order SessionOrder `json:"order"`
	URL   SessionURL   `json:"url"`
	// TransactionID is set once the session was paid (an authorization or
	// a declined attempt).
	TransactionID string    `json:"transaction_id,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	// CancelledAt is set once the session was cancelled; it can no longer
	// be paid.
	CancelledAt time.Time `json:"cancelled_at,omitzero"`
	CancelledBy string    `json:"cancelled_by,omitempty"`
}

// Cancelled reports whether the session was cancelled.
func (s *Session) Cancelled() bool { return !s.CancelledAt.IsZero() }

// SessionOrder is a session's order (Session.order).
type SessionOrder struct {
	Amount            int64  `json:"amount"`
	Currency          string `json:"currency"`
	MerchantReference string `json:"merchant_reference"`
}

// SessionURL is a session's url object.
type SessionURL struct {
	ReturnURL   string `json:"return_url,omitempty"`
	CallbackURL string `json:"callback_url,omitempty"`
}

// Transaction is the subset of Dintero's Transaction object that payworker
// reads. Unknown fields are ignored on decode.
type Transaction struct {
	ID                 string             `json:"id"`
	SessionID          string             `json:"session_id,omitempty"`
	MerchantReference  string             `json:"merchant_reference,omitempty"`
	MerchantReference2 string             `json:"merchant_reference_2,omitempty"`
	Status             string             `json:"status"`
	Amount             int64              `json:"amount"`
	Currency           string             `json:"currency"`
	PaymentProduct     string             `json:"payment_product,omitempty"`
	PaymentProductType string             `json:"payment_product_type,omitempty"`
	PaymentOperation   string             `json:"payment_operation,omitempty"`
	Customer           *Customer          `json:"customer,omitempty"`
	Card               *Card              `json:"card,omitempty"`
	Events             []TransactionEvent `json:"events,omitempty"`
	Metadata           map[string]any     `json:"metadata,omitempty"`
	CreatedAt          time.Time          `json:"created_at"`
	UpdatedAt          time.Time          `json:"updated_at,omitempty"`

	// Success is SessionPayResult.success, present on /v1/sessions/pay answers.
	Success *bool `json:"success,omitempty"`
}

// Customer is the customer on a transaction (Transaction.customer), as the
// payment request gave it.
type Customer struct {
	CustomerID  string `json:"customer_id,omitempty"`
	Email       string `json:"email,omitempty"`
	PhoneNumber string `json:"phone_number,omitempty"`
}

// Card is the card summary on a transaction. The token fields are present
// only when asked for (GetTransaction with IncludePaymentToken or
// IncludeRecurrenceToken). They are secrets: String, GoString and LogValue
// leave them out.
type Card struct {
	Brand             string `json:"brand,omitempty"`
	MaskedPAN         string `json:"masked_pan,omitempty"`
	ExpiryDate        string `json:"expiry_date,omitempty"`
	Type              string `json:"type,omitempty"`
	Country           string `json:"country,omitempty"`
	PaymentToken      string `json:"payment_token,omitempty"`
	PaymentTokenID    string `json:"payment_token_id,omitempty"`
	RecurrenceToken   string `json:"recurrence_token,omitempty"`
	RecurrenceTokenID string `json:"recurrence_token_id,omitempty"`
}

// String describes the card without its tokens.
func (c Card) String() string {
	return fmt.Sprintf("dintero.Card{Brand:%q MaskedPAN:%q ExpiryDate:%q Type:%q Country:%q}",
		c.Brand, c.MaskedPAN, c.ExpiryDate, c.Type, c.Country)
}

// GoString is like String, for %#v.
func (c Card) GoString() string { return c.String() }

// LogValue logs the card without its tokens.
func (c Card) LogValue() slog.Value {
	return slog.GroupValue(slog.String("brand", c.Brand), slog.String("masked_pan", c.MaskedPAN))
}

// TransactionEvent is one entry of Transaction.events.
type TransactionEvent struct {
	Event             string      `json:"event"`
	TransactionStatus string      `json:"transaction_status,omitempty"`
	Success           bool        `json:"success"`
	Amount            int64       `json:"amount,omitempty"`
	CreatedAt         time.Time   `json:"created_at"`
	RequestID         string      `json:"request_id,omitempty"`
	Error             *EventError `json:"error,omitempty"`
}

// EventError describes why an event failed (events[].error).
type EventError struct {
	Code        string       `json:"code,omitempty"`
	Message     string       `json:"message"`
	Type        []string     `json:"type,omitempty"`
	ResultCode  string       `json:"result_code,omitempty"`
	RetryPolicy *RetryPolicy `json:"retry_policy,omitempty"`
}

// RetryPolicy is Dintero's advice on retrying a failed authorization.
type RetryPolicy struct {
	RetryCodes []string   `json:"retry_codes"`
	RetryAfter *time.Time `json:"retry_after,omitempty"`
}

// ErrorBody is Dintero's error envelope: {"error": {...}}. On /v1/sessions/pay
// the SessionPayResult fields may be present too.
type ErrorBody struct {
	Error     ErrorDetail `json:"error"`
	Success   *bool       `json:"success,omitempty"`
	SessionID string      `json:"session_id,omitempty"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	Code    string `json:"code,omitempty"`
	Message string `json:"message"`
	Errors  []any  `json:"errors,omitempty"`
}

// Succeeded reports whether the status means money was authorized (and
// possibly captured or later refunded).
func Succeeded(status string) bool {
	switch status {
	case StatusAuthorized, StatusCaptured, StatusPartiallyCaptured,
		StatusPartiallyCapturedRefunded, StatusRefunded, StatusPartiallyRefunded:
		return true
	}
	return false
}

// Declined reports whether the status is a final authorization failure
// (the statuses the official WooCommerce plugin treats as a rejection).
func Declined(status string) bool {
	switch status {
	case StatusFailed, StatusDeclined, StatusAuthorizationVoided:
		return true
	}
	return false
}

// LastError returns the error of the newest event that carries one, or nil.
func (t *Transaction) LastError() *EventError {
	for i := len(t.Events) - 1; i >= 0; i-- {
		if t.Events[i].Error != nil {
			return t.Events[i].Error
		}
	}
	return nil
}
