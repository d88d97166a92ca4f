package dinterotest

import (
	"net/http"
	"strings"
)

type adminRoute struct {
	Method      string `json:"method"`
	Path        string `json:"path"`
	Description string `json:"description"`
}

type testCard struct {
	TokenPrefix string `json:"token_prefix"`
	Outcome     string `json:"outcome"`
}

func adminRoutes() []adminRoute {
	return []adminRoute{
		{http.MethodGet, AdminPrefix, "this index"},
		{http.MethodGet, AdminPrefix + "ledger", "every authorization granted by /v1/sessions/pay, in order"},
		{http.MethodGet, AdminPrefix + "transactions", "every transaction, declined ones included, in order"},
		{http.MethodGet, AdminPrefix + "counters", "request and outcome counters"},
		{http.MethodGet, AdminPrefix + "sessions", "every session (kind, saved card types, never tokens)"},
		{http.MethodGet, AdminPrefix + "refusals", "every pay call refused as a duplicate by a strict toggle, in order"},
		{http.MethodGet, AdminPrefix + "faults", "the injected faults"},
		{http.MethodPut, AdminPrefix + "faults", "replace the injected faults (JSON, durations as \"150ms\", rates in [0,1])"},
		{http.MethodPost, AdminPrefix + "reset", "clear ledger, transactions, sessions and counters (faults and tokens stay)"},
		{http.MethodPost, AdminPrefix + "expire-tokens", "invalidate every issued access token"},
	}
}

func testCards() []testCard {
	return []testCard{
		{TokenAuthorized, "AUTHORIZED (CAPTURED with session.configuration.auto_capture)"},
		{TokenInsufficientFunds, "HTTP 200 FAILED, INSUFFICIENT_FUNDS, RETRY_AFTER_DELAY (retry_after +24h)"},
		{TokenDoNotRetry, "HTTP 200 DECLINED, DECLINED, DO_NOT_RETRY"},
		{TokenExpiredCard, "HTTP 200 FAILED, EXPIRED_CARD, DO_NOT_RETRY"},
		{"(anything else)", "HTTP 400 INVALID_PAYMENT_TOKEN, nothing recorded"},
	}
}

type adminIndex struct {
	Service        string       `json:"service"`
	AccountID      string       `json:"account_id"`
	ClientID       string       `json:"client_id"`
	ClientSecret   string       `json:"client_secret"`
	TokenURL       string       `json:"token_url"`
	Audience       string       `json:"audience"`
	TestCards      []testCard   `json:"test_cards"`
	FeatureToggles []string     `json:"feature_toggles"`
	Admin          []adminRoute `json:"admin"`
}

func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, strings.TrimSuffix(AdminPrefix, "/")), "/")
	allow := func(methods ...string) bool {
		for _, m := range methods {
			if r.Method == m {
				return true
			}
		}
		w.Header().Set("Allow", strings.Join(methods, ", "))
		writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "method not allowed", nil)
		return false
	}
	switch name {
	case "":
		if allow(http.MethodGet) {
			writeJSON(w, http.StatusOK, adminIndex{
				Service:        "dintero-sandbox",
				AccountID:      s.opts.AccountID,
				ClientID:       s.opts.ClientID,
				ClientSecret:   s.opts.ClientSecret,
				TokenURL:       baseURL(r) + "/v1/accounts/" + s.opts.AccountID + "/auth/token",
				Audience:       s.audience,
				TestCards:      testCards(),
				FeatureToggles: []string{"strict-merchant-reference", "strict-success-merchant-reference"},
				Admin:          adminRoutes(),
			})
		}
	case "ledger":
		if allow(http.MethodGet) {
			writeJSON(w, http.StatusOK, s.Ledger())
		}
	case "transactions":
		if allow(http.MethodGet) {
			writeJSON(w, http.StatusOK, s.Transactions())
		}
	case "counters":
		if allow(http.MethodGet) {
			writeJSON(w, http.StatusOK, s.Counters())
		}
	case "faults":
		if !allow(http.MethodGet, http.MethodPut) {
			return
		}
		if r.Method == http.MethodPut {
			b, err := readBody(w, r)
			var f Faults
			if err == nil {
				err = decodeJSON(b, &f)
			}
			if err == nil {
				err = f.Validate()
			}
			if err != nil {
				writeError(w, http.StatusBadRequest, "INVALID_REQUEST", err.Error(), nil)
				return
			}
			s.SetFaults(f)
		}
		writeJSON(w, http.StatusOK, s.Faults())
	case "reset":
		if allow(http.MethodPost) {
			s.Reset()
			writeJSON(w, http.StatusOK, map[string]string{"status": "reset"})
		}
	case "expire-tokens":
		if allow(http.MethodPost) {
			s.ExpireTokens()
			writeJSON(w, http.StatusOK, map[string]string{"status": "tokens expired"})
		}
	default:
		writeError(w, http.StatusNotFound, "NOT_FOUND", "no such sandbox endpoint; see "+AdminPrefix, nil)
	}
}
