package dintero

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testAccount = "T12345678"
	testClient  = "client-id-1"
	testSecret  = "s3cr3t-CLIENT-SECRET-value"
)

// recorded is a request as the fake saw it.
type recorded struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   []byte
	At     time.Time
}

// fakeDintero is an httptest Dintero: a token endpoint issuing
// "access-token-N-xyz" tokens and an API whose answer is set per test.
type fakeDintero struct {
	srv *httptest.Server

	tokenCalls atomic.Int64
	apiCalls   atomic.Int64
	expiresIn  atomic.Int64

	mu       sync.Mutex
	issued   map[string]bool
	tokenReq []recorded
	apiReq   []recorded

	// token, if set, answers token requests instead of the default.
	token func(w http.ResponseWriter, r *http.Request, n int64)
	// api answers API requests that carried a valid bearer token; n counts
	// API requests from 1.
	api func(w http.ResponseWriter, r *http.Request, body []byte, n int64)
	// acceptAny makes the API accept any bearer token.
	acceptAny bool
	// rejectToken, if set, makes the API answer 401 for these tokens.
	rejectToken func(tok string) bool
}

func newFake(t *testing.T) *fakeDintero {
	t.Helper()
	f := &fakeDintero{issued: map[string]bool{}}
	f.expiresIn.Store(3600)
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeDintero) URL() string { return f.srv.URL }

func (f *fakeDintero) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body, At: time.Now()}
	if strings.HasSuffix(r.URL.Path, "/auth/token") {
		n := f.tokenCalls.Add(1)
		f.mu.Lock()
		f.tokenReq = append(f.tokenReq, rec)
		f.mu.Unlock()
		if f.token != nil {
			f.token(w, r, n)
			return
		}
		tok := fmt.Sprintf("access-token-%d-xyzzy", n)
		f.mu.Lock()
		f.issued[tok] = true
		f.mu.Unlock()
		writeJSON(w, 200, AccessToken{AccessToken: tok, TokenType: "Bearer", ExpiresIn: f.expiresIn.Load()})
		return
	}
	n := f.apiCalls.Add(1)
	f.mu.Lock()
	f.apiReq = append(f.apiReq, rec)
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	ok := f.acceptAny || f.issued[tok]
	f.mu.Unlock()
	if !ok || (f.rejectToken != nil && f.rejectToken(tok)) {
		writeJSON(w, 401, ErrorBody{Error: ErrorDetail{Code: "UNAUTHORIZED", Message: "invalid token"}})
		return
	}
	if f.api == nil {
		writeJSON(w, 200, authorizedTx("ref-1"))
		return
	}
	f.api(w, r, body, n)
}

func (f *fakeDintero) apiRequests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.apiReq...)
}

func (f *fakeDintero) tokenRequests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.tokenReq...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req-abc")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, ErrorBody{Error: ErrorDetail{Code: code, Message: msg}})
}

// resetConn drops the connection without answering (a TCP RST).
func resetConn(t *testing.T, w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		t.Errorf("response writer cannot hijack")
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

func authorizedTx(ref string) Transaction {
	return Transaction{ID: "T12345678.tx1", MerchantReference: ref, Status: StatusAuthorized, Amount: 29990, Currency: "NOK"}
}

func failedTx(ref, code, retry string) Transaction {
	f := false
	return Transaction{ID: "T12345678.tx2", MerchantReference: ref, Status: StatusFailed, Amount: 29990, Currency: "NOK",
		Success: &f,
		Events: []TransactionEvent{{Event: "AUTHORIZE", TransactionStatus: StatusFailed, Error: &EventError{
			Code: code, Message: "card declined: " + strings.ToLower(code), Type: []string{code},
			RetryPolicy: &RetryPolicy{RetryCodes: []string{retry}},
		}}}}
}

// fastRetry keeps unit tests quick.
var fastRetry = RetryConfig{InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond, MaxElapsedTime: 5 * time.Second, MaxAttempts: 3}

func newTestClient(t *testing.T, f *fakeDintero, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		AccountID:    testAccount,
		ClientID:     testClient,
		ClientSecret: testSecret,
		APIURL:       f.URL(),
		Timeout:      2 * time.Second,
		Retry:        fastRetry,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// payBody is a seed-shaped MIT body with fields the client does not model.
var payBody = []byte(`{"session":{"url":{"callback_url":"https://example.com/callback?method=GET"},
 "customer":{"email":"body-marker@example.com","tokens":{"payex.creditcard":{"recurrence_token":"card-token-SECRET-123"}}},
 "order":{"amount":29990,"currency":"NOK","merchant_reference":"ref-1","x_unknown":[1,2.50,{"ø":"æ"}]},
 "profile_id":"default","configuration":{"auto_capture":false}},
 "payment":{"payment_product_type":"payex.creditcard","operation":"recurring_purchase"}}`)

// logBuffer is a concurrency-safe buffer for a slog handler.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
