package messages

import "time"

// Payment product types (providers) accepted for card tokens.
const (
	ProductPayExCreditcard      = "payex.creditcard"
	ProductBamboraCreditcard    = "bambora.creditcard"
	ProductDinteroPSPCreditcard = "dintero_psp.creditcard"
)

// Merchant-initiated operations.
const (
	OperationRecurringPurchase   = "recurring_purchase"
	OperationUnscheduledPurchase = "unscheduled_purchase"
)

// ChargeRequest is the body of a merchant-initiated charge: exactly Dintero's
// POST /v1/sessions/pay body. Fields this type does not model survive: the
// worker forwards the bytes it received, not this struct.
type ChargeRequest struct {
	Session PaySession `json:"session"`
	Payment Payment    `json:"payment"`
}

// PaySession is ChargeRequest.session.
type PaySession struct {
	URL           *PayURL           `json:"url,omitempty"`
	Customer      *Customer         `json:"customer,omitempty"`
	Order         Order             `json:"order"`
	ExpiresAt     string            `json:"expires_at,omitempty"`
	Configuration *PayConfiguration `json:"configuration,omitempty"`
	Metadata      map[string]any    `json:"metadata,omitempty"`
}

// PayURL holds the only URL a merchant-initiated session takes.
type PayURL struct {
	CallbackURL string `json:"callback_url,omitempty"`
}

// PayConfiguration is session.configuration.
type PayConfiguration struct {
	AutoCapture      *bool `json:"auto_capture,omitempty"`
	PreAuthorization *bool `json:"pre_authorization,omitempty"`
}

// Customer is session.customer. Tokens is keyed by payment product type,
// with the dot as part of the key ("payex.creditcard"), never nested
// ({"payex": {"creditcard": ...}}). Printed or logged, a Customer shows its
// customer_id and which kinds of token it holds, nothing more.
type Customer struct {
	CustomerID  string                `json:"customer_id,omitempty"`
	Email       string                `json:"email,omitempty"`
	PhoneNumber string                `json:"phone_number,omitempty"`
	Tokens      map[string]CardTokens `json:"tokens,omitempty"`
}

// CardTokens are a customer's saved card tokens at one provider. They are
// secrets: String, GoString, Format and LogValue redact them, so fmt and
// log/slog never print them. Only JSON encoding, the wire format, keeps them.
type CardTokens struct {
	PaymentToken    string `json:"payment_token,omitempty"`
	RecurrenceToken string `json:"recurrence_token,omitempty"`
}

// Order is session.order. Amounts are integers in minor units (29990 is
// 299.90 NOK).
type Order struct {
	Amount             int64           `json:"amount"`
	Currency           string          `json:"currency"`
	VATAmount          *int64          `json:"vat_amount,omitempty"`
	MerchantReference  string          `json:"merchant_reference"`
	MerchantReference2 string          `json:"merchant_reference_2,omitempty"`
	EventReference     string          `json:"event_reference,omitempty"`
	Items              []OrderItem     `json:"items,omitempty"`
	ShippingOption     *ShippingOption `json:"shipping_option,omitempty"`
	PartialPayment     bool            `json:"partial_payment,omitempty"`
}

// OrderItem is one line of an order.
type OrderItem struct {
	ID          string   `json:"id,omitempty"`
	LineID      string   `json:"line_id,omitempty"`
	Description string   `json:"description,omitempty"`
	Quantity    *float64 `json:"quantity,omitempty"`
	Amount      int64    `json:"amount"`
	VATAmount   *int64   `json:"vat_amount,omitempty"`
	VAT         *float64 `json:"vat,omitempty"`
	Type        string   `json:"type,omitempty"`
}

// ShippingOption is the part of order.shipping_option that counts towards
// the order amount.
type ShippingOption struct {
	ID     string `json:"id,omitempty"`
	Amount int64  `json:"amount"`
}

// Payment is ChargeRequest.payment.
type Payment struct {
	PaymentProductType string `json:"payment_product_type"`
	Operation          string `json:"operation"`
}

// Outcome is the state a result event reports.
type Outcome string

// Final outcomes of a charge request: each request gets exactly one.
const (
	// OutcomeSucceeded: Dintero authorized (or captured) the charge.
	OutcomeSucceeded Outcome = "succeeded"
	// OutcomeDeclined: the card was declined; see Error.RetryCodes.
	OutcomeDeclined Outcome = "declined"
	// OutcomeFailed: Dintero holds no charge for the reference: the request
	// never reached it (every attempt was refused before it was sent, or
	// it refused it for a reason retrying will not fix), or a lookup that
	// answered found no transaction. Never "could not find out": that is
	// OutcomeUnknown. The request may be sent again.
	OutcomeFailed Outcome = "failed"
	// OutcomeRejected: the request was invalid or conflicted with an
	// earlier one; nothing was charged for it.
	OutcomeRejected Outcome = "rejected"
)

// Non-final outcomes of a request, published before its final result on
// subjects of their own; a consumer that ignores them sees one final result
// as before. Charge and session requests both get unknown and needs_review;
// retry_scheduled is a charge's only.
const (
	// OutcomeUnknown: an attempt may have reached Dintero and Dintero
	// cannot say yet what happened. The request is parked and looked up on
	// a schedule (NextCheckAt); meanwhile its reference is never charged
	// again, nor a session created for it. Show it as "processing".
	OutcomeUnknown Outcome = "unknown"
	// OutcomeNeedsReview: the lookups of a parked request found nothing out
	// in the whole schedule. An operator must check Dintero's backoffice
	// and close it (payctl resolve); it is still looked up daily.
	OutcomeNeedsReview Outcome = "needs_review"
	// OutcomeRetryScheduled: dunning, asked for by the publisher: the card
	// was declined softly and the next attempt is scheduled at
	// NextAttemptAt. Error carries the decline.
	OutcomeRetryScheduled Outcome = "retry_scheduled"
)

// Final reports whether o ends a request: each request gets exactly one
// result with a final outcome, and any number of non-final events first.
func (o Outcome) Final() bool {
	switch o {
	case OutcomeUnknown, OutcomeNeedsReview, OutcomeRetryScheduled, OutcomeCreated:
		return false
	}
	return true
}

// Error codes payworker itself puts in ResultError.Code.
const (
	CodeInvalidRequest = "invalid_request" // failed validation
	CodeConflict       = "conflict"        // same merchant_reference, different body
	CodeGaveUp         = "gave_up"         // retries exhausted before anything reached Dintero
	// CodeNotCharged: failed after a lookup that answered: Dintero holds no
	// transaction for the reference.
	CodeNotCharged = "not_charged"
	// CodeNotCreated: a session request failed after a lookup that
	// answered: Dintero holds no session of the request for the reference
	// that anyone could pay (none was made, or every one was cancelled).
	CodeNotCreated = "not_created"
	// CodeOutcomeUnknown: the reason of an unknown or needs_review event.
	CodeOutcomeUnknown = "outcome_unknown"
	// CodeClosedByOperator: an operator closed a parked request after
	// checking Dintero's backoffice (payctl resolve --as).
	CodeClosedByOperator = "closed_by_operator"
	// CodeTokenBlocked: declined without calling Dintero: the card token
	// was declined before with DO_NOT_RETRY, or a decline no retry can fix.
	// retry_codes is ["DO_NOT_RETRY"].
	CodeTokenBlocked = "token_blocked"
	// CodeRetryLimitReached: declined without calling Dintero: the card
	// token was declined as often as the card networks allow in a window;
	// retry_after is when the next attempt may be made.
	CodeRetryLimitReached = "retry_limit_reached"
)

// ChargeResult is the one final event published for each charge request.
// It never contains a card token.
type ChargeResult struct {
	MerchantReference  string       `json:"merchant_reference"`
	Outcome            Outcome      `json:"outcome"`
	Status             string       `json:"status,omitempty"`
	TransactionID      string       `json:"transaction_id,omitempty"`
	SessionID          string       `json:"session_id,omitempty"`
	Amount             int64        `json:"amount"`
	Currency           string       `json:"currency,omitempty"`
	PaymentProductType string       `json:"payment_product_type,omitempty"`
	Operation          string       `json:"operation,omitempty"`
	Error              *ResultError `json:"error,omitempty"`
	// Attempts is how many deliveries of this merchant_reference reached
	// the charge step (1 for a charge that went through first time).
	Attempts int `json:"attempts"`
	// Duplicate is true when the result was answered from the idempotency
	// record of an earlier request, without calling Dintero.
	Duplicate   bool      `json:"duplicate"`
	CompletedAt time.Time `json:"completed_at"`
	// NextCheckAt is, on an unknown or needs_review event, when the
	// reference is looked up at Dintero next.
	NextCheckAt *time.Time `json:"next_check_at,omitempty"`
	// Attempt is, for a request with dunning, the attempt a result is
	// about: 1 for the first charge, 2 for the first retry, ...
	Attempt int `json:"attempt,omitempty"`
	// NextAttemptAt is, on a retry_scheduled event, when the next attempt
	// is made.
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
}

// ResultError says why a request did not succeed.
type ResultError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// RetryCodes are Dintero's retry_policy.retry_codes for a decline
	// (DO_NOT_RETRY, RETRY_AFTER_DELAY, RETRY_IMMEDIATELY).
	RetryCodes []string   `json:"retry_codes,omitempty"`
	RetryAfter *time.Time `json:"retry_after,omitempty"`
	// Types are Dintero's error types, e.g. INSUFFICIENT_FUNDS.
	Types []string `json:"types,omitempty"`
	// Fields lists field-level validation errors for invalid requests: the
	// first 20, each message at most 200 bytes.
	Fields []FieldError `json:"fields,omitempty"`
	// FieldsTotal is how many field errors the request had, when Fields
	// is set; more than len(Fields) when the list was cut.
	FieldsTotal int `json:"fields_total,omitempty"`
}

// FieldError is one problem with one field of a request. Field is the JSON
// path, e.g. "session.order.amount".
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}
