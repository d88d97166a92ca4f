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

// Outcome is the final state of a request.
type Outcome string

// Outcomes of a request.
const (
	// OutcomeSucceeded: Dintero authorized (or captured) the charge.
	OutcomeSucceeded Outcome = "succeeded"
	// OutcomeDeclined: the card was declined; see Error.RetryCodes.
	OutcomeDeclined Outcome = "declined"
	// OutcomeFailed: payworker gave up on a technical failure; no charge
	// was made as far as Dintero reports. The request may be sent again.
	OutcomeFailed Outcome = "failed"
	// OutcomeRejected: the request was invalid or conflicted with an
	// earlier one; nothing was charged for it.
	OutcomeRejected Outcome = "rejected"
)

// Error codes payworker itself puts in ResultError.Code.
const (
	CodeInvalidRequest = "invalid_request" // failed validation
	CodeConflict       = "conflict"        // same merchant_reference, different body
	CodeGaveUp         = "gave_up"         // retries exhausted
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
	// Fields lists field-level validation errors for invalid requests.
	Fields []FieldError `json:"fields,omitempty"`
	// FieldsTotal is how many field-level problems were found, when Fields
	// lists only the first of them.
	FieldsTotal int `json:"fields_total,omitempty"`
}

// FieldError is one problem with one field of a request. Field is the JSON
// path, e.g. "session.order.amount".
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}
