package dintero

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// do runs rq with retries of transient errors: exponential backoff with
// jitter (a fresh ExponentialBackOff per call; it is not thread-safe),
// bounded by RetryConfig, with a 429's Retry-After replacing the computed
// wait. Non-transient errors, and errors of a nested operation (a token
// fetch has already been retried by its own loop), end the call at once.
func (c *Client) do(ctx context.Context, rq *request) (*response, error) {
	if err := ctx.Err(); err != nil {
		return nil, &Error{Op: rq.op, Kind: KindTransient, Err: err}
	}
	rc := c.cfg.Retry
	start := time.Now()
	exp := &backoff.ExponentialBackOff{
		InitialInterval:     rc.InitialInterval,
		RandomizationFactor: backoff.DefaultRandomizationFactor,
		Multiplier:          2,
		MaxInterval:         rc.MaxInterval,
		MaxElapsedTime:      rc.MaxElapsedTime,
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	exp.Reset()
	bo := backoff.WithContext(backoff.WithMaxRetries(exp, uint64(rc.MaxAttempts-1)), ctx)

	for n := 1; ; n++ {
		res, e := c.attemptWithAuth(ctx, rq, n)
		if e == nil {
			return res, nil
		}
		if e.Kind == KindUnknownOutcome {
			c.logUnknown(ctx, e)
		}
		if e.Op != rq.op || e.Kind != KindTransient || e.fenced {
			return nil, e
		}
		if err := ctx.Err(); err != nil {
			return nil, withContextErr(e, err)
		}
		wait := bo.NextBackOff()
		if err := ctx.Err(); err != nil {
			return nil, withContextErr(e, err)
		}
		if wait == backoff.Stop {
			c.logGiveUp(ctx, rq, n, e, "retry budget exhausted")
			return nil, e
		}
		if e.RetryAfter > 0 {
			if e.RetryAfter > rc.MaxRetryAfter || time.Since(start)+e.RetryAfter > rc.MaxElapsedTime {
				c.logGiveUp(ctx, rq, n, e, "Retry-After beyond budget")
				return nil, e
			}
			wait = e.RetryAfter
		}
		c.log.LogAttrs(ctx, slog.LevelDebug, "dintero retrying",
			slog.String("op", rq.op), slog.Int("attempt", n), slog.Duration("wait", wait),
			slog.String("error", e.Error()))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, withContextErr(e, ctx.Err())
		case <-t.C:
		}
	}
}

// attemptWithAuth runs one attempt with the cached access token. A 401
// invalidates that token (only if it is still the cached one), fetches a
// new one and repeats the attempt once; a second 401 is KindAuth.
func (c *Client) attemptWithAuth(ctx context.Context, rq *request, n int) (*response, *Error) {
	if !rq.bearer {
		return c.attempt(ctx, rq, "", n)
	}
	tok, e := c.token(ctx)
	if e != nil {
		return nil, e
	}
	res, e := c.attempt(ctx, rq, tok, n)
	if e == nil || e.StatusCode != http.StatusUnauthorized {
		return res, e
	}
	c.tokens.invalidate(tok)
	c.log.LogAttrs(ctx, slog.LevelDebug, "dintero access token refused; refreshing",
		slog.String("op", rq.op), slog.String("request_id", e.RequestID))
	tok, e = c.token(ctx)
	if e != nil {
		return nil, e
	}
	res, e = c.attempt(ctx, rq, tok, n)
	if e != nil && e.StatusCode == http.StatusUnauthorized {
		e.Kind = KindAuth
	}
	return res, e
}

// withContextErr returns e, or a copy whose cause also records that the
// caller's context ended, so errors.Is(err, context.Canceled) holds.
func withContextErr(e *Error, ctxErr error) *Error {
	if errors.Is(e, ctxErr) {
		return e
	}
	cp := *e
	if cp.Err == nil {
		cp.Err = fmt.Errorf("waiting to retry: %w", ctxErr)
	} else {
		cp.Err = fmt.Errorf("%w; waiting to retry: %w", cp.Err, ctxErr)
	}
	return &cp
}

// parseRetryAfter parses a Retry-After value: delay seconds or an HTTP
// date. It returns 0 for an absent, invalid or past value.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(24*time.Hour/time.Second) {
			secs = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

func (c *Client) logGiveUp(ctx context.Context, rq *request, n int, e *Error, why string) {
	c.log.LogAttrs(ctx, slog.LevelDebug, "dintero giving up",
		slog.String("op", rq.op), slog.Int("attempts", n), slog.String("reason", why),
		slog.String("error", e.Error()))
}

func (c *Client) logUnknown(ctx context.Context, e *Error) {
	msg := "dintero payment outcome unknown; look it up by merchant_reference"
	if e.Op == OpCreateSession {
		msg = "dintero session creation outcome unknown; Dintero may hold a session for the merchant_reference"
	}
	c.log.LogAttrs(ctx, slog.LevelWarn, msg,
		slog.String("op", e.Op), slog.Int("status", e.StatusCode), slog.String("request_id", e.RequestID),
		slog.String("error", e.Error()))
}
