package messages

import (
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Outcomes of a customer-initiated session request, besides
// [OutcomeFailed], [OutcomeRejected] and the non-final [OutcomeUnknown] and
// [OutcomeNeedsReview].
const (
	// OutcomeCreated: Dintero created the session; SessionResult.URL is the
	// page the customer must open to confirm the payment (with CVC). Not
	// final: a completed or failed result follows when the customer pays.
	OutcomeCreated Outcome = "created"
	// OutcomeCompleted: the customer paid and Dintero authorized (or
	// captured) the payment; SessionResult.TransactionID names it.
	OutcomeCompleted Outcome = "completed"
)

// SessionRequest is the body of a customer-initiated payment with a saved
// card: exactly Dintero's POST /v1/sessions-profile body, published on
// [SubjectSessionRequest]. Its idempotency key is order.merchant_reference.
// Fields this type does not model survive: the worker forwards the bytes it
// received, not this struct.
type SessionRequest struct {
	URL       SessionURL     `json:"url"`
	Order     Order          `json:"order"`
	Customer  *Customer      `json:"customer,omitempty"`
	ProfileID string         `json:"profile_id"`
	Metadata  map[string]any `json:"metadata,omitempty"`
}

// SessionURL is SessionRequest.url.
type SessionURL struct {
	// ReturnURL is where the customer's browser goes after paying.
	ReturnURL string `json:"return_url"`
	// CallbackURL is called by Dintero, server to server, when the payment
	// is authorized.
	CallbackURL string `json:"callback_url,omitempty"`
}

// SessionResult is an event published for a session request on
// [ResultSubject]([KindSession], outcome): first created (or rejected, or
// failed when Dintero holds no session for the reference: none was made),
// then, once the customer has paid, completed or failed. A failed result
// after payment means the authorization failed (Status FAILED or DECLINED;
// Error carries Dintero's code, types and retry codes). A request whose
// session may have been made while Dintero could not say so is parked:
// non-final [OutcomeUnknown] and [OutcomeNeedsReview] events (with
// NextCheckAt) come before its created or failed result (failed with
// [CodeNotCreated] when the lookup finds no session). It never contains a
// card token.
type SessionResult struct {
	MerchantReference string  `json:"merchant_reference"`
	Outcome           Outcome `json:"outcome"`
	// SessionID is Dintero's session id, once the session exists.
	SessionID string `json:"session_id,omitempty"`
	// URL is the payment page for the customer (created results).
	URL string `json:"url,omitempty"`
	// TransactionID, Status and PaymentProductType describe the payment
	// (completed and failed results after the customer paid).
	TransactionID      string       `json:"transaction_id,omitempty"`
	Status             string       `json:"status,omitempty"`
	Amount             int64        `json:"amount"`
	Currency           string       `json:"currency,omitempty"`
	PaymentProductType string       `json:"payment_product_type,omitempty"`
	Error              *ResultError `json:"error,omitempty"`
	// Duplicate is true when the result was answered from the idempotency
	// record of an earlier request, without calling Dintero.
	Duplicate   bool      `json:"duplicate"`
	CompletedAt time.Time `json:"completed_at"`
	// NextCheckAt is, on an unknown or needs_review event, when the
	// reference's sessions are looked up at Dintero next.
	NextCheckAt *time.Time `json:"next_check_at,omitempty"`
}

// DecodeSessionRequest parses and validates a session request body, like
// [DecodeChargeRequest] does a charge request: the same size, UTF-8, JSON
// and type checks, then the rules of [SessionRequest.Validate], every
// problem listed in a *[ValidationError] under its JSON path
// ("order.amount", "customer.tokens.payex.creditcard.payment_token").
// Keys the type does not model are allowed and ignored.
func DecodeSessionRequest(data []byte) (*SessionRequest, error) {
	if req := new(SessionRequest); decodeFast(data, req) && req.Validate() == nil {
		return req, nil // the fast path of fast.go
	}
	v := &validator{request: sessionRequestName}
	var req SessionRequest
	if !decodeRequest(v, data, &req, "url", "order") {
		return nil, v.err()
	}
	req.validate(v)
	if err := v.err(); err != nil {
		return nil, err
	}
	return &req, nil
}

const sessionRequestName = "session request"

// SessionMerchantReference is [MerchantReference] for a session request
// body: it extracts order.merchant_reference, best effort, from a body that
// may be invalid otherwise.
func SessionMerchantReference(data []byte) string {
	return scanString(data, "order", "merchant_reference")
}

// Validate makes the semantic checks of a session request and returns a
// *[ValidationError] listing every problem, or nil.
//
//   - url.return_url: required, an absolute http or https URL.
//   - url.callback_url, if set: an absolute http or https URL. Dintero
//     itself accepts only https and refuses localhost; plain http and
//     loopback hosts are accepted here so that tests can use a local
//     callback server with the sandbox. Production publishers should send
//     https.
//   - profile_id: required, at most 255 bytes, no control characters.
//   - order: as for a charge ([ChargeRequest.Validate]): merchant_reference,
//     a positive integer amount, currency, items summing to the amount.
//   - customer.tokens, if set: keyed by payex.creditcard,
//     bambora.creditcard or dintero_psp.creditcard, each holding a
//     payment_token (at most 512 bytes of printable ASCII) and no
//     recurrence_token, which is for merchant-initiated charges only.
//
// Messages may quote values, never a token.
func (r *SessionRequest) Validate() error {
	v := &validator{request: sessionRequestName}
	if r == nil {
		v.add("body", "no request")
		return v.err()
	}
	r.validate(v)
	return v.err()
}

func (r *SessionRequest) validate(v *validator) {
	if v.usable("url.return_url") {
		if r.URL.ReturnURL == "" {
			v.add("url.return_url", "required")
		} else if msg := checkWebURL(r.URL.ReturnURL); msg != "" {
			v.add("url.return_url", "%s", msg)
		}
	}
	if r.URL.CallbackURL != "" && v.usable("url.callback_url") {
		if msg := checkWebURL(r.URL.CallbackURL); msg != "" {
			v.add("url.callback_url", "%s", msg)
		}
	}
	if v.usable("profile_id") {
		switch p := r.ProfileID; {
		case p == "":
			v.add("profile_id", "required")
		case len(p) > maxReferenceBytes:
			v.add("profile_id", "must be at most %d bytes, got %d", maxReferenceBytes, len(p))
		case strings.ContainsFunc(p, isControl):
			v.add("profile_id", "must not contain control characters")
		}
	}
	validateOrder(v, "order", &r.Order)
	if r.Customer != nil {
		validateSessionTokens(v, r.Customer.Tokens)
	}
}

// validateSessionTokens checks customer.tokens of a customer-initiated
// session: only payment tokens of the three card providers.
func validateSessionTokens(v *validator, tokens map[string]CardTokens) {
	const p = "customer.tokens"
	for _, key := range slices.Sorted(maps.Keys(tokens)) {
		kp := joinPath(p, key)
		if !v.usable(kp) {
			continue
		}
		ct := tokens[key]
		switch key {
		case ProductPayExCreditcard, ProductBamboraCreditcard, ProductDinteroPSPCreditcard:
		default:
			msg := fmt.Sprintf("unknown payment product type, must be one of %s, %s, %s",
				ProductPayExCreditcard, ProductBamboraCreditcard, ProductDinteroPSPCreditcard)
			for _, product := range []string{ProductPayExCreditcard, ProductBamboraCreditcard, ProductDinteroPSPCreditcard} {
				if prefix, _, _ := strings.Cut(product, "."); prefix == key {
					msg += fmt.Sprintf(" (the key is the whole product type %q, not nested objects)", product)
				}
			}
			v.add(kp, "%s", msg)
			continue
		}
		pt, rt := kp+".payment_token", kp+".recurrence_token"
		if ct.RecurrenceToken != "" && v.usable(rt) {
			v.add(rt, "not allowed in a customer-initiated session; use payment_token")
		}
		if ct.PaymentToken == "" && v.usable(pt) {
			v.add(pt, "required")
		}
		checkToken(v, pt, ct.PaymentToken)
	}
}

// checkWebURL checks an absolute http or https URL with a host.
func checkWebURL(s string) string {
	const msg = "must be an absolute http or https URL"
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Opaque != "" {
		return msg
	}
	return ""
}

// LogValue logs what identifies the session: merchant_reference, amount,
// currency, profile_id and the customer, redacted (see
// [Customer.LogValue]). It exists so that a request given to a JSON log
// handler is not encoded with its tokens.
func (r SessionRequest) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("merchant_reference", r.Order.MerchantReference),
		slog.Int64("amount", r.Order.Amount),
		slog.String("currency", r.Order.Currency),
		slog.String("profile_id", r.ProfileID),
	}
	if r.Customer != nil {
		attrs = append(attrs, slog.Any("customer", *r.Customer))
	}
	return slog.GroupValue(attrs...)
}
