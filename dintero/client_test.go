package dintero

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// callFn runs one client operation and returns its error.
type callFn func(ctx context.Context, c *Client) error

var ops = map[string]callFn{
	OpPay: func(ctx context.Context, c *Client) error {
		_, err := c.PaySession(ctx, payBody)
		return err
	},
	OpCreateSession: func(ctx context.Context, c *Client) error {
		_, err := c.CreateSessionProfile(ctx, []byte(`{"profile_id":"default"}`))
		return err
	},
	OpCancelSession: func(ctx context.Context, c *Client) error {
		_, err := c.CancelSession(ctx, "T12345678.s1")
		return err
	},
	OpListSessions: func(ctx context.Context, c *Client) error {
		_, err := c.SessionsByMerchantReference(ctx, "ref-1")
		return err
	},
	OpGetTransaction: func(ctx context.Context, c *Client) error {
		_, err := c.GetTransaction(ctx, "T12345678.abc")
		return err
	},
	OpListTransactions: func(ctx context.Context, c *Client) error {
		_, err := c.TransactionsByMerchantReference(ctx, "ref-1")
		return err
	},
}

func asError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *dintero.Error", err, err)
	}
	return e
}

type apiHandler = func(w http.ResponseWriter, r *http.Request, body []byte, n int64)

func answer(status int, code string) apiHandler {
	return func(w http.ResponseWriter, r *http.Request, _ []byte, _ int64) {
		writeErr(w, status, code, "message for "+code)
	}
}

func blockUntilClientGone(w http.ResponseWriter, r *http.Request, _ []byte, _ int64) {
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
}

func TestErrorKindMapping(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name       string
		op         string
		api        func(t *testing.T) apiHandler
		mod        func(*Config)
		wantKind   Kind
		wantStatus int
		wantCode   string
		wantCalls  int64 // API requests; MaxAttempts is 3
		check      func(t *testing.T, e *Error)
	}{
		{name: "pay 400", op: OpPay, wantKind: KindInvalid, wantStatus: 400, wantCode: "INVALID_REQUEST", wantCalls: 1},
		{name: "pay 403", op: OpPay, wantKind: KindPermanent, wantStatus: 403, wantCode: "FORBIDDEN", wantCalls: 1},
		{name: "pay 409", op: OpPay, wantKind: KindPermanent, wantStatus: 409, wantCode: "CONFLICT", wantCalls: 1},
		{name: "get 404", op: OpGetTransaction, wantKind: KindPermanent, wantStatus: 404, wantCode: "NOT_FOUND", wantCalls: 1},
		{name: "list 400", op: OpListTransactions, wantKind: KindInvalid, wantStatus: 400, wantCode: "BAD", wantCalls: 1},
		{name: "create 422", op: OpCreateSession, wantKind: KindInvalid, wantStatus: 422, wantCode: "UNPROCESSABLE", wantCalls: 1},
		{name: "pay 500 never retried", op: OpPay, wantKind: KindUnknownOutcome, wantStatus: 500, wantCode: "INTERNAL", wantCalls: 1},
		{name: "pay 502 never retried", op: OpPay, wantKind: KindUnknownOutcome, wantStatus: 502, wantCode: "BAD_GATEWAY", wantCalls: 1},
		{name: "pay 503 never retried", op: OpPay, wantKind: KindUnknownOutcome, wantStatus: 503, wantCode: "UNAVAILABLE", wantCalls: 1},
		{name: "get 500 retried", op: OpGetTransaction, wantKind: KindTransient, wantStatus: 500, wantCode: "INTERNAL", wantCalls: 3},
		{name: "list 503 retried", op: OpListTransactions, wantKind: KindTransient, wantStatus: 503, wantCode: "UNAVAILABLE", wantCalls: 3},
		{name: "create 500 never retried", op: OpCreateSession, wantKind: KindUnknownOutcome, wantStatus: 500, wantCode: "INTERNAL", wantCalls: 1},
		{name: "create 429 retried", op: OpCreateSession, wantKind: KindTransient, wantStatus: 429, wantCode: "TOO_MANY", wantCalls: 3},
		{name: "cancel 500 retried", op: OpCancelSession, wantKind: KindTransient, wantStatus: 500, wantCode: "INTERNAL", wantCalls: 3},
		{name: "cancel 400", op: OpCancelSession, wantKind: KindInvalid, wantStatus: 400, wantCode: "INVALID_REQUEST", wantCalls: 1},
		{name: "cancel 404", op: OpCancelSession, wantKind: KindPermanent, wantStatus: 404, wantCode: "NOT_FOUND", wantCalls: 1},
		{name: "list sessions 503 retried", op: OpListSessions, wantKind: KindTransient, wantStatus: 503, wantCode: "UNAVAILABLE", wantCalls: 3},
		{name: "pay 429 retried", op: OpPay, wantKind: KindTransient, wantStatus: 429, wantCode: "TOO_MANY", wantCalls: 3},
		{name: "get 429 retried", op: OpGetTransaction, wantKind: KindTransient, wantStatus: 429, wantCode: "TOO_MANY", wantCalls: 3},
		{
			name: "429 Retry-After seconds above cap", op: OpPay,
			api: func(t *testing.T) apiHandler {
				return func(w http.ResponseWriter, r *http.Request, _ []byte, _ int64) {
					w.Header().Set("Retry-After", "2")
					writeErr(w, 429, "TOO_MANY", "slow down")
				}
			},
			mod:      func(c *Config) { c.Retry.MaxRetryAfter = 500 * time.Millisecond },
			wantKind: KindTransient, wantStatus: 429, wantCode: "TOO_MANY", wantCalls: 1,
			check: func(t *testing.T, e *Error) {
				if e.RetryAfter != 2*time.Second {
					t.Errorf("RetryAfter = %v; want 2s", e.RetryAfter)
				}
			},
		},
		{
			name: "429 Retry-After HTTP date above cap", op: OpGetTransaction,
			api: func(t *testing.T) apiHandler {
				return func(w http.ResponseWriter, r *http.Request, _ []byte, _ int64) {
					w.Header().Set("Retry-After", now.Add(5*time.Second).UTC().Format(http.TimeFormat))
					writeErr(w, 429, "TOO_MANY", "slow down")
				}
			},
			mod:      func(c *Config) { c.Retry.MaxRetryAfter = 500 * time.Millisecond },
			wantKind: KindTransient, wantStatus: 429, wantCode: "TOO_MANY", wantCalls: 1,
			check: func(t *testing.T, e *Error) {
				if e.RetryAfter < 3*time.Second || e.RetryAfter > 5*time.Second {
					t.Errorf("RetryAfter = %v; want about 4-5s", e.RetryAfter)
				}
			},
		},
		{
			name: "429 Retry-After beyond remaining budget", op: OpPay,
			api: func(t *testing.T) apiHandler {
				return func(w http.ResponseWriter, r *http.Request, _ []byte, _ int64) {
					w.Header().Set("Retry-After", "3")
					writeErr(w, 429, "TOO_MANY", "slow down")
				}
			},
			mod:      func(c *Config) { c.Retry.MaxElapsedTime = time.Second },
			wantKind: KindTransient, wantStatus: 429, wantCode: "TOO_MANY", wantCalls: 1,
		},
		{
			name: "pay reset after write", op: OpPay,
			api: func(t *testing.T) apiHandler {
				return func(w http.ResponseWriter, r *http.Request, _ []byte, _ int64) { resetConn(t, w) }
			},
			wantKind: KindUnknownOutcome, wantCalls: 1,
		},
		{
			name: "pay timeout", op: OpPay,
			api:      func(t *testing.T) apiHandler { return blockUntilClientGone },
			mod:      func(c *Config) { c.Timeout = 150 * time.Millisecond },
			wantKind: KindUnknownOutcome, wantCalls: 1,
			check: func(t *testing.T, e *Error) {
				if !errors.Is(e, context.DeadlineExceeded) {
					t.Errorf("error %v does not wrap context.DeadlineExceeded", e)
				}
			},
		},
		{
			name: "get timeout retried", op: OpGetTransaction,
			api:      func(t *testing.T) apiHandler { return blockUntilClientGone },
			mod:      func(c *Config) { c.Timeout = 100 * time.Millisecond },
			wantKind: KindTransient, wantCalls: 3,
		},
		{
			name: "create timeout never retried", op: OpCreateSession,
			api:      func(t *testing.T) apiHandler { return blockUntilClientGone },
			mod:      func(c *Config) { c.Timeout = 100 * time.Millisecond },
			wantKind: KindUnknownOutcome, wantCalls: 1,
			check: func(t *testing.T, e *Error) {
				if !errors.Is(e, context.DeadlineExceeded) {
					t.Errorf("error %v does not wrap context.DeadlineExceeded", e)
				}
			},
		},
		{
			name: "cancel timeout retried", op: OpCancelSession,
			api:      func(t *testing.T) apiHandler { return blockUntilClientGone },
			mod:      func(c *Config) { c.Timeout = 100 * time.Millisecond },
			wantKind: KindTransient, wantCalls: 3,
		},
		{
			name: "list sessions body not JSON", op: OpListSessions,
			api: func(t *testing.T) apiHandler {
				return func(w http.ResponseWriter, r *http.Request, _ []byte, _ int64) { _, _ = w.Write([]byte("<html>")) }
			},
			wantKind: KindPermanent, wantStatus: 200, wantCalls: 1,
		},
		{
			name: "get body not JSON", op: OpGetTransaction,
			api: func(t *testing.T) apiHandler {
				return func(w http.ResponseWriter, r *http.Request, _ []byte, _ int64) { _, _ = w.Write([]byte("<html>")) }
			},
			wantKind: KindPermanent, wantStatus: 200, wantCalls: 1,
		},
		{
			// Dintero made a session whose id the answer does not say.
			name: "create without id", op: OpCreateSession,
			api: func(t *testing.T) apiHandler {
				return func(w http.ResponseWriter, r *http.Request, _ []byte, _ int64) {
					writeJSON(w, 200, map[string]string{})
				}
			},
			wantKind: KindUnknownOutcome, wantStatus: 200, wantCalls: 1,
		},
		{
			name: "get body too large", op: OpGetTransaction,
			api: func(t *testing.T) apiHandler {
				return func(w http.ResponseWriter, r *http.Request, _ []byte, _ int64) {
					_, _ = w.Write(bytes.Repeat([]byte(" "), maxResponseBody+10))
				}
			},
			wantKind: KindPermanent, wantStatus: 200, wantCalls: 1,
		},
		{
			name: "pay body too large", op: OpPay,
			api: func(t *testing.T) apiHandler {
				return func(w http.ResponseWriter, r *http.Request, _ []byte, _ int64) {
					_, _ = w.Write(bytes.Repeat([]byte(" "), maxResponseBody+10))
				}
			},
			wantKind: KindUnknownOutcome, wantStatus: 200, wantCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			if tt.api != nil {
				f.api = tt.api(t)
			} else {
				f.api = answer(tt.wantStatus, tt.wantCode)
			}
			c := newTestClient(t, f, tt.mod)
			err := ops[tt.op](context.Background(), c)
			if err == nil {
				t.Fatal("call succeeded; want an error")
			}
			e := asError(t, err)
			if e.Kind != tt.wantKind {
				t.Errorf("Kind = %v; want %v (%v)", e.Kind, tt.wantKind, e)
			}
			if e.Op != tt.op {
				t.Errorf("Op = %q; want %q", e.Op, tt.op)
			}
			if e.StatusCode != tt.wantStatus {
				t.Errorf("StatusCode = %d; want %d", e.StatusCode, tt.wantStatus)
			}
			if e.Code != tt.wantCode {
				t.Errorf("Code = %q; want %q", e.Code, tt.wantCode)
			}
			if tt.wantCode != "" && (e.Message != "message for "+tt.wantCode && e.Message != "slow down") {
				t.Errorf("Message = %q; want the server's message", e.Message)
			}
			if tt.wantStatus != 0 && tt.wantStatus != 200 && e.RequestID != "req-abc" {
				t.Errorf("RequestID = %q; want req-abc", e.RequestID)
			}
			if got := f.apiCalls.Load(); got != tt.wantCalls {
				t.Errorf("API requests = %d; want %d", got, tt.wantCalls)
			}
			if tt.check != nil {
				tt.check(t, e)
			}
		})
	}
}

func TestPayOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     any
		wantKind Kind // 0 = success
		wantCode string
		wantTx   bool
	}{
		{"authorized", 200, authorizedTx("ref-1"), 0, "", true},
		{"captured", 200, Transaction{ID: "x", Status: StatusCaptured}, 0, "", true},
		{"failed insufficient funds", 200, failedTx("ref-1", "INSUFFICIENT_FUNDS", RetryAfterDelay), KindDeclined, "INSUFFICIENT_FUNDS", true},
		{"declined do not retry", 200, func() Transaction {
			tx := failedTx("ref-1", "DO_NOT_HONOR", RetryDoNotRetry)
			tx.Status = StatusDeclined
			return tx
		}(), KindDeclined, "DO_NOT_HONOR", true},
		{"authorization voided", 200, Transaction{ID: "x", Status: StatusAuthorizationVoided}, KindDeclined, "", true},
		{"on hold", 200, Transaction{ID: "x", Status: StatusOnHold}, KindUnknownOutcome, "", true},
		{"initiated", 200, Transaction{ID: "x", Status: StatusInitiated}, KindUnknownOutcome, "", true},
		{"no status", 200, map[string]any{"id": "x"}, KindUnknownOutcome, "", true},
		{"not json", 200, "<<not a transaction>>", KindUnknownOutcome, "", false},
		{"duplicate reference", 400, ErrorBody{Error: ErrorDetail{Code: CodeDuplicateMerchantReference, Message: "dup"}}, KindInvalid, CodeDuplicateMerchantReference, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.api = func(w http.ResponseWriter, r *http.Request, _ []byte, _ int64) {
				if s, ok := tt.body.(string); ok {
					w.WriteHeader(tt.status)
					_, _ = w.Write([]byte(s))
					return
				}
				writeJSON(w, tt.status, tt.body)
			}
			c := newTestClient(t, f, nil)
			tx, err := c.PaySession(context.Background(), payBody)
			if (tx != nil) != tt.wantTx {
				t.Errorf("tx = %+v; want tx returned: %v", tx, tt.wantTx)
			}
			if tt.wantKind == 0 {
				if err != nil {
					t.Fatalf("PaySession: %v", err)
				}
				return
			}
			e := asError(t, err)
			if e.Kind != tt.wantKind || e.Code != tt.wantCode {
				t.Errorf("got %v/%q (%v); want %v/%q", e.Kind, e.Code, e, tt.wantKind, tt.wantCode)
			}
			if tt.wantKind == KindDeclined {
				if e.Transaction != tx || tx == nil {
					t.Errorf("Error.Transaction = %p; want the returned tx %p", e.Transaction, tx)
				}
				if tt.wantCode != "" && (e.RetryPolicy() == nil || e.Message == "") {
					t.Errorf("RetryPolicy %+v / Message %q missing on a decline", e.RetryPolicy(), e.Message)
				}
			}
			if got := e.DuplicateReference(); got != (tt.wantCode == CodeDuplicateMerchantReference) {
				t.Errorf("DuplicateReference() = %v", got)
			}
			if f.apiCalls.Load() != 1 {
				t.Errorf("API requests = %d; want 1", f.apiCalls.Load())
			}
		})
	}
}

func TestInvalidInputSendsNothing(t *testing.T) {
	tests := []struct {
		name string
		call callFn
	}{
		{"pay empty body", func(ctx context.Context, c *Client) error { _, err := c.PaySession(ctx, nil); return err }},
		{"pay invalid json", func(ctx context.Context, c *Client) error { _, err := c.PaySession(ctx, []byte(`{"a":`)); return err }},
		{"create invalid json", func(ctx context.Context, c *Client) error {
			_, err := c.CreateSessionProfile(ctx, []byte(`nope`))
			return err
		}},
		{"get empty id", func(ctx context.Context, c *Client) error { _, err := c.GetTransaction(ctx, ""); return err }},
		{"list empty ref", func(ctx context.Context, c *Client) error {
			_, err := c.TransactionsByMerchantReference(ctx, "")
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			c := newTestClient(t, f, nil)
			err := tt.call(context.Background(), c)
			if KindOf(err) != KindPermanent {
				t.Errorf("err = %v; want KindPermanent", err)
			}
			if n := f.apiCalls.Load() + f.tokenCalls.Load(); n != 0 {
				t.Errorf("%d requests sent; want 0", n)
			}
		})
	}
}

func TestResetAfterWrite(t *testing.T) {
	tests := []struct {
		name     string
		op       string
		wantKind Kind // 0 = retried to success
	}{
		{"pay is unknown outcome", OpPay, KindUnknownOutcome},
		{"get is retried", OpGetTransaction, 0},
		{"list is retried", OpListTransactions, 0},
		{"create is unknown outcome", OpCreateSession, KindUnknownOutcome},
		{"cancel is retried", OpCancelSession, 0},
		{"session list is retried", OpListSessions, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.api = func(w http.ResponseWriter, r *http.Request, _ []byte, n int64) {
				if n == 1 {
					resetConn(t, w)
					return
				}
				switch tt.op {
				case OpListTransactions:
					writeJSON(w, 200, []Transaction{authorizedTx("ref-1")})
				case OpCreateSession:
					writeJSON(w, 200, SessionCreated{ID: "T12345678.s1", URL: "https://x"})
				case OpListSessions:
					writeJSON(w, 200, []Session{{ID: "T12345678.s1", Order: SessionOrder{MerchantReference: "ref-1"}}})
				case OpCancelSession:
					writeJSON(w, 200, Session{ID: "T12345678.s1"})
				default:
					writeJSON(w, 200, authorizedTx("ref-1"))
				}
			}
			c := newTestClient(t, f, nil)
			err := ops[tt.op](context.Background(), c)
			if tt.wantKind == 0 {
				if err != nil {
					t.Fatalf("call failed: %v", err)
				}
				if f.apiCalls.Load() < 2 {
					t.Errorf("API requests = %d; want a retry", f.apiCalls.Load())
				}
				return
			}
			if KindOf(err) != tt.wantKind {
				t.Fatalf("err = %v; want %v", err, tt.wantKind)
			}
			if f.apiCalls.Load() != 1 {
				t.Errorf("API requests = %d; want exactly 1 (no retry)", f.apiCalls.Load())
			}
		})
	}
}

// countingTransport counts round trips per host.
type countingTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	n    map[string]int
}

func (ct *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ct.mu.Lock()
	ct.n[r.URL.Host]++
	ct.mu.Unlock()
	return ct.base.RoundTrip(r)
}

func (ct *countingTransport) count(host string) int {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	return ct.n[host]
}

func TestConnectionRefusedIsTransient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()

	for _, op := range []string{OpPay, OpGetTransaction, OpCreateSession, OpListTransactions} {
		t.Run(op, func(t *testing.T) {
			f := newFake(t)
			ct := &countingTransport{base: newHTTPClient(nil).Transport, n: map[string]int{}}
			c := newTestClient(t, f, func(cfg *Config) {
				cfg.AuthURL = f.URL()
				cfg.APIURL = "http://" + dead
				cfg.HTTPClient = &http.Client{Transport: ct}
			})
			err := ops[op](context.Background(), c)
			e := asError(t, err)
			if e.Kind != KindTransient || e.Op != op {
				t.Errorf("got %v/%s; want transient/%s (%v)", e.Kind, e.Op, op, e)
			}
			var opErr *net.OpError
			if !errors.As(err, &opErr) {
				t.Errorf("error %v does not wrap the *net.OpError", err)
			}
			if got := ct.count(dead); got != fastRetry.MaxAttempts {
				t.Errorf("attempts = %d; want %d (retried up to MaxAttempts)", got, fastRetry.MaxAttempts)
			}
		})
	}

	t.Run("auth endpoint refused", func(t *testing.T) {
		c, err := New(Config{AccountID: testAccount, ClientID: testClient, ClientSecret: testSecret,
			APIURL: "http://" + dead, Retry: fastRetry})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.PaySession(context.Background(), payBody)
		e := asError(t, err)
		if e.Kind != KindTransient || e.Op != OpAuth {
			t.Errorf("got %v/%s; want transient/auth", e.Kind, e.Op)
		}
	})
}

func TestRetryAfterHonoured(t *testing.T) {
	f := newFake(t)
	f.api = func(w http.ResponseWriter, r *http.Request, _ []byte, n int64) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			writeErr(w, 429, "TOO_MANY_REQUESTS", "slow down")
			return
		}
		writeJSON(w, 200, authorizedTx("ref-1"))
	}
	c := newTestClient(t, f, nil)
	tx, err := c.PaySession(context.Background(), payBody)
	if err != nil || tx == nil || tx.Status != StatusAuthorized {
		t.Fatalf("PaySession = %+v, %v; want AUTHORIZED", tx, err)
	}
	reqs := f.apiRequests()
	if len(reqs) != 2 {
		t.Fatalf("API requests = %d; want 2", len(reqs))
	}
	if gap := reqs[1].At.Sub(reqs[0].At); gap < time.Second {
		t.Errorf("retry came %v after the 429; want >= Retry-After 1s", gap)
	}
}

func TestRetryBudget(t *testing.T) {
	t.Run("MaxAttempts", func(t *testing.T) {
		for _, attempts := range []int{1, 2, 4} {
			t.Run(strconv.Itoa(attempts), func(t *testing.T) {
				f := newFake(t)
				f.api = answer(503, "UNAVAILABLE")
				c := newTestClient(t, f, func(cfg *Config) { cfg.Retry.MaxAttempts = attempts })
				if _, err := c.GetTransaction(context.Background(), "x"); KindOf(err) != KindTransient {
					t.Fatalf("err = %v; want transient", err)
				}
				if got := f.apiCalls.Load(); got != int64(attempts) {
					t.Errorf("API requests = %d; want %d", got, attempts)
				}
			})
		}
	})
	t.Run("MaxElapsedTime", func(t *testing.T) {
		f := newFake(t)
		f.api = answer(503, "UNAVAILABLE")
		c := newTestClient(t, f, func(cfg *Config) {
			cfg.Retry = RetryConfig{InitialInterval: 20 * time.Millisecond, MaxInterval: 20 * time.Millisecond,
				MaxElapsedTime: 200 * time.Millisecond, MaxAttempts: 1000}
		})
		start := time.Now()
		if _, err := c.GetTransaction(context.Background(), "x"); KindOf(err) != KindTransient {
			t.Fatalf("err = %v; want transient", err)
		}
		elapsed := time.Since(start)
		if got := f.apiCalls.Load(); got < 3 || got > 30 {
			t.Errorf("API requests = %d; want a handful within the 200ms budget", got)
		}
		if elapsed > 2*time.Second {
			t.Errorf("call took %v; want it stopped near MaxElapsedTime 200ms", elapsed)
		}
	})
}

func TestContextCancelStopsWaiting(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter string
		retry      RetryConfig
	}{
		{"during Retry-After", "20", RetryConfig{MaxElapsedTime: time.Minute, MaxRetryAfter: time.Minute}},
		{"during backoff", "", RetryConfig{InitialInterval: 20 * time.Second, MaxInterval: 20 * time.Second, MaxElapsedTime: time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			first := make(chan struct{}, 1)
			f.api = func(w http.ResponseWriter, r *http.Request, _ []byte, _ int64) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				writeErr(w, 503, "UNAVAILABLE", "later")
				select {
				case first <- struct{}{}:
				default:
				}
			}
			c := newTestClient(t, f, func(cfg *Config) { cfg.Retry = tt.retry })
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := c.GetTransaction(ctx, "x")
				done <- err
			}()
			select {
			case <-first:
			case <-time.After(5 * time.Second):
				t.Fatal("no request reached the server")
			}
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) || KindOf(err) != KindTransient {
					t.Errorf("err = %v; want transient wrapping context.Canceled", err)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("call still waiting 3s after cancel")
			}
			if got := f.apiCalls.Load(); got != 1 {
				t.Errorf("API requests = %d; want 1", got)
			}
		})
	}

	t.Run("already cancelled", func(t *testing.T) {
		f := newFake(t)
		c := newTestClient(t, f, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := c.PaySession(ctx, payBody)
		if !errors.Is(err, context.Canceled) || KindOf(err) != KindTransient {
			t.Errorf("err = %v; want transient wrapping context.Canceled", err)
		}
		if n := f.apiCalls.Load() + f.tokenCalls.Load(); n != 0 {
			t.Errorf("%d requests sent; want 0", n)
		}
	})
}

func TestBodyPassthrough(t *testing.T) {
	sessionBody := []byte(`{"url":{"return_url":"https://example.com/thankyou"},"order":{"amount":29990,"currency":"NOK",` +
		`"merchant_reference":"merchants_order_number","unmodelled":{"deep":[null,true,1e3]}},` +
		`"customer":{"tokens":{"bambora.creditcard":{"payment_token":"tok"}}},"profile_id":"default"}` + "\n")
	tests := []struct {
		name string
		path string
		body []byte
		call func(ctx context.Context, c *Client, body []byte) error
	}{
		{"pay", "/v1/sessions/pay", payBody, func(ctx context.Context, c *Client, b []byte) error {
			_, err := c.PaySession(ctx, b)
			return err
		}},
		{"sessions-profile", "/v1/sessions-profile", sessionBody, func(ctx context.Context, c *Client, b []byte) error {
			_, err := c.CreateSessionProfile(ctx, b)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.api = func(w http.ResponseWriter, r *http.Request, _ []byte, _ int64) {
				if r.URL.Path == "/v1/sessions-profile" {
					writeJSON(w, 200, SessionCreated{ID: "T12345678.s", URL: "https://checkout.test.dintero.com/v1/view/T12345678.s"})
					return
				}
				writeJSON(w, 200, authorizedTx("ref-1"))
			}
			c := newTestClient(t, f, nil)
			orig := bytes.Clone(tt.body)
			if err := tt.call(context.Background(), c, tt.body); err != nil {
				t.Fatal(err)
			}
			reqs := f.apiRequests()
			if len(reqs) != 1 || reqs[0].Method != http.MethodPost || reqs[0].Path != tt.path {
				t.Fatalf("requests = %+v; want one POST %s", reqs, tt.path)
			}
			if !bytes.Equal(reqs[0].Body, orig) {
				t.Errorf("body changed:\n got %s\nwant %s", reqs[0].Body, orig)
			}
			if !bytes.Equal(tt.body, orig) {
				t.Errorf("caller's body slice was modified")
			}
		})
	}
}

func TestHeaders(t *testing.T) {
	auth := newFake(t)
	api := newFake(t)
	api.acceptAny = true // tokens come from the auth fake
	api.api = func(w http.ResponseWriter, r *http.Request, _ []byte, _ int64) {
		if r.Method == http.MethodGet && r.URL.Path == "/v1/transactions" {
			writeJSON(w, 200, []Transaction{})
			return
		}
		writeJSON(w, 200, authorizedTx("ref-1"))
	}

	c := newTestClient(t, api, func(cfg *Config) {
		cfg.AuthURL = auth.URL()
		cfg.SystemName = "payworker"
		cfg.SystemVersion = "1.2.3"
	})
	ctx := context.Background()
	if _, err := c.PaySession(ctx, payBody); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetTransaction(ctx, "T12345678.a/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TransactionsByMerchantReference(ctx, "ref with space&x=y"); err != nil {
		t.Fatal(err)
	}

	toks := auth.tokenRequests()
	if len(toks) != 1 || api.tokenCalls.Load() != 0 {
		t.Fatalf("token requests: auth %d, api %d; want 1 to AuthURL only", len(toks), api.tokenCalls.Load())
	}
	tr := toks[0]
	req, _ := http.NewRequest(http.MethodPost, "/", nil)
	req.Header = tr.Header
	user, pass, ok := req.BasicAuth()
	if tr.Method != http.MethodPost || tr.Path != "/v1/accounts/T12345678/auth/token" {
		t.Errorf("token request %s %s", tr.Method, tr.Path)
	}
	if !ok || user != testClient || pass != testSecret {
		t.Errorf("token request Basic auth = %q/%v; want client credentials", user, ok)
	}
	var tb map[string]string
	if err := json.Unmarshal(tr.Body, &tb); err != nil || len(tb) != 2 ||
		tb["grant_type"] != "client_credentials" || tb["audience"] != "https://api.dintero.com/v1/accounts/T12345678" {
		t.Errorf("token body = %s (%v)", tr.Body, err)
	}
	if ct := tr.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("token Content-Type = %q", ct)
	}

	reqs := api.apiRequests()
	if len(reqs) != 3 {
		t.Fatalf("API requests = %d; want 3", len(reqs))
	}
	want := []struct {
		method, path, toggle, contentType, query string
	}{
		{http.MethodPost, "/v1/sessions/pay", ToggleStrictSuccessMerchantReference, "application/json", ""},
		{http.MethodGet, "/v1/transactions/T12345678.a/b", "", "", ""},
		{http.MethodGet, "/v1/transactions", "", "", "limit=100&merchant_reference=ref+with+space%26x%3Dy"},
	}
	for i, w := range want {
		r := reqs[i]
		t.Run(w.method+" "+w.path, func(t *testing.T) {
			if r.Method != w.method || r.Path != w.path || r.Query != w.query {
				t.Errorf("request %s %s?%s; want %s %s?%s", r.Method, r.Path, r.Query, w.method, w.path, w.query)
			}
			checks := map[string]string{
				"Authorization":           "Bearer access-token-1-xyzzy",
				"Dintero-System-Name":     "payworker",
				"Dintero-System-Version":  "1.2.3",
				"Dintero-Feature-Toggles": w.toggle,
				"Content-Type":            w.contentType,
			}
			for h, v := range checks {
				if got := r.Header.Get(h); got != v {
					t.Errorf("%s = %q; want %q", h, got, v)
				}
			}
		})
	}
}
