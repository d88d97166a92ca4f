package dintero_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero"
)

// fuzzTransport answers the token endpoint properly and every API call with
// the fuzzed status, header and body, without a network.
type fuzzTransport struct {
	status     int
	retryAfter string
	body       []byte
}

func (f *fuzzTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	h := http.Header{"Content-Type": {"application/json"}}
	if strings.HasSuffix(r.URL.Path, "/auth/token") {
		return &http.Response{StatusCode: 200, Header: h, Request: r,
			Body: io.NopCloser(strings.NewReader(`{"access_token":"fuzz-access-token","token_type":"Bearer","expires_in":3600}`))}, nil
	}
	if f.retryAfter != "" {
		h.Set("Retry-After", f.retryAfter)
	}
	return &http.Response{StatusCode: f.status, Header: h, Request: r, Body: io.NopCloser(bytes.NewReader(f.body))}, nil
}

// FuzzResponses: whatever Dintero answers, the client neither panics nor
// reports success for a charge that is not a success, never retries a pay
// whose outcome is unknown, and never puts a secret in an error.
func FuzzResponses(f *testing.F) {
	f.Add(200, "", []byte(`{"id":"T12345678.a","status":"AUTHORIZED","amount":100,"currency":"NOK","merchant_reference":"r"}`))
	f.Add(200, "", []byte(`{"id":"T12345678.a","status":"FAILED","events":[{"event":"AUTHORIZE","error":{"message":"no","type":["INSUFFICIENT_FUNDS"],"retry_policy":{"retry_codes":["RETRY_AFTER_DELAY"],"retry_after":"2026-01-01T00:00:00Z"}}}]}`))
	f.Add(200, "", []byte(`{"id":"T12345678.a","status":"ON_HOLD"}`))
	f.Add(200, "", []byte(`[{"id":"T12345678.a","status":"CAPTURED","merchant_reference":"r"}]`))
	f.Add(400, "", []byte(`{"error":{"code":"DUPLICATE_MERCHANT_REFERENCE","message":"dup"}}`))
	f.Add(429, "1", []byte(`{"error":{"message":"slow down"}}`))
	f.Add(503, "", []byte(`<html>gateway</html>`))
	f.Add(200, "", []byte(`{"status":`))
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		if status < 100 || status > 599 {
			return
		}
		ft := &fuzzTransport{status: status, retryAfter: retryAfter, body: body}
		c, err := dintero.New(dintero.Config{
			AccountID: "T12345678", ClientID: "fuzz-client", ClientSecret: "fuzz-client-secret",
			APIURL: "https://checkout.example", HTTPClient: &http.Client{Transport: ft},
			Retry: dintero.RetryConfig{InitialInterval: time.Microsecond, MaxInterval: time.Microsecond,
				MaxElapsedTime: 50 * time.Millisecond, MaxRetryAfter: time.Microsecond, MaxAttempts: 2},
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		reqBody := []byte(`{"session":{"customer":{"tokens":{"payex.creditcard":{"payment_token":"fuzz-card-token"}}},"order":{"amount":1,"currency":"NOK","merchant_reference":"r"}},"payment":{"payment_product_type":"payex.creditcard","operation":"unscheduled_purchase"}}`)

		tx, err := c.PaySession(ctx, reqBody)
		checkErr(t, err)
		if err == nil && (tx == nil || !dintero.Succeeded(tx.Status)) {
			t.Fatalf("pay reported success for %+v (status %d, body %q)", tx, status, body)
		}
		if status >= 500 && dintero.KindOf(err) != dintero.KindUnknownOutcome {
			t.Fatalf("pay answered %d: kind %v, want unknown_outcome", status, dintero.KindOf(err))
		}
		var derr *dintero.Error
		if errors.As(err, &derr) && derr.Kind == dintero.KindDeclined && derr.Transaction == nil {
			t.Fatal("a decline without its transaction")
		}
		_, err = c.TransactionsByMerchantReference(ctx, "r")
		checkErr(t, err)
		_, err = c.GetTransaction(ctx, "T12345678.a")
		checkErr(t, err)
		_, err = c.CreateSessionProfile(ctx, reqBody)
		checkErr(t, err)
	})
}

func checkErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if k := dintero.KindOf(err); k < dintero.KindTransient || k > dintero.KindInvalid {
		t.Fatalf("error without a kind: %v", err)
	}
	for _, secret := range []string{"fuzz-client-secret", "fuzz-access-token", "fuzz-card-token"} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error shows a secret: %v", err)
		}
	}
}
