package dintero

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// fallbackTokenTTL is assumed when a token response has no positive
// expires_in (the spec requires it; this only avoids a refresh storm).
const fallbackTokenTTL = time.Minute

// tokenCache holds the current access token.
type tokenCache struct {
	mu        sync.Mutex
	token     string
	refreshAt time.Time // fetch a new token from here on
	expiresAt time.Time
}

// get returns the cached token if it need not be refreshed yet at now.
func (tc *tokenCache) get(now time.Time) (string, bool) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.token == "" || !now.Before(tc.refreshAt) {
		return "", false
	}
	return tc.token, true
}

// current returns the cached token regardless of its age.
func (tc *tokenCache) current() string {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.token
}

func (tc *tokenCache) set(token string, refreshAt, expiresAt time.Time) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tc.token, tc.refreshAt, tc.expiresAt = token, refreshAt, expiresAt
}

// invalidate drops the cached token only if it is still old, so a 401 seen
// by a slow request does not discard a token another request just fetched.
func (tc *tokenCache) invalidate(old string) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.token == old {
		tc.token = ""
	}
}

// Token returns a valid bearer access token, fetching one if none is cached
// or the cached one is within RefreshBefore of its expiry. Concurrent
// callers share a single in-flight fetch. Useful as a readiness check; the
// returned string is a credential and must not be logged.
func (c *Client) Token(ctx context.Context) (string, error) {
	tok, e := c.token(ctx)
	if e != nil {
		return "", e
	}
	return tok, nil
}

func (c *Client) token(ctx context.Context) (string, *Error) {
	if tok, ok := c.tokens.get(c.now()); ok {
		return tok, nil
	}
	ch := c.flight.DoChan("token", func() (any, error) {
		// A fetch that finished just before this one started has already
		// filled the cache.
		if tok, ok := c.tokens.get(c.now()); ok {
			return tok, nil
		}
		// The fetch is shared, so it must not die with the first caller's
		// context; it is bounded by the retry budget instead.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx),
			c.cfg.Retry.MaxElapsedTime+c.cfg.Timeout)
		defer cancel()
		return c.fetchToken(fctx)
	})
	select {
	case <-ctx.Done():
		return "", &Error{Op: OpAuth, Kind: KindTransient, Err: ctx.Err()}
	case r := <-ch:
		if r.Err != nil {
			var e *Error
			if errors.As(r.Err, &e) {
				return "", e
			}
			return "", &Error{Op: OpAuth, Kind: KindTransient, Err: r.Err}
		}
		return r.Val.(string), nil
	}
}

// fetchToken requests a new access token and caches it.
func (c *Client) fetchToken(ctx context.Context) (string, error) {
	h := c.baseHeaders()
	h.Set("Content-Type", "application/json")
	issued := c.now()
	res, err := c.do(ctx, &request{
		op:     OpAuth,
		method: http.MethodPost,
		url:    c.tokenURL,
		header: h,
		body:   c.tokenBody,
		basic:  true,
	})
	if err != nil {
		return "", err
	}
	var at AccessToken
	if err := json.Unmarshal(res.body, &at); err != nil {
		return "", &Error{Op: OpAuth, Kind: KindAuth, StatusCode: res.status, RequestID: res.requestID,
			Err: fmt.Errorf("decoding token response: %w", err)}
	}
	if at.AccessToken == "" {
		return "", &Error{Op: OpAuth, Kind: KindAuth, StatusCode: res.status, RequestID: res.requestID,
			Message: "token response has no access_token"}
	}
	if at.TokenType != "" && !strings.EqualFold(at.TokenType, "Bearer") {
		c.log.LogAttrs(ctx, slog.LevelWarn, "dintero token type is not Bearer; using it as a bearer token",
			slog.String("token_type", at.TokenType))
	}
	ttl := time.Duration(at.ExpiresIn) * time.Second
	if ttl <= 0 {
		c.log.LogAttrs(ctx, slog.LevelWarn, "dintero token response without positive expires_in",
			slog.Duration("assumed_ttl", fallbackTokenTTL))
		ttl = fallbackTokenTTL
	}
	before := c.cfg.RefreshBefore
	if before == 0 {
		before = min(defaultMaxRefreshBefore, ttl/2)
	}
	before = min(before, ttl/2)
	expiresAt := issued.Add(ttl)
	c.tokens.set(at.AccessToken, expiresAt.Add(-before), expiresAt)
	c.log.LogAttrs(ctx, slog.LevelDebug, "dintero access token fetched",
		slog.Duration("expires_in", ttl), slog.Duration("refresh_before", before))
	return at.AccessToken, nil
}
