package messages

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits checked by [ChargeRequest.Validate].
const (
	maxReferenceBytes = 255
	maxTokenBytes     = 512
	maxAmount         = 1_000_000_000_000 // minor units; a sanity cap
	maxQuotedBytes    = 64                // longest value quoted in a message
	maxFieldErrors    = 100               // problems listed; the rest are counted
)

// ValidationError lists every problem found in a request, up to 100 (a
// last entry for the field "body" then counts the others). It never
// contains a card token, and its Error is a single line.
type ValidationError struct {
	Fields []FieldError

	request string // what was invalid; "" means a charge request
}

// Error gives all problems on one line: "invalid charge request:
// session.order.amount: must be a positive integer (minor units);
// payment.operation: ..." (or "invalid session request: ..." for a
// [SessionRequest]).
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid ")
	if e.request == "" {
		b.WriteString("charge request")
	} else {
		b.WriteString(e.request)
	}
	for i, f := range e.Fields {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Field)
		b.WriteString(": ")
		b.WriteString(f.Message)
	}
	return b.String()
}

// Validate makes the semantic checks of a charge request and returns a
// *[ValidationError] listing every problem, or nil. Field paths are JSON
// paths, e.g. "session.order.amount"; a token map key keeps its dot:
// "session.customer.tokens.payex.creditcard.recurrence_token".
//
//   - session.order.merchant_reference: required, at most 255 bytes, no
//     control characters, no leading or trailing white space.
//   - session.order.amount: from 1 to 10^12 minor units; currency: three
//     upper-case ASCII letters; vat_amount, if set, from 0 to amount.
//   - session.order.items: amounts not negative, line_id unique when set;
//     when there are items, their amounts plus shipping_option.amount must
//     equal the order amount.
//   - payment.payment_product_type: payex.creditcard, bambora.creditcard or
//     dintero_psp.creditcard; payment.operation: recurring_purchase or
//     unscheduled_purchase.
//   - session.customer.tokens[payment_product_type] must hold the token the
//     operation needs: for payex.creditcard a recurrence_token for
//     recurring_purchase and a payment_token for unscheduled_purchase (the
//     other kind may be present too); for bambora.creditcard and
//     dintero_psp.creditcard a payment_token for both operations, and no
//     recurrence_token. Tokens are at most 512 bytes of printable ASCII
//     without spaces.
//   - session.url.callback_url, if set: an absolute https URL, not localhost.
//   - session.expires_at, if set: an RFC 3339 date-time.
//
// Messages may quote values, never a token.
func (r *ChargeRequest) Validate() error {
	v := &validator{}
	if r == nil {
		v.add("body", "no request")
		return v.err()
	}
	r.validate(v)
	return v.err()
}

// validator collects problems. skip holds the paths whose decoded values
// cannot be trusted (wrong JSON type, missing container); checks of those
// paths and of anything below them are left out.
type validator struct {
	request string // for ValidationError.request
	errs    []FieldError
	skip    map[string]bool
	dropped int // problems found beyond maxFieldErrors
}

func (v *validator) add(field, format string, args ...any) {
	if len(v.errs) >= maxFieldErrors {
		v.dropped++
		return
	}
	v.errs = append(v.errs, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) unusable(path string) {
	if v.skip == nil {
		v.skip = make(map[string]bool)
	}
	v.skip[path] = true
}

// usable reports whether neither path nor any path above it is unusable.
func (v *validator) usable(path string) bool {
	if len(v.skip) == 0 {
		return true
	}
	if v.skip[""] {
		return false
	}
	// Try path, then each shorter path ending before a '.' or '['.
	for i := len(path); i > 0; i = strings.LastIndexAny(path[:i], ".[") {
		if v.skip[path[:i]] {
			return false
		}
	}
	return true
}

func (v *validator) err() error {
	if len(v.errs) == 0 {
		return nil
	}
	errs := v.errs
	if v.dropped > 0 {
		errs = append(errs, FieldError{Field: "body", Message: fmt.Sprintf("%d more problems not listed", v.dropped)})
	}
	return &ValidationError{Fields: errs, request: v.request}
}

func (r *ChargeRequest) validate(v *validator) {
	validateOrder(v, "session.order", &r.Session.Order)
	if u := r.Session.URL; u != nil && u.CallbackURL != "" && v.usable("session.url.callback_url") {
		if msg := checkCallbackURL(u.CallbackURL); msg != "" {
			v.add("session.url.callback_url", "%s", msg)
		}
	}
	if s := r.Session.ExpiresAt; s != "" && v.usable("session.expires_at") {
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			v.add("session.expires_at", "must be an RFC 3339 date-time like 2026-08-01T12:00:00Z, got %s", quoteValue(s))
		}
	}
	product, operation := r.Payment.PaymentProductType, r.Payment.Operation
	productOK, operationOK := false, false
	switch product {
	case ProductPayExCreditcard, ProductBamboraCreditcard, ProductDinteroPSPCreditcard:
		productOK = true
	default:
		if v.usable("payment.payment_product_type") {
			v.add("payment.payment_product_type", "%s, must be one of %s, %s, %s", gotValue(product),
				ProductPayExCreditcard, ProductBamboraCreditcard, ProductDinteroPSPCreditcard)
		}
	}
	switch operation {
	case OperationRecurringPurchase, OperationUnscheduledPurchase:
		operationOK = true
	default:
		if v.usable("payment.operation") {
			v.add("payment.operation", "%s, must be %s or %s", gotValue(operation),
				OperationRecurringPurchase, OperationUnscheduledPurchase)
		}
	}
	if productOK {
		validateTokens(v, r.Session.Customer, product, operation, operationOK)
	}
}

// validateOrder checks an order found at the JSON path p.
func validateOrder(v *validator, p string, o *Order) {
	if v.usable(p + ".merchant_reference") {
		if msg := checkReference(o.MerchantReference); msg != "" {
			v.add(p+".merchant_reference", "%s", msg)
		}
	}
	amountOK := v.usable(p + ".amount")
	if amountOK {
		switch {
		case o.Amount <= 0:
			v.add(p+".amount", "must be a positive integer (minor units), got %d", o.Amount)
			amountOK = false // no use comparing other amounts with it
		case o.Amount > maxAmount:
			v.add(p+".amount", "must be at most %d minor units, got %d", int64(maxAmount), o.Amount)
			amountOK = false
		}
	}
	if v.usable(p + ".currency") {
		switch c := o.Currency; {
		case c == "":
			v.add(p+".currency", "required")
		case !isCurrencyCode(c):
			v.add(p+".currency", "must be a three-letter upper-case ISO 4217 code like NOK, got %s", quoteValue(c))
		}
	}
	if o.VATAmount != nil && v.usable(p+".vat_amount") {
		switch vat := *o.VATAmount; {
		case vat < 0:
			v.add(p+".vat_amount", "must not be negative, got %d", vat)
		case amountOK && vat > o.Amount:
			v.add(p+".vat_amount", "must not exceed the order amount %d, got %d", o.Amount, vat)
		}
	}

	// The items check needs every amount it adds up.
	known, overflow := amountOK, false
	var sum int64
	add := func(a int64) {
		if a > 0 && sum > math.MaxInt64-a || a < 0 && sum < math.MinInt64-a {
			overflow = true
			return
		}
		sum += a
	}
	lineIDs := make(map[string]int)
	for i, it := range o.Items {
		ip := indexPath(p+".items", i)
		if v.usable(ip + ".amount") {
			if it.Amount < 0 {
				v.add(ip+".amount", "must not be negative, got %d", it.Amount)
			}
			add(it.Amount)
		} else {
			known = false
		}
		if it.LineID != "" && v.usable(ip+".line_id") {
			if j, dup := lineIDs[it.LineID]; dup {
				v.add(ip+".line_id", "duplicate line_id %s (also items[%d])", quoteValue(it.LineID), j)
			} else {
				lineIDs[it.LineID] = i
			}
		}
	}
	var shipping string
	if so := o.ShippingOption; so != nil {
		if v.usable(p + ".shipping_option.amount") {
			if so.Amount < 0 {
				v.add(p+".shipping_option.amount", "must not be negative, got %d", so.Amount)
			}
			add(so.Amount)
			shipping = " with shipping_option.amount " + strconv.FormatInt(so.Amount, 10)
		} else {
			known = false
		}
	}
	if len(o.Items) > 0 && v.usable(p+".items") {
		switch {
		case !known:
		case overflow:
			v.add(p+".items", "amounts%s overflow, order amount is %d", shipping, o.Amount)
		case sum != o.Amount:
			v.add(p+".items", "amounts sum to %d%s, order amount is %d", sum, shipping, o.Amount)
		}
	}
}

func validateTokens(v *validator, c *Customer, product, operation string, operationOK bool) {
	tp := "session.customer.tokens." + product
	if !v.usable(tp) {
		return
	}
	var tokens map[string]CardTokens
	if c != nil {
		tokens = c.Tokens
	}
	ct, ok := tokens[product]
	if !ok {
		msg := "required: the card tokens for " + product
		if prefix, _, _ := strings.Cut(product, "."); prefix != product {
			if _, nested := tokens[prefix]; nested {
				msg += fmt.Sprintf(" (found key %q instead: the key is the whole product type %q, not nested objects)", prefix, product)
			}
		}
		v.add(tp, "%s", msg)
		return
	}
	pt, rt := tp+".payment_token", tp+".recurrence_token"
	switch product {
	case ProductPayExCreditcard:
		switch {
		case !operationOK:
		case operation == OperationRecurringPurchase && ct.RecurrenceToken == "" && v.usable(rt):
			v.add(rt, "required for %s with %s (a payment_token is for %s)",
				OperationRecurringPurchase, product, OperationUnscheduledPurchase)
		case operation == OperationUnscheduledPurchase && ct.PaymentToken == "" && v.usable(pt):
			v.add(pt, "required for %s with %s (a recurrence_token is for %s)",
				OperationUnscheduledPurchase, product, OperationRecurringPurchase)
		}
		checkToken(v, rt, ct.RecurrenceToken)
	default: // bambora.creditcard, dintero_psp.creditcard
		if ct.RecurrenceToken != "" && v.usable(rt) {
			v.add(rt, "%s has no recurrence tokens; use payment_token", product)
		}
		if ct.PaymentToken == "" && v.usable(pt) {
			v.add(pt, "required for %s, for both operations", product)
		}
	}
	checkToken(v, pt, ct.PaymentToken)
}

// checkToken checks a token's form. Its messages never include the token.
func checkToken(v *validator, path, token string) {
	if token == "" || !v.usable(path) {
		return
	}
	if len(token) > maxTokenBytes {
		v.add(path, "must be at most %d bytes, got %d", maxTokenBytes, len(token))
		return
	}
	for i := range len(token) {
		if token[i] <= ' ' || token[i] > '~' {
			v.add(path, "must be printable ASCII without spaces (bad byte at offset %d)", i)
			return
		}
	}
}

func checkReference(ref string) string {
	switch {
	case ref == "":
		return "required"
	case len(ref) > maxReferenceBytes:
		return fmt.Sprintf("must be at most %d bytes, got %d", maxReferenceBytes, len(ref))
	case !utf8.ValidString(ref):
		return "must be valid UTF-8"
	case strings.ContainsRune(ref, utf8.RuneError):
		// What a JSON decoder makes of a lone surrogate escape ("\ud800"),
		// while Dintero gets the escape itself: the reference would differ
		// between Redis, the lookup and Dintero.
		return "must not contain U+FFFD or a lone surrogate escape"
	case strings.ContainsFunc(ref, isControl):
		return "must not contain control characters"
	}
	first, _ := utf8.DecodeRuneInString(ref)
	last, _ := utf8.DecodeLastRuneInString(ref)
	if unicode.IsSpace(first) || unicode.IsSpace(last) {
		return fmt.Sprintf("must not begin or end with white space, got %s", quoteValue(ref))
	}
	return ""
}

func checkCallbackURL(s string) string {
	const msg = "must be an absolute https URL"
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.Opaque != "" {
		return msg
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return "must not point to localhost (Dintero refuses it)"
	}
	if ip := net.ParseIP(host); ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) {
		return "must not point to a loopback address (Dintero refuses it)"
	}
	return ""
}

func isCurrencyCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := range 3 {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

func isControl(r rune) bool { return unicode.IsControl(r) }

// gotValue describes a value that is missing or not allowed.
func gotValue(s string) string {
	if s == "" {
		return "required"
	}
	return "unknown value " + quoteValue(s)
}

// quoteValue quotes s for a message, shortened to maxQuotedBytes. Never
// pass it a card token.
func quoteValue(s string) string {
	if len(s) <= maxQuotedBytes {
		return strconv.Quote(s)
	}
	cut := maxQuotedBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}
