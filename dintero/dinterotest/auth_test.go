package dinterotest_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
)

func TestToken(t *testing.T) {
	good := basic(dinterotest.DefaultClientID, dinterotest.DefaultClientSecret)
	aid := dinterotest.DefaultAccountID
	tests := []struct {
		name     string
		path     string
		body     any
		header   map[string]string
		wantCode int
	}{
		{"good", "/v1/accounts/" + aid + "/auth/token", tokenBody(aid), good, http.StatusOK},
		{"wrong secret", "/v1/accounts/" + aid + "/auth/token", tokenBody(aid), basic(dinterotest.DefaultClientID, "nope"), http.StatusUnauthorized},
		{"wrong client id", "/v1/accounts/" + aid + "/auth/token", tokenBody(aid), basic("nope", dinterotest.DefaultClientSecret), http.StatusUnauthorized},
		{"no credentials", "/v1/accounts/" + aid + "/auth/token", tokenBody(aid), nil, http.StatusUnauthorized},
		{"other account in path", "/v1/accounts/T87654321/auth/token", tokenBody("T87654321"), good, http.StatusUnauthorized},
		{"wrong audience", "/v1/accounts/" + aid + "/auth/token", tokenBody("T87654321"), good, http.StatusBadRequest},
		{"checkout host audience", "/v1/accounts/" + aid + "/auth/token",
			map[string]string{"grant_type": "client_credentials", "audience": "https://checkout.dintero.com/v1/accounts/" + aid}, good, http.StatusBadRequest},
		{"missing audience", "/v1/accounts/" + aid + "/auth/token", map[string]string{"grant_type": "client_credentials"}, good, http.StatusBadRequest},
		{"missing grant_type", "/v1/accounts/" + aid + "/auth/token", map[string]string{"audience": "https://api.dintero.com/v1/accounts/" + aid}, good, http.StatusBadRequest},
		{"wrong grant_type", "/v1/accounts/" + aid + "/auth/token",
			map[string]string{"grant_type": "password", "audience": "https://api.dintero.com/v1/accounts/" + aid}, good, http.StatusBadRequest},
		{"not json", "/v1/accounts/" + aid + "/auth/token", "grant_type=client_credentials", good, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAPI(t, dinterotest.Options{TokenTTL: 90 * time.Minute})
			r := a.do(http.MethodPost, tt.path, tt.body, tt.header)
			if r.status != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", r.status, tt.wantCode, r.body)
			}
			c := a.sb.Counters()
			if c.TokenRequests != 1 {
				t.Errorf("TokenRequests = %d, want 1", c.TokenRequests)
			}
			if tt.wantCode != http.StatusOK {
				code := r.errorCode(t)
				if tt.wantCode == http.StatusUnauthorized && (code != "ACCESS_FORBIDDEN" || c.Unauthorized != 1) {
					t.Errorf("code %q, Unauthorized %d", code, c.Unauthorized)
				}
				if tt.wantCode == http.StatusBadRequest && (code != "INVALID_REQUEST" || c.InvalidRequests != 1) {
					t.Errorf("code %q, InvalidRequests %d", code, c.InvalidRequests)
				}
				if c.TokensIssued != 0 {
					t.Errorf("TokensIssued = %d", c.TokensIssued)
				}
				return
			}
			var at dintero.AccessToken
			r.decode(t, &at)
			if len(at.AccessToken) < 40 || at.TokenType != "Bearer" || at.ExpiresIn != 5400 {
				t.Errorf("token %+v", at)
			}
			if c.TokensIssued != 1 {
				t.Errorf("TokensIssued = %d", c.TokensIssued)
			}
			// The token works.
			a.token = at.AccessToken
			if r := a.do(http.MethodGet, "/v1/transactions", nil, nil); r.status != http.StatusOK {
				t.Errorf("with token: %d %s", r.status, r.body)
			}
		})
	}
}

func TestTokensAreDistinct(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	first := a.login()
	if second := a.login(); second == first {
		t.Fatal("two logins returned the same token")
	}
}

func TestBearerRequired(t *testing.T) {
	tests := []struct {
		name string
		auth func(a *api) string // Authorization header
	}{
		{"none", func(*api) string { return "" }},
		{"unknown token", func(*api) string { return "Bearer not-a-token" }},
		{"basic instead of bearer", func(*api) string {
			return basic(dinterotest.DefaultClientID, dinterotest.DefaultClientSecret)["Authorization"]
		}},
		{"expired by ExpireTokens", func(a *api) string {
			tok := a.login()
			a.sb.ExpireTokens()
			return "Bearer " + tok
		}},
		{"expired by admin", func(a *api) string {
			tok := a.login()
			if r := a.do(http.MethodPost, dinterotest.AdminPrefix+"expire-tokens", nil, nil); r.status != http.StatusOK {
				a.t.Fatalf("expire-tokens: %d", r.status)
			}
			return "Bearer " + tok
		}},
	}
	paths := []struct{ method, path string }{
		{http.MethodPost, "/v1/sessions/pay"},
		{http.MethodPost, "/v1/sessions-profile"},
		{http.MethodGet, "/v1/sessions/T12345678.abc"},
		{http.MethodGet, "/v1/transactions/T12345678.abc"},
		{http.MethodGet, "/v1/transactions?merchant_reference=x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAPI(t, dinterotest.Options{})
			h := map[string]string{"Authorization": tt.auth(a)}
			if h["Authorization"] == "" {
				h = nil
			}
			a.token = "" // only the header above
			for _, p := range paths {
				r := a.do(p.method, p.path, `{}`, h)
				if r.status != http.StatusUnauthorized || r.errorCode(t) != "ACCESS_FORBIDDEN" {
					t.Errorf("%s %s: %d %s", p.method, p.path, r.status, r.body)
				}
			}
			if got := a.sb.Counters().Unauthorized; got != int64(len(paths)) {
				t.Errorf("Unauthorized = %d, want %d", got, len(paths))
			}
			// A fresh token works again.
			a.login()
			if r := a.do(http.MethodGet, "/v1/transactions", nil, nil); r.status != http.StatusOK {
				t.Errorf("after new login: %d", r.status)
			}
		})
	}
}

func TestTokenTTL(t *testing.T) {
	a := newAPI(t, dinterotest.Options{TokenTTL: time.Nanosecond})
	r := a.do(http.MethodPost, a.tokenPath(), tokenBody(dinterotest.DefaultAccountID),
		basic(dinterotest.DefaultClientID, dinterotest.DefaultClientSecret))
	var at dintero.AccessToken
	r.decode(t, &at)
	if at.ExpiresIn != 1 {
		t.Errorf("expires_in = %d, want the minimum 1", at.ExpiresIn)
	}
	a.token = at.AccessToken
	if r := a.do(http.MethodGet, "/v1/transactions", nil, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("expired token: %d, want 401", r.status)
	}
}
