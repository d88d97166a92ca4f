package messages_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/payworker/payworker/messages"
)

func TestCardTokensRedacted(t *testing.T) {
	tok := messages.CardTokens{PaymentToken: "sandbox-pay-secret", RecurrenceToken: "sandbox-rec-secret"}
	cust := messages.Customer{
		CustomerID: "cust-42",
		Email:      "john.doe@example.com",
		Tokens: map[string]messages.CardTokens{
			messages.ProductPayExCreditcard:   tok,
			messages.ProductBamboraCreditcard: {PaymentToken: "sandbox-bambora-secret"},
		},
	}
	req := messages.ChargeRequest{
		Session: messages.PaySession{
			Customer: &cust,
			Order:    messages.Order{Amount: 100, Currency: "NOK", MerchantReference: "order-1"},
		},
		Payment: messages.Payment{PaymentProductType: messages.ProductPayExCreditcard, Operation: messages.OperationRecurringPurchase},
	}
	values := map[string]any{
		"tokens":          tok,
		"*tokens":         &tok,
		"customer":        cust,
		"*customer":       &cust,
		"token map":       cust.Tokens,
		"session":         req.Session,
		"request":         req,
		"*request":        &req,
		"slice of tokens": []messages.CardTokens{tok},
	}
	check := func(t *testing.T, out string) {
		t.Helper()
		if strings.Contains(out, tokenMarker) {
			t.Errorf("output shows a token: %s", out)
		}
	}

	for name, v := range values {
		t.Run("fmt/"+name, func(t *testing.T) {
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s"} {
				check(t, fmt.Sprintf(verb, v))
			}
			check(t, fmt.Sprint(v))
			check(t, fmt.Sprintln(v))
		})
		t.Run("slog/"+name, func(t *testing.T) {
			var buf bytes.Buffer
			if !strings.Contains(name, "map") && !strings.Contains(name, "slice") {
				// A JSON handler encodes a bare map or slice with
				// json.Marshal, the wire format, which keeps the tokens.
				slog.New(slog.NewJSONHandler(&buf, nil)).Info("charge", "v", v)
			}
			slog.New(slog.NewTextHandler(&buf, nil)).Info("charge", "v", v)
			slog.New(slog.NewTextHandler(&buf, nil)).Info("charge", slog.Group("g", "v", v))
			check(t, buf.String())
		})
	}

	// What is shown.
	if got, want := tok.String(), "{payment_token:[REDACTED] recurrence_token:[REDACTED]}"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := (messages.CardTokens{PaymentToken: "sandbox-x"}).String(), "{payment_token:[REDACTED]}"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := fmt.Sprintf("%#v", tok), "messages.CardTokens{payment_token:[REDACTED] recurrence_token:[REDACTED]}"; got != want {
		t.Errorf("%%#v = %q, want %q", got, want)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("charge", "request", req)
	for _, want := range []string{
		`"merchant_reference":"order-1"`, `"amount":100`, `"customer_id":"cust-42"`,
		`"payex.creditcard":{"payment_token":"[REDACTED]","recurrence_token":"[REDACTED]"}`,
		`"bambora.creditcard":{"payment_token":"[REDACTED]"}`,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log line lacks %s: %s", want, buf.String())
		}
	}
	if strings.Contains(buf.String(), "john.doe") {
		t.Errorf("log line shows the e-mail address: %s", buf.String())
	}
	if got, want := fmt.Sprintf("%+v", cust), "{customer_id:cust-42 tokens:map[bambora.creditcard:{payment_token:[REDACTED]} payex.creditcard:{payment_token:[REDACTED] recurrence_token:[REDACTED]}]}"; got != want {
		t.Errorf("%%+v of a customer = %q, want %q", got, want)
	}

	// JSON is the wire format: it must keep the tokens.
	wire, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"sandbox-pay-secret", "sandbox-rec-secret", "sandbox-bambora-secret"} {
		if !bytes.Contains(wire, []byte(secret)) {
			t.Errorf("json.Marshal dropped a token: %s", wire)
		}
	}
}
