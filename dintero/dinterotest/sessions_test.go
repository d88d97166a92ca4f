package dinterotest_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
)

func profileBody(ref string) map[string]any {
	return map[string]any{
		"url":   map[string]any{"return_url": "https://example.com/thankyou", "callback_url": "https://example.com/callback"},
		"order": map[string]any{"amount": 29990, "currency": "NOK", "merchant_reference": ref},
		"customer": map[string]any{
			"email":  "john.doe@example.com",
			"tokens": map[string]any{"payex.creditcard": map[string]any{"payment_token": dinterotest.TokenAuthorized + "cit-secret"}},
		},
		"profile_id": "default",
	}
}

func TestSessionsProfileValidation(t *testing.T) {
	type body = map[string]any
	tests := []struct {
		name   string
		mutate func(b body)
	}{
		{"missing return_url", func(b body) { delete(b["url"].(body), "return_url") }},
		{"missing url", func(b body) { delete(b, "url") }},
		{"missing profile_id", func(b body) { delete(b, "profile_id") }},
		{"missing order", func(b body) { delete(b, "order") }},
		{"float amount", func(b body) { b["order"].(body)["amount"] = 299.5 }},
		{"missing merchant_reference", func(b body) { delete(b["order"].(body), "merchant_reference") }},
		{"missing currency", func(b body) { delete(b["order"].(body), "currency") }},
		{"recurrence_token", func(b body) {
			b["customer"].(body)["tokens"] = body{"payex.creditcard": body{"recurrence_token": "sandbox-ok-r"}}
		}},
		{"nested tokens", func(b body) {
			b["customer"].(body)["tokens"] = body{"payex": body{"creditcard": body{"payment_token": "sandbox-ok-r"}}}
		}},
		{"empty payment_token", func(b body) {
			b["customer"].(body)["tokens"] = body{"bambora.creditcard": body{"payment_token": ""}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAPI(t, dinterotest.Options{})
			a.login()
			b := profileBody("ref")
			tt.mutate(b)
			r := a.do(http.MethodPost, "/v1/sessions-profile", b, nil)
			if r.status != http.StatusBadRequest || r.errorCode(t) != "INVALID_REQUEST" {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if c := a.sb.Counters(); c.SessionsCreated != 0 || c.InvalidRequests != 1 {
				t.Errorf("counters %+v", c)
			}
		})
	}
	t.Run("accepted without tokens", func(t *testing.T) {
		a := newAPI(t, dinterotest.Options{})
		a.login()
		b := profileBody("ref")
		delete(b, "customer")
		if r := a.do(http.MethodPost, "/v1/sessions-profile", b, nil); r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if c := a.sb.Counters(); c.SessionsCreated != 1 {
			t.Errorf("SessionsCreated %d", c.SessionsCreated)
		}
	})
}

func TestSessionGet(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	a.login()
	tx := a.payTx(payBody("payex.creditcard", "recurring_purchase", "recurrence_token", dinterotest.TokenAuthorized+"s", "ref-s", 700, false), "")
	r := a.do(http.MethodGet, "/v1/sessions/"+tx.SessionID, nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var v struct {
		ID            string `json:"id"`
		TransactionID string `json:"transaction_id"`
		Order         struct {
			Amount int64 `json:"amount"`
		} `json:"order"`
		URL struct {
			CallbackURL string `json:"callback_url"`
		} `json:"url"`
	}
	r.decode(t, &v)
	if v.ID != tx.SessionID || v.TransactionID != tx.ID || v.Order.Amount != 700 || v.URL.CallbackURL == "" {
		t.Errorf("session %+v", v)
	}
	if r := a.do(http.MethodGet, "/v1/sessions/T12345678.missing", nil, nil); r.status != http.StatusNotFound || r.errorCode(t) != "NOT_FOUND" {
		t.Errorf("missing session: %d %s", r.status, r.body)
	}
}

func TestTransactions(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	a.login()
	pay := func(ref, tok string) dintero.Transaction {
		return a.payTx(payBody("bambora.creditcard", "unscheduled_purchase", "payment_token", tok, ref, 100, false), "")
	}
	var ids []string // ref "many", oldest first
	for i := range 25 {
		tok := dinterotest.TokenAuthorized
		if i%3 == 0 {
			tok = dinterotest.TokenInsufficientFunds
		}
		ids = append(ids, pay("many", tok+fmt.Sprint(i)).ID)
	}
	other := pay("other", dinterotest.TokenAuthorized+"o")

	t.Run("get", func(t *testing.T) {
		r := a.do(http.MethodGet, "/v1/transactions/"+other.ID+"?includes=card.payment_token", nil, nil)
		if r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var tx dintero.Transaction
		r.decode(t, &tx)
		if tx.ID != other.ID || tx.MerchantReference != "other" || tx.Status != dintero.StatusAuthorized || tx.Success != nil {
			t.Errorf("tx %+v", tx)
		}
		if r := a.do(http.MethodGet, "/v1/transactions/T12345678.nope", nil, nil); r.status != http.StatusNotFound || r.errorCode(t) != "NOT_FOUND" {
			t.Errorf("missing: %d %s", r.status, r.body)
		}
	})

	list := func(t *testing.T, query string) []dintero.Transaction {
		t.Helper()
		r := a.do(http.MethodGet, "/v1/transactions?"+query, nil, nil)
		if r.status != http.StatusOK {
			t.Fatalf("list %s: %d %s", query, r.status, r.body)
		}
		if !strings.HasPrefix(string(r.body), "[") {
			t.Fatalf("not a bare array: %s", r.body)
		}
		var txs []dintero.Transaction
		r.decode(t, &txs)
		return txs
	}
	ids2 := func(txs []dintero.Transaction) []string {
		var out []string
		for _, tx := range txs {
			out = append(out, tx.ID)
		}
		return out
	}
	newest := func(from, n int) []string { // ids[from], ids[from-1], ... n of them
		var out []string
		for i := from; i > from-n && i >= 0; i-- {
			out = append(out, ids[i])
		}
		return out
	}
	tests := []struct {
		name  string
		query url.Values
		want  []string
	}{
		{"default limit", url.Values{"merchant_reference": {"many"}}, newest(24, 10)},
		{"limit", url.Values{"merchant_reference": {"many"}, "limit": {"3"}}, newest(24, 3)},
		{"limit 100", url.Values{"merchant_reference": {"many"}, "limit": {"100"}}, newest(24, 25)},
		{"starting_after", url.Values{"merchant_reference": {"many"}, "limit": {"5"}, "starting_after": {ids[20]}}, newest(19, 5)},
		{"last page", url.Values{"merchant_reference": {"many"}, "limit": {"10"}, "starting_after": {ids[3]}}, newest(2, 3)},
		{"after the oldest", url.Values{"merchant_reference": {"many"}, "starting_after": {ids[0]}}, nil},
		{"other reference", url.Values{"merchant_reference": {"other"}}, []string{other.ID}},
		{"unknown reference", url.Values{"merchant_reference": {"none"}}, nil},
		{"no filter", url.Values{"limit": {"2"}}, []string{other.ID, ids[24]}},
		{"no filter, starting_after", url.Values{"limit": {"2"}, "starting_after": {other.ID}}, newest(24, 2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ids2(list(t, tt.query.Encode()))
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("got %v\nwant %v", got, tt.want)
			}
		})
	}
	t.Run("empty list is []", func(t *testing.T) {
		r := a.do(http.MethodGet, "/v1/transactions?merchant_reference=none", nil, nil)
		if strings.TrimSpace(string(r.body)) != "[]" {
			t.Errorf("body %q", r.body)
		}
	})
	for _, q := range []string{"limit=0", "limit=101", "limit=x", "merchant_reference=many&starting_after=" + other.ID, "starting_after=T12345678.nope"} {
		t.Run("bad "+q, func(t *testing.T) {
			r := a.do(http.MethodGet, "/v1/transactions?"+q, nil, nil)
			if r.status != http.StatusBadRequest || r.errorCode(t) != "INVALID_REQUEST" {
				t.Errorf("%d %s", r.status, r.body)
			}
		})
	}
	if c := a.sb.Counters(); c.TransactionLists < int64(len(tests)) || c.TransactionGets != 2 {
		t.Errorf("counters %+v", c)
	}
}

func TestRouting(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	a.login()
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/v1/sessions/pay", http.StatusMethodNotAllowed},
		{http.MethodPost, "/v1/transactions", http.StatusMethodNotAllowed},
		{http.MethodGet, "/v1/accounts/T12345678/auth/token", http.StatusMethodNotAllowed},
		{http.MethodGet, "/v1/nope", http.StatusNotFound},
		{http.MethodGet, "/v1/transactions/a/b", http.StatusNotFound},
		{http.MethodGet, "/", http.StatusNotFound},
		{http.MethodGet, dinterotest.AdminPrefix + "nope", http.StatusNotFound},
		{http.MethodDelete, dinterotest.AdminPrefix + "ledger", http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := a.do(tt.method, tt.path, nil, nil)
			if r.status != tt.want {
				t.Errorf("%d, want %d: %s", r.status, tt.want, r.body)
			}
			r.errorCode(t)
		})
	}
}
