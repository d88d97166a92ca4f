package dinterotest_test

import (
	"strings"
	"testing"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
)

// TestEchoCardQuotesItsToken: the echo card declines, and its decline
// message carries the whole token, on /v1/sessions/pay and when a customer
// pays a session, so that clients can be tested for scrubbing it.
func TestEchoCardQuotesItsToken(t *testing.T) {
	const token = dinterotest.TokenEchoDecline + "4925000000000004"
	a := newAPI(t, dinterotest.Options{})
	a.login()
	tx := a.payTx(payBody("bambora.creditcard", "unscheduled_purchase", "payment_token", token, "ref-echo", 500, false), "")
	le := tx.LastError()
	if tx.Status != dintero.StatusFailed || le == nil || !strings.Contains(le.Message, token) ||
		le.RetryPolicy == nil || len(le.RetryPolicy.RetryCodes) != 1 || le.RetryPolicy.RetryCodes[0] != dintero.RetryDoNotRetry {
		t.Fatalf("echo card: status %s, last error %+v; want FAILED, DO_NOT_RETRY, a message quoting the token", tx.Status, le)
	}
	if n := len(a.sb.Ledger()); n != 0 {
		t.Fatalf("a decline entered the ledger (%d charges)", n)
	}

	r := a.do("POST", "/v1/sessions-profile", map[string]any{
		"url":        map[string]any{"return_url": "https://example.com/thanks"},
		"order":      map[string]any{"amount": 500, "currency": "NOK", "merchant_reference": "ref-echo-cit"},
		"customer":   map[string]any{"tokens": map[string]any{"bambora.creditcard": map[string]any{"payment_token": token}}},
		"profile_id": "default",
	}, nil)
	var created dintero.SessionCreated
	r.decode(t, &created)
	paid, err := a.sb.PaySession(created.ID, "123")
	if err != nil {
		t.Fatal(err)
	}
	if le := paid.LastError(); paid.Status != dintero.StatusFailed || le == nil || !strings.Contains(le.Message, token) {
		t.Fatalf("echo card on a session: status %s, last error %+v", paid.Status, le)
	}
}
