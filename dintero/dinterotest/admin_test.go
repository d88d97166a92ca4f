package dinterotest_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
)

func TestAdmin(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	a.login()
	tx := a.payTx(okPay("ref-a"), "")
	a.payTx(payBody("payex.creditcard", "unscheduled_purchase", "payment_token", dinterotest.TokenDoNotRetry+"1", "ref-b", 10, false), "")
	admin := dinterotest.AdminPrefix

	t.Run("index", func(t *testing.T) {
		r := a.do(http.MethodGet, admin, nil, nil)
		for _, want := range []string{dinterotest.DefaultAccountID, dinterotest.DefaultClientID, dinterotest.DefaultClientSecret,
			dinterotest.TokenAuthorized, dinterotest.TokenInsufficientFunds, dinterotest.TokenDoNotRetry, dinterotest.TokenExpiredCard,
			admin + "faults", "https://api.dintero.com/v1/accounts/" + dinterotest.DefaultAccountID} {
			if !strings.Contains(string(r.body), want) {
				t.Errorf("index lacks %q: %s", want, r.body)
			}
		}
		if r2 := a.do(http.MethodGet, strings.TrimSuffix(admin, "/"), nil, nil); r2.status != http.StatusOK {
			t.Errorf("index without slash: %d", r2.status)
		}
	})
	t.Run("ledger", func(t *testing.T) {
		var l []dinterotest.Charge
		a.do(http.MethodGet, admin+"ledger", nil, nil).decode(t, &l)
		if len(l) != 1 || l[0].TransactionID != tx.ID || l[0].MerchantReference != "ref-a" || l[0].Amount != 1000 ||
			l[0].Currency != "NOK" || l[0].PaymentProductType != "payex.creditcard" || l[0].Operation != "unscheduled_purchase" ||
			l[0].Status != dintero.StatusAuthorized || l[0].CreatedAt.IsZero() {
			t.Errorf("ledger %+v", l)
		}
	})
	t.Run("transactions", func(t *testing.T) {
		var txs []dintero.Transaction
		a.do(http.MethodGet, admin+"transactions", nil, nil).decode(t, &txs)
		if len(txs) != 2 || txs[0].ID != tx.ID || txs[1].Status != dintero.StatusDeclined {
			t.Errorf("transactions %+v", txs)
		}
	})
	t.Run("counters", func(t *testing.T) {
		var c dinterotest.Counters
		a.do(http.MethodGet, admin+"counters", nil, nil).decode(t, &c)
		if c != a.sb.Counters() || c.PayRequests != 2 || c.Authorized != 1 || c.Declined != 1 || c.TokensIssued != 1 {
			t.Errorf("counters %+v", c)
		}
	})
	t.Run("faults", func(t *testing.T) {
		r := a.do(http.MethodGet, admin+"faults", nil, nil)
		if !strings.Contains(string(r.body), `"retry_after":"1s"`) {
			t.Errorf("default faults %s", r.body)
		}
		r = a.do(http.MethodPut, admin+"faults", `{"latency":"5ms","error_rate":0.25,"retry_after":"3s"}`, nil)
		want := dinterotest.Faults{Latency: 5 * time.Millisecond, ErrorRate: 0.25, RetryAfter: 3 * time.Second}
		var got dinterotest.Faults
		r.decode(t, &got)
		if r.status != http.StatusOK || got != want || a.sb.Faults() != want {
			t.Errorf("PUT: %d %+v, Faults() %+v", r.status, got, a.sb.Faults())
		}
		for _, bad := range []string{`{"error_rate":1.5}`, `{"reset_rate":-1}`, `{"latency":"x"}`, `{"nope":1}`, `not json`} {
			if r := a.do(http.MethodPut, admin+"faults", bad, nil); r.status != http.StatusBadRequest {
				t.Errorf("PUT %s: %d", bad, r.status)
			}
		}
		if a.sb.Faults() != want {
			t.Errorf("a rejected PUT changed the faults: %+v", a.sb.Faults())
		}
		a.sb.SetFaults(dinterotest.Faults{})
	})
	t.Run("expire-tokens", func(t *testing.T) {
		if r := a.do(http.MethodPost, admin+"expire-tokens", nil, nil); r.status != http.StatusOK {
			t.Fatalf("%d", r.status)
		}
		if r := a.do(http.MethodGet, "/v1/transactions", nil, nil); r.status != http.StatusUnauthorized {
			t.Errorf("old token: %d", r.status)
		}
		a.login()
	})
	t.Run("reset", func(t *testing.T) {
		a.sb.SetFaults(dinterotest.Faults{RetryAfter: 5 * time.Second})
		if r := a.do(http.MethodPost, admin+"reset", nil, nil); r.status != http.StatusOK {
			t.Fatalf("%d", r.status)
		}
		if len(a.sb.Ledger()) != 0 || len(a.sb.Transactions()) != 0 || a.sb.Counters() != (dinterotest.Counters{}) {
			t.Errorf("after reset: %+v %+v", a.sb.Ledger(), a.sb.Counters())
		}
		if a.sb.Faults().RetryAfter != 5*time.Second {
			t.Error("reset cleared the faults")
		}
		if r := a.do(http.MethodGet, "/v1/transactions/"+tx.ID, nil, nil); r.status != http.StatusNotFound {
			t.Errorf("transaction after reset: %d", r.status)
		}
		if r := a.do(http.MethodGet, "/v1/sessions/"+tx.SessionID, nil, nil); r.status != http.StatusNotFound {
			t.Errorf("session after reset: %d", r.status)
		}
		// The token survives a reset, and a reference may be reused under strict toggles.
		a.payTx(okPay("ref-a"), dintero.ToggleStrictMerchantReference)
	})
}

// TestTransactionsAreCopies checks callers cannot change the stored data.
func TestTransactionsAreCopies(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	a.login()
	a.payTx(payBody("payex.creditcard", "unscheduled_purchase", "payment_token", dinterotest.TokenInsufficientFunds+"1", "r", 10, false), "")
	txs := a.sb.Transactions()
	txs[0].Status = "X"
	txs[0].Events[0].Error.RetryPolicy.RetryCodes[0] = "X"
	again := a.sb.Transactions()
	if again[0].Status == "X" || again[0].Events[0].Error.RetryPolicy.RetryCodes[0] == "X" {
		t.Error("Transactions returned shared data")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNoTokenEcho drives every endpoint, successes and errors, with
// distinctive card tokens and checks no response body or log line holds
// one.
func TestNoTokenEcho(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a := newAPI(t, dinterotest.Options{Logger: logger})
	a.login()
	const secret = "S3CR3T-CARD-VALUE"
	tok := func(prefix string) string { return prefix + secret }
	var txIDs, sessionIDs []string
	for _, p := range []string{dinterotest.TokenAuthorized, dinterotest.TokenInsufficientFunds, dinterotest.TokenDoNotRetry, dinterotest.TokenExpiredCard} {
		for _, auto := range []bool{false, true} {
			tx := a.payTx(payBody("payex.creditcard", "recurring_purchase", "recurrence_token", tok(p), "ref-"+p, 100, auto), "")
			txIDs = append(txIDs, tx.ID)
			sessionIDs = append(sessionIDs, tx.SessionID)
		}
	}
	// Errors that involve a token.
	a.pay(payBody("payex.creditcard", "unscheduled_purchase", "payment_token", "unknown-"+secret, "r", 100, false), "")
	a.pay(payBody("bambora.creditcard", "unscheduled_purchase", "recurrence_token", tok(dinterotest.TokenAuthorized), "r", 100, false), "")
	a.pay(payBody("payex.creditcard", "unscheduled_purchase", "payment_token", tok(dinterotest.TokenAuthorized), "ref-"+dinterotest.TokenAuthorized, 299.5, false), "")
	a.pay(payBody("payex.creditcard", "unscheduled_purchase", "payment_token", tok(dinterotest.TokenAuthorized), "ref-"+dinterotest.TokenAuthorized, 100, false),
		dintero.ToggleStrictSuccessMerchantReference)
	a.pay(`{"session":{"customer":{"tokens":{"payex.creditcard":{"payment_token":"`+tok(dinterotest.TokenAuthorized)+`"}}}},"payment":`, "")
	a.pay(`{"session":{"customer":{"tokens":{"payex.creditcard":{"payment_token":["`+tok(dinterotest.TokenAuthorized)+`"]}}}}}`, "")
	// A customer-initiated session holding a token.
	cit := profileBody("cit-ref")
	cit["customer"].(map[string]any)["tokens"] = map[string]any{"dintero_psp.creditcard": map[string]any{"payment_token": tok(dinterotest.TokenAuthorized)}}
	var sc dintero.SessionCreated
	a.do(http.MethodPost, "/v1/sessions-profile", cit, nil).decode(t, &sc)
	sessionIDs = append(sessionIDs, sc.ID)
	bad := profileBody("cit-ref")
	bad["customer"].(map[string]any)["tokens"] = map[string]any{"payex.creditcard": map[string]any{"recurrence_token": tok(dinterotest.TokenAuthorized)}}
	a.do(http.MethodPost, "/v1/sessions-profile", bad, nil)

	// Only includes=card.*_token shows a token (TestTransactionIncludesToken).
	for _, id := range txIDs {
		a.do(http.MethodGet, "/v1/transactions/"+id+"?includes=session", nil, nil)
	}
	for _, id := range sessionIDs {
		a.do(http.MethodGet, "/v1/sessions/"+id, nil, nil)
	}
	a.do(http.MethodGet, "/v1/transactions?limit=100", nil, nil)
	for _, p := range []string{"", "ledger", "transactions", "counters", "faults"} {
		a.do(http.MethodGet, dinterotest.AdminPrefix+p, nil, nil)
	}

	bodies := a.allBodies()
	if len(bodies) < 30 {
		t.Fatalf("only %d bodies checked", len(bodies))
	}
	for _, b := range bodies {
		if strings.Contains(string(b), secret) {
			t.Errorf("token in a response: %s", b)
		}
		if a.token != "" && strings.Contains(string(b), a.token) && !strings.Contains(string(b), "access_token") {
			t.Errorf("access token echoed: %s", b)
		}
	}
	out := logs.String()
	if !strings.Contains(out, "/v1/sessions/pay") {
		t.Fatalf("logger not used: %q", out)
	}
	for _, s := range []string{secret, a.token, dinterotest.DefaultClientSecret} {
		if strings.Contains(out, s) {
			t.Errorf("log holds a secret %q", s)
		}
	}
	for _, c := range a.sb.Ledger() {
		if strings.Contains(c.MerchantReference+c.TransactionID, secret) {
			t.Errorf("ledger %+v", c)
		}
	}
}
