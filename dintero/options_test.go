package dintero

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

func TestStrictReferenceToggle(t *testing.T) {
	f := newFake(t)
	f.api = func(w http.ResponseWriter, r *http.Request, _ []byte, _ int64) {
		writeJSON(w, 200, authorizedTx("ref-1"))
	}
	c := newTestClient(t, f, nil)
	if _, err := c.PaySession(context.Background(), payBody); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PaySession(context.Background(), payBody, WithStrictReference()); err != nil {
		t.Fatal(err)
	}
	reqs := f.apiRequests()
	if got := reqs[0].Header.Get("Dintero-Feature-Toggles"); got != ToggleStrictSuccessMerchantReference {
		t.Errorf("default toggle %q, want %q", got, ToggleStrictSuccessMerchantReference)
	}
	if got := reqs[1].Header.Get("Dintero-Feature-Toggles"); got != ToggleStrictMerchantReference {
		t.Errorf("WithStrictReference toggle %q, want %q", got, ToggleStrictMerchantReference)
	}
}

// The fence runs after the token fetch, right before the request is sent:
// a fence that fails after a slow token fetch sends nothing, and is not
// retried.
func TestFenceStopsTheCallBeforeItIsSent(t *testing.T) {
	f := newFake(t)
	var tokenDone atomic.Bool
	f.token = func(w http.ResponseWriter, r *http.Request, n int64) {
		tokenDone.Store(true)
		writeJSON(w, 200, AccessToken{AccessToken: "access-token-1-xyz", TokenType: "Bearer", ExpiresIn: 3600})
	}
	f.acceptAny = true
	f.api = func(w http.ResponseWriter, r *http.Request, _ []byte, _ int64) {
		writeJSON(w, 200, authorizedTx("ref-1"))
	}
	c := newTestClient(t, f, nil)
	lost := errors.New("claim lost")
	var calls atomic.Int64
	fence := func(context.Context) error {
		calls.Add(1)
		if !tokenDone.Load() {
			t.Error("fence ran before the access token was fetched")
		}
		return lost
	}
	for name, call := range map[string]func() error{
		"pay": func() error {
			_, err := c.PaySession(context.Background(), payBody, WithFence(fence))
			return err
		},
		"create_session": func() error {
			_, err := c.CreateSessionProfile(context.Background(), []byte(`{"order":{}}`), WithFence(fence))
			return err
		},
	} {
		calls.Store(0)
		err := call()
		if !errors.Is(err, lost) || KindOf(err) != KindTransient {
			t.Errorf("%s: err = %v; want the fence's error, transient", name, err)
		}
		if calls.Load() != 1 {
			t.Errorf("%s: fence asked %d times, want 1 (a fenced call is not retried)", name, calls.Load())
		}
	}
	if n := f.apiCalls.Load(); n != 0 {
		t.Errorf("%d API requests sent past a failing fence", n)
	}

	// A fence that passes lets the call through.
	if _, err := c.PaySession(context.Background(), payBody, WithFence(func(context.Context) error { return nil })); err != nil {
		t.Fatal(err)
	}
	if n := f.apiCalls.Load(); n != 1 {
		t.Errorf("%d API requests, want 1", n)
	}
}

func TestGetTransactionIncludes(t *testing.T) {
	f := newFake(t)
	f.api = func(w http.ResponseWriter, r *http.Request, _ []byte, _ int64) {
		tx := authorizedTx("ref-1")
		if r.URL.Query()["includes"] != nil {
			tx.Card = &Card{PaymentToken: "card-token-SECRET-123"}
		}
		writeJSON(w, 200, tx)
	}
	c := newTestClient(t, f, nil)
	tx, err := c.GetTransaction(context.Background(), "T12345678.tx1", IncludePaymentToken, IncludeRecurrenceToken)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.apiRequests()[0].Query; got != "includes=card.payment_token&includes=card.recurrence_token" {
		t.Errorf("query %q", got)
	}
	if tx.Card == nil || tx.Card.PaymentToken != "card-token-SECRET-123" {
		t.Fatalf("card %+v", tx.Card)
	}
	for _, s := range []string{tx.Card.String(), tx.Card.GoString()} {
		if strings.Contains(s, "SECRET") {
			t.Errorf("a Card prints its token: %s", s)
		}
	}
}

// Every string of a transaction that Dintero wrote is scrubbed by the
// client: a decline message that echoes the card token (or anything token
// shaped) never reaches the caller.
func TestTransactionsAreScrubbed(t *testing.T) {
	f := newFake(t)
	echo := func(ref string) Transaction {
		tx := failedTx(ref, "INSUFFICIENT_FUNDS", RetryAfterDelay)
		tx.Events[0].Error.Message = "card card-token-SECRET-123 declined; other 4f1c2b9e8d7a6c5b4a39281706f5e4d3"
		tx.Events[0].Error.Code = "code-with-card-token-SECRET-123"
		return tx
	}
	f.api = func(w http.ResponseWriter, r *http.Request, _ []byte, n int64) {
		switch {
		case r.Method == http.MethodPost:
			writeJSON(w, 200, echo("ref-1"))
		case strings.HasSuffix(r.URL.Path, "/transactions"):
			writeJSON(w, 200, []Transaction{echo("ref-1")})
		default:
			writeJSON(w, 200, echo("ref-1"))
		}
	}
	c := newTestClient(t, f, nil)
	tx, err := c.PaySession(context.Background(), payBody)
	if KindOf(err) != KindDeclined {
		t.Fatalf("pay: %v", err)
	}
	got, _ := c.GetTransaction(context.Background(), "T12345678.tx2")
	list, _ := c.TransactionsByMerchantReference(context.Background(), "ref-1")
	if len(list) != 1 || got == nil {
		t.Fatalf("get %v, list %v", got, list)
	}
	for _, x := range []*Transaction{tx, got, &list[0]} {
		e := x.Events[0].Error
		if strings.Contains(e.Message, "SECRET") || strings.Contains(e.Message, "4f1c2b9e8d7a") {
			t.Errorf("message not scrubbed: %q", e.Message)
		}
		if !strings.Contains(e.Message, "declined") {
			t.Errorf("scrubbing lost the message: %q", e.Message)
		}
		if e.Code != "UNKNOWN" {
			t.Errorf("code %q, want UNKNOWN", e.Code)
		}
	}
	var derr *Error
	if errors.As(err, &derr) && strings.Contains(derr.Error(), "SECRET") {
		t.Errorf("error shows the token: %v", derr)
	}
}

func TestScrub(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Insufficient funds", "Insufficient funds"},
		{"EXCEEDS_WITHDRAWAL_FREQUENCY_LIMIT on card", "EXCEEDS_WITHDRAWAL_FREQUENCY_LIMIT on card"},
		{"token tok_4242424242424242abcd used", "token [REDACTED] used"},
		{"secret s3cr3t in text", "secret [REDACTED] in text"},
	}
	for _, tt := range tests {
		if got := Scrub(tt.in, "s3cr3t"); got != tt.want {
			t.Errorf("Scrub(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for code, want := range map[string]string{"INSUFFICIENT_FUNDS": "INSUFFICIENT_FUNDS", "invalid_request": "invalid_request",
		"tok_4242424242424242abcd": "UNKNOWN", "has space": "UNKNOWN", "": ""} {
		if got := scrubCode(code); got != want {
			t.Errorf("scrubCode(%q) = %q, want %q", code, got, want)
		}
	}
}
