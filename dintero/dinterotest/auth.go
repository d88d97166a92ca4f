package dinterotest

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
	"time"

	"github.com/payworker/payworker/dintero"
)

// pruneTokensAbove is the token-map size above which issuing a token first
// drops the expired ones.
const pruneTokensAbove = 1024

// handleToken serves POST /v1/accounts/{aid}/auth/token.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request, aid string) {
	id, secret, ok := r.BasicAuth()
	if !ok || aid != s.opts.AccountID ||
		subtle.ConstantTimeCompare([]byte(id), []byte(s.opts.ClientID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.ClientSecret)) != 1 {
		s.c.unauthorized.Add(1)
		writeError(w, http.StatusUnauthorized, "ACCESS_FORBIDDEN", "invalid client credentials for this account", nil)
		return
	}
	b, err := readBody(w, r)
	var req struct {
		GrantType *string `json:"grant_type"`
		Audience  *string `json:"audience"`
	}
	if err == nil {
		err = decodeJSON(b, &req)
	}
	if err != nil {
		s.c.invalidRequests.Add(1)
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", decodeErrorMessage(err), nil)
		return
	}
	var errs []any
	switch {
	case req.GrantType == nil:
		errs = append(errs, fieldError{"grant_type", "required"})
	case *req.GrantType != "client_credentials":
		errs = append(errs, fieldError{"grant_type", "must be client_credentials"})
	}
	switch {
	case req.Audience == nil:
		errs = append(errs, fieldError{"audience", "required"})
	case *req.Audience != s.audience:
		errs = append(errs, fieldError{"audience", "must be " + s.audience})
	}
	if len(errs) > 0 {
		s.c.invalidRequests.Add(1)
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "invalid token request", errs)
		return
	}

	tok := newAccessToken()
	now := time.Now()
	s.tokMu.Lock()
	if len(s.tokens) > pruneTokensAbove {
		for t, exp := range s.tokens {
			if !now.Before(exp) {
				delete(s.tokens, t)
			}
		}
	}
	s.tokens[tok] = now.Add(s.opts.TokenTTL)
	s.tokMu.Unlock()
	s.c.tokensIssued.Add(1)

	secs := int64((s.opts.TokenTTL + time.Second - 1) / time.Second)
	writeJSON(w, http.StatusOK, dintero.AccessToken{AccessToken: tok, TokenType: "Bearer", ExpiresIn: max(secs, 1)})
}

// bearerValid reports whether r carries a known, unexpired access token.
func (s *Server) bearerValid(r *http.Request) bool {
	a := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(a) <= len(prefix) || !strings.EqualFold(a[:len(prefix)], prefix) {
		return false
	}
	s.tokMu.RLock()
	exp, ok := s.tokens[a[len(prefix):]]
	s.tokMu.RUnlock()
	return ok && time.Now().Before(exp)
}

func newAccessToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
