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

// TestCard describes one test card for people: the token prefix and what
// a pay call with it does.
type TestCard struct {
	TokenPrefix string `json:"token_prefix"`
	Outcome     string `json:"outcome"`
}

func adminRoutes() []adminRoute {
	return []adminRoute{
		{http.MethodGet, AdminPrefix, "this index"},
		{http.MethodGet, AdminPrefix + "ledger", "every authorization granted by /v1/sessions/pay, in order"},
		{http.MethodGet, AdminPrefix + "transactions", "every transaction, declined ones included, in order"},
		{http.MethodGet, AdminPrefix + "counters", "request and outcome counters"},
		{http.MethodGet, AdminPrefix + "sessions", "every session (kind, state open|paid|cancelled, saved card types, never tokens)"},
		{http.MethodGet, AdminPrefix + "refusals", "every pay call refused as a duplicate by a strict toggle, in order"},
		{http.MethodGet, AdminPrefix + "faults", "the injected faults"},
		{http.MethodPut, AdminPrefix + "faults", "replace the injected faults (JSON, durations as \"150ms\", rates in [0,1])"},
		{http.MethodGet, AdminPrefix + "outage", "the outage last set and whether it is in effect"},
		{http.MethodPut, AdminPrefix + "outage", "start an outage now (JSON: duration \"2m\", answer hang|502|504, refuse_rate in [0,1]); duration 0 ends it"},
		{http.MethodDelete, AdminPrefix + "outage", "end the outage"},
		{http.MethodPost, AdminPrefix + "reset", "clear ledger, transactions, sessions and counters (faults, outage and tokens stay)"},
		{http.MethodPost, AdminPrefix + "expire-tokens", "invalidate every issued access token"},
	}
}

// TestCards lists the test cards, as the admin index and the binary's
// banner show them.
func TestCards() []TestCard {
	out := make([]TestCard, 0, len(cardDefs)+2)
	for _, d := range cardDefs {
		out = append(out, TestCard{d.prefix, d.doc})
	}
	return append(out,
		TestCard{"(after any prefix above) " + BrandVisa + " / " + BrandMastercard, `card.brand "Visa" (the default) / "Mastercard"`},
		TestCard{"(anything else)", "HTTP 400 INVALID_PAYMENT_TOKEN, nothing recorded"})
}

type adminIndex struct {
	Service        string       `json:"service"`
	AccountID      string       `json:"account_id"`
	ClientID       string       `json:"client_id"`
	ClientSecret   string       `json:"client_secret"`
	TokenURL       string       `json:"token_url"`
	Audience       string       `json:"audience"`
	TestCards      []TestCard   `json:"test_cards"`
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
				TestCards:      TestCards(),
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
	case "outage":
		if !allow(http.MethodGet, http.MethodPut, http.MethodDelete) {
			return
		}
		switch r.Method {
		case http.MethodPut:
			b, err := readBody(w, r)
			var o Outage
			if err == nil {
				err = decodeJSON(b, &o)
			}
			if err == nil {
				err = o.Validate()
			}
			if err != nil {
				writeError(w, http.StatusBadRequest, "INVALID_REQUEST", err.Error(), nil)
				return
			}
			s.SetOutage(o)
		case http.MethodDelete:
			s.EndOutage()
		}
		writeJSON(w, http.StatusOK, s.OutageStatus())
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
