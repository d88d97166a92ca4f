package messages

import (
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
)

// redacted stands in for a card token in printed and logged values.
const redacted = "[REDACTED]"

// String shows which kinds of token are present, never their values:
// "{payment_token:[REDACTED]}". JSON encoding is not redacted: it is the
// wire format.
func (t CardTokens) String() string {
	var b strings.Builder
	b.WriteByte('{')
	if t.PaymentToken != "" {
		b.WriteString("payment_token:" + redacted)
	}
	if t.RecurrenceToken != "" {
		if b.Len() > 1 {
			b.WriteByte(' ')
		}
		b.WriteString("recurrence_token:" + redacted)
	}
	b.WriteByte('}')
	return b.String()
}

// GoString is the redacted form for %#v.
func (t CardTokens) GoString() string {
	return "messages.CardTokens" + t.String()
}

// Format prints the redacted form for every verb, so that %d or %x cannot
// print the tokens either.
func (t CardTokens) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, t.GoString())
		return
	}
	_, _ = io.WriteString(f, t.String())
}

// LogValue is a group holding "[REDACTED]" for each kind of token present.
func (t CardTokens) LogValue() slog.Value {
	var attrs []slog.Attr
	if t.PaymentToken != "" {
		attrs = append(attrs, slog.String("payment_token", redacted))
	}
	if t.RecurrenceToken != "" {
		attrs = append(attrs, slog.String("recurrence_token", redacted))
	}
	return slog.GroupValue(attrs...)
}

// String shows the customer id and which kinds of token are present, never
// the tokens: "{customer_id:cust-42 tokens:map[payex.creditcard:{recurrence_token:[REDACTED]}]}".
// The e-mail address and phone number are left out.
func (c Customer) String() string {
	return fmt.Sprintf("{customer_id:%s tokens:%v}", c.CustomerID, c.Tokens)
}

// Format prints [Customer.String] for every verb. Without it fmt would print
// the tokens of a *Customer inside another value under some verbs (%s of a
// PaySession, for one).
func (c Customer) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, "messages.Customer")
	}
	_, _ = io.WriteString(f, c.String())
}

// LogValue logs the customer id and which tokens are present, with the
// tokens redacted. The e-mail address and phone number are left out.
func (c Customer) LogValue() slog.Value {
	var attrs []slog.Attr
	if c.CustomerID != "" {
		attrs = append(attrs, slog.String("customer_id", c.CustomerID))
	}
	if len(c.Tokens) > 0 {
		tokens := make([]slog.Attr, 0, len(c.Tokens))
		for _, product := range slices.Sorted(maps.Keys(c.Tokens)) {
			tokens = append(tokens, slog.Any(product, c.Tokens[product]))
		}
		attrs = append(attrs, slog.Attr{Key: "tokens", Value: slog.GroupValue(tokens...)})
	}
	return slog.GroupValue(attrs...)
}

// LogValue logs the order's reference, amount and currency and the
// customer, redacted; see [Customer.LogValue]. It exists so that a session
// given to a JSON log handler is not encoded with its tokens.
func (s PaySession) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("merchant_reference", s.Order.MerchantReference),
		slog.Int64("amount", s.Order.Amount),
		slog.String("currency", s.Order.Currency),
	}
	if s.Customer != nil {
		attrs = append(attrs, slog.Any("customer", *s.Customer))
	}
	return slog.GroupValue(attrs...)
}

// LogValue logs what identifies the charge: merchant_reference, amount,
// currency, payment_product_type, operation and the customer, redacted (see
// [Customer.LogValue]). It exists so that a request given to a JSON log
// handler is not encoded with its tokens.
func (r ChargeRequest) LogValue() slog.Value {
	o := r.Session.Order
	attrs := []slog.Attr{
		slog.String("merchant_reference", o.MerchantReference),
		slog.Int64("amount", o.Amount),
		slog.String("currency", o.Currency),
		slog.String("payment_product_type", r.Payment.PaymentProductType),
		slog.String("operation", r.Payment.Operation),
	}
	if r.Session.Customer != nil {
		attrs = append(attrs, slog.Any("customer", *r.Session.Customer))
	}
	return slog.GroupValue(attrs...)
}
