package dintero

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"time"
)

const (
	// maxResponseBody caps how much of a response body is read and decoded.
	maxResponseBody = 4 << 20
	// maxDrain bounds how much of an unread body is discarded so that the
	// connection can be reused.
	maxDrain = 64 << 10
	// maxMessageLen caps Error.Message.
	maxMessageLen = 512
)

var errResponseTooLarge = fmt.Errorf("response body exceeds %d bytes", maxResponseBody)

// errAttemptTimeout is the cancel cause of an attempt that ran out of
// Config.Timeout. It matches context.DeadlineExceeded with errors.Is.
var errAttemptTimeout error = attemptTimeoutError{}

type attemptTimeoutError struct{}

func (attemptTimeoutError) Error() string        { return "attempt timed out" }
func (attemptTimeoutError) Timeout() bool        { return true }
func (attemptTimeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// request is one logical API call; attempt builds a fresh *http.Request
// from it every time.
type request struct {
	op     string
	method string
	url    string
	header http.Header
	body   []byte
	bearer bool // send the cached access token
	basic  bool // send client credentials (token endpoint)
	// creates: the call makes something at Dintero (a charge, a session),
	// so once sent its failures are unknown outcomes, never repeated.
	creates bool
	// fence, when set, is asked right before each attempt is sent; an
	// error ends the call with nothing sent (see WithFence).
	fence func(context.Context) error
}

// response is a fully read, size-capped HTTP response.
type response struct {
	status    int
	header    http.Header
	body      []byte
	requestID string
}

// attempt performs one HTTP exchange with its own deadline and classifies
// its failure. A nil *Error means a 2xx response whose body was read.
func (c *Client) attempt(ctx context.Context, rq *request, token string, n int) (*response, *Error) {
	if c.cfg.Limiter != nil {
		if err := c.cfg.Limiter.Wait(ctx, rq.op); err != nil {
			return nil, &Error{Op: rq.op, Kind: KindTransient, Err: fmt.Errorf("waiting for the rate limit: %w", err), fenced: true}
		}
	}
	if rq.fence != nil {
		if err := rq.fence(ctx); err != nil {
			return nil, &Error{Op: rq.op, Kind: KindTransient, Err: err, fenced: true}
		}
	}
	actx, cancel := context.WithTimeoutCause(ctx, c.cfg.Timeout, errAttemptTimeout)
	defer cancel()

	var wrote atomic.Bool
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				wrote.Store(true)
			}
		},
	})

	var body io.Reader
	if rq.body != nil {
		body = bytes.NewReader(rq.body) // sets ContentLength and GetBody
	}
	req, err := http.NewRequestWithContext(actx, rq.method, rq.url, body)
	if err != nil {
		return nil, &Error{Op: rq.op, Kind: KindPermanent, Err: fmt.Errorf("building request: %w", err)}
	}
	for k, v := range rq.header {
		req.Header[k] = v
	}
	for k, v := range traceHeaders(ctx) {
		req.Header[http.CanonicalHeaderKey(k)] = v
	}
	switch {
	case rq.basic:
		req.SetBasicAuth(c.cfg.ClientID, c.cfg.ClientSecret)
	case rq.bearer:
		req.Header.Set("Authorization", "Bearer "+token)
	}

	start := time.Now()
	resp, err := c.http.Do(req) //nolint:bodyclose // drainClose(resp.Body) below drains and closes it
	if err != nil {
		e := c.transportError(ctx, actx, rq, err, wrote.Load())
		c.logAttempt(ctx, rq, n, start, 0, "", e)
		return nil, e
	}
	defer drainClose(resp.Body)

	res := &response{status: resp.StatusCode, header: resp.Header, requestID: requestID(resp.Header)}
	res.body, err = readCapped(resp.Body, resp.ContentLength)
	if err != nil {
		e := c.readError(ctx, actx, rq, res, err)
		c.logAttempt(ctx, rq, n, start, res.status, res.requestID, e)
		return nil, e
	}
	var e *Error
	if res.status < 200 || res.status > 299 {
		e = c.statusError(rq, res, token)
	}
	c.logAttempt(ctx, rq, n, start, res.status, res.requestID, e)
	return res, e
}

// transportError classifies a failure without an HTTP response.
func (c *Client) transportError(parent, actx context.Context, rq *request, err error, wrote bool) *Error {
	e := &Error{Op: rq.op, Kind: KindTransient, Err: err}
	if parent.Err() == nil && errors.Is(context.Cause(actx), errAttemptTimeout) {
		e.Err = fmt.Errorf("no response within %s: %w", c.cfg.Timeout, err)
	}
	if rq.creates && wrote && !isDialError(err) {
		// The request reached the wire: Dintero may have charged the card,
		// or made the session.
		e.Kind = KindUnknownOutcome
	}
	return e
}

// readError classifies a failure while reading a response body.
func (c *Client) readError(parent, actx context.Context, rq *request, res *response, err error) *Error {
	e := &Error{Op: rq.op, StatusCode: res.status, RequestID: res.requestID, Err: err}
	if parent.Err() == nil && errors.Is(context.Cause(actx), errAttemptTimeout) {
		e.Err = fmt.Errorf("no complete response within %s: %w", c.cfg.Timeout, err)
	}
	switch {
	case res.status >= 200 && res.status <= 299 && rq.creates:
		e.Kind = KindUnknownOutcome
	case res.status >= 200 && res.status <= 299 && errors.Is(err, errResponseTooLarge):
		e.Kind = KindPermanent // repeating the call returns the same body
	case res.status >= 200 && res.status <= 299:
		e.Kind = KindTransient
	default:
		// The status alone decides; the body only adds detail.
		se := c.statusError(rq, &response{status: res.status, header: res.header, requestID: res.requestID}, "")
		se.Err = err
		return se
	}
	return e
}

// statusError classifies a non-2xx response.
func (c *Client) statusError(rq *request, res *response, token string) *Error {
	e := &Error{Op: rq.op, StatusCode: res.status, RequestID: res.requestID,
		RetryAfter: parseRetryAfter(res.header.Get("Retry-After"), c.now())}
	var eb ErrorBody
	if len(res.body) > 0 && json.Unmarshal(res.body, &eb) == nil {
		e.Code = scrubCode(eb.Error.Code)
		e.Message = c.scrub(eb.Error.Message, rq.body, token)
	}
	s := res.status
	switch {
	case s == http.StatusTooManyRequests:
		e.Kind = KindTransient
	case s == http.StatusUnauthorized:
		e.Kind = KindAuth // an API 401 is retried once with a new token first
	case rq.op == OpAuth && s >= 400 && s <= 499:
		e.Kind = KindAuth
	case s >= 500 && rq.creates:
		e.Kind = KindUnknownOutcome
	case s >= 500:
		e.Kind = KindTransient
	case s == http.StatusBadRequest || s == http.StatusUnprocessableEntity:
		e.Kind = KindInvalid
	case s >= 400:
		e.Kind = KindPermanent
	case rq.creates:
		// 1xx/3xx the HTTP client did not resolve: nothing says whether
		// the charge (or session) was made.
		e.Kind = KindUnknownOutcome
	default:
		e.Kind = KindPermanent
	}
	return e
}

// isDialError reports whether err happened before a connection existed
// (DNS, connection refused, dial timeout), so nothing was sent.
func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// readCapped reads a response body of at most maxResponseBody bytes. When
// the server announced the length (size >= 0) the buffer is allocated once,
// at that size, plus one byte to notice a body longer than announced.
func readCapped(r io.Reader, size int64) ([]byte, error) {
	if size >= 0 && size <= maxResponseBody {
		b := make([]byte, 0, size+1)
		for {
			n, err := r.Read(b[len(b):cap(b)])
			b = b[:len(b)+n]
			if err == io.EOF {
				return b, nil
			}
			if err != nil {
				return nil, err
			}
			if len(b) == cap(b) { // longer than announced: read the rest the slow way
				rest, err := readCapped(r, -1)
				if err != nil {
					return nil, err
				}
				if len(b)+len(rest) > maxResponseBody {
					return nil, errResponseTooLarge
				}
				return append(b, rest...), nil
			}
		}
	}
	b, err := io.ReadAll(io.LimitReader(r, maxResponseBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxResponseBody {
		return nil, errResponseTooLarge
	}
	return b, nil
}

func drainClose(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, maxDrain)
	_ = body.Close()
}

func requestID(h http.Header) string {
	for _, k := range []string{"Request-Id", "X-Request-Id"} {
		if v := h.Get(k); v != "" {
			return truncate(v, 128)
		}
	}
	return ""
}

func (c *Client) logAttempt(ctx context.Context, rq *request, n int, start time.Time, status int, reqID string, e *Error) {
	if c.cfg.Observe != nil {
		c.cfg.Observe(rq.op, status, time.Since(start))
	}
	if !c.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := []slog.Attr{
		slog.String("op", rq.op),
		slog.String("method", rq.method),
		slog.String("path", pathOf(rq.url)),
		slog.Int("attempt", n),
		slog.Int("status", status),
		slog.Duration("duration", time.Since(start)),
	}
	if reqID != "" {
		attrs = append(attrs, slog.String("request_id", reqID))
	}
	if e != nil {
		attrs = append(attrs, slog.String("kind", e.Kind.String()), slog.String("error", e.Error()))
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "dintero request", attrs...)
}

// pathOf strips scheme, host and query from a URL for logging.
func pathOf(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
		if j := strings.IndexByte(u, '/'); j >= 0 {
			u = u[j:]
		}
	}
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u = u[:i]
	}
	return u
}
