package dintero

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"
)

func TestUnauthorizedRefreshesOnce(t *testing.T) {
	tests := []struct {
		name        string
		op          string
		reject      func(tok string) bool
		wantKind    Kind // 0 = success
		wantTokens  int64
		wantAPICall int64
	}{
		{"pay: stale token refreshed", OpPay, func(tok string) bool { return tok == "access-token-1-xyzzy" }, 0, 2, 2},
		{"get: stale token refreshed", OpGetTransaction, func(tok string) bool { return tok == "access-token-1-xyzzy" }, 0, 2, 2},
		{"pay: second 401 is auth", OpPay, func(string) bool { return true }, KindAuth, 2, 2},
		{"list: second 401 is auth", OpListTransactions, func(string) bool { return true }, KindAuth, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.rejectToken = tt.reject
			f.api = func(w http.ResponseWriter, r *http.Request, _ []byte, _ int64) {
				if r.URL.Path == "/v1/transactions" {
					writeJSON(w, 200, []Transaction{})
					return
				}
				writeJSON(w, 200, authorizedTx("ref-1"))
			}
			c := newTestClient(t, f, nil)
			err := ops[tt.op](context.Background(), c)
			if tt.wantKind == 0 && err != nil {
				t.Fatalf("call failed: %v", err)
			}
			if tt.wantKind != 0 {
				e := asError(t, err)
				if e.Kind != tt.wantKind || e.StatusCode != 401 || e.Op != tt.op {
					t.Errorf("err = %v (%v/%d/%s); want %v 401 %s", e, e.Kind, e.StatusCode, e.Op, tt.wantKind, tt.op)
				}
			}
			if got := f.tokenCalls.Load(); got != tt.wantTokens {
				t.Errorf("token requests = %d; want %d", got, tt.wantTokens)
			}
			if got := f.apiCalls.Load(); got != tt.wantAPICall {
				t.Errorf("API requests = %d; want %d", got, tt.wantAPICall)
			}
			if reqs := f.apiRequests(); len(reqs) == 2 && reqs[1].Header.Get("Authorization") != "Bearer access-token-2-xyzzy" {
				t.Errorf("retry used %q; want the refreshed token", reqs[1].Header.Get("Authorization"))
			}
		})
	}
}

func TestAuthEndpointErrors(t *testing.T) {
	tests := []struct {
		name       string
		statuses   []int // answers of successive token requests; 200 issues a token
		wantKind   Kind  // 0 = success
		wantTokens int64
	}{
		{"400 is auth", []int{400}, KindAuth, 1},
		{"401 is auth", []int{401}, KindAuth, 1},
		{"403 is auth", []int{403}, KindAuth, 1},
		{"404 is auth", []int{404}, KindAuth, 1},
		{"500 retried", []int{500, 503, 200}, 0, 3},
		{"429 retried", []int{429, 200}, 0, 2},
		{"500 until budget", []int{500, 500, 500, 500}, KindTransient, 3},
		{"200 without token", []int{299}, KindAuth, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.token = func(w http.ResponseWriter, r *http.Request, n int64) {
				s := tt.statuses[min(int(n), len(tt.statuses))-1]
				switch s {
				case 200:
					f.mu.Lock()
					f.issued["good-token"] = true
					f.mu.Unlock()
					writeJSON(w, 200, AccessToken{AccessToken: "good-token", TokenType: "Bearer", ExpiresIn: 3600})
				case 299:
					writeJSON(w, 200, map[string]any{"token_type": "Bearer"})
				default:
					writeErr(w, s, "AUTH_FAILED", "bad credentials")
				}
			}
			c := newTestClient(t, f, nil)
			_, err := c.PaySession(context.Background(), payBody)
			if tt.wantKind == 0 {
				if err != nil {
					t.Fatalf("PaySession: %v", err)
				}
			} else {
				e := asError(t, err)
				if e.Kind != tt.wantKind || e.Op != OpAuth {
					t.Errorf("err = %v; want %v with Op auth", e, tt.wantKind)
				}
				if f.apiCalls.Load() != 0 {
					t.Errorf("API requests = %d; want none without a token", f.apiCalls.Load())
				}
			}
			if got := f.tokenCalls.Load(); got != tt.wantTokens {
				t.Errorf("token requests = %d; want %d", got, tt.wantTokens)
			}
		})
	}
}

// fakeClock is a settable clock for token expiry tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func TestTokenCachedAndRefreshedBeforeExpiry(t *testing.T) {
	tests := []struct {
		name          string
		expiresIn     int64
		refreshBefore time.Duration
		wantRefreshAt time.Duration // after issue
	}{
		{"default 5m before a 1h token", 3600, 0, 55 * time.Minute},
		{"default 5m before a 10m token", 600, 0, 5 * time.Minute},
		{"default half of a 1m token", 60, 0, 30 * time.Second},
		{"configured 10m", 3600, 10 * time.Minute, 50 * time.Minute},
		{"configured beyond half is clamped", 60, 10 * time.Minute, 30 * time.Second},
		{"expires_in missing", 0, 0, fallbackTokenTTL / 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.expiresIn.Store(tt.expiresIn)
			c := newTestClient(t, f, func(cfg *Config) { cfg.RefreshBefore = tt.refreshBefore })
			t0 := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
			clk := &fakeClock{now: t0}
			c.now = clk.Now
			ctx := context.Background()

			tok1, err := c.Token(ctx)
			if err != nil || tok1 != "access-token-1-xyzzy" {
				t.Fatalf("Token = %q, %v", tok1, err)
			}
			clk.Set(t0.Add(tt.wantRefreshAt - time.Second))
			if tok, err := c.Token(ctx); err != nil || tok != tok1 {
				t.Fatalf("Token before refresh time = %q, %v; want cached %q", tok, err, tok1)
			}
			if _, err := c.GetTransaction(ctx, "x"); err != nil {
				t.Fatal(err)
			}
			if got := f.tokenCalls.Load(); got != 1 {
				t.Fatalf("token requests before refresh time = %d; want 1", got)
			}
			clk.Set(t0.Add(tt.wantRefreshAt))
			tok2, err := c.Token(ctx)
			if err != nil || tok2 != "access-token-2-xyzzy" {
				t.Fatalf("Token at refresh time = %q, %v; want a new token", tok2, err)
			}
			if got := f.tokenCalls.Load(); got != 2 {
				t.Errorf("token requests = %d; want 2", got)
			}
		})
	}
}

func TestTokenInvalidateOnlyIfCurrent(t *testing.T) {
	var tc tokenCache
	exp := time.Now().Add(time.Hour)
	tc.set("new", exp, exp)
	tc.invalidate("old")
	if got := tc.current(); got != "new" {
		t.Fatalf("invalidate(old) dropped %q", got)
	}
	tc.invalidate("new")
	if _, ok := tc.get(time.Now()); ok {
		t.Fatal("invalidate(new) kept the token")
	}
}

func TestConcurrentFirstCallsShareOneTokenRequest(t *testing.T) {
	f := newFake(t)
	release := make(chan struct{})
	f.token = func(w http.ResponseWriter, r *http.Request, n int64) {
		<-release // hold the fetch until every caller is waiting on it
		tok := "shared-token"
		f.mu.Lock()
		f.issued[tok] = true
		f.mu.Unlock()
		writeJSON(w, 200, AccessToken{AccessToken: tok, TokenType: "Bearer", ExpiresIn: 3600})
	}
	c := newTestClient(t, f, func(cfg *Config) { cfg.Timeout = 20 * time.Second })

	const callers = 1000
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	start := make(chan struct{})
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			var err error
			if i%2 == 0 {
				_, err = c.PaySession(context.Background(), payBody)
			} else {
				_, err = c.Token(context.Background())
			}
			errs <- err
		}()
	}
	close(start)
	// Release once the first token request arrived; late callers find the
	// cache or join the flight.
	deadline := time.Now().Add(5 * time.Second)
	for f.tokenCalls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("call failed: %v", err)
		}
	}
	if got := f.tokenCalls.Load(); got != 1 {
		t.Errorf("token requests = %d; want exactly 1", got)
	}
	if got := f.apiCalls.Load(); got != callers/2 {
		t.Errorf("API requests = %d; want %d", got, callers/2)
	}
}

func TestTokenFetchSurvivesFirstCallerCancel(t *testing.T) {
	f := newFake(t)
	arrived := make(chan struct{})
	release := make(chan struct{})
	f.token = func(w http.ResponseWriter, r *http.Request, n int64) {
		close(arrived)
		<-release
		f.mu.Lock()
		f.issued["t"] = true
		f.mu.Unlock()
		writeJSON(w, 200, AccessToken{AccessToken: "t", TokenType: "Bearer", ExpiresIn: 3600})
	}
	c := newTestClient(t, f, nil)
	ctx1, cancel1 := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := c.Token(ctx1); first <- err }()
	<-arrived
	second := make(chan error, 1)
	go func() { _, err := c.Token(context.Background()); second <- err }()
	cancel1()
	if err := <-first; KindOf(err) != KindTransient {
		t.Errorf("cancelled caller got %v; want transient", err)
	}
	close(release)
	if err := <-second; err != nil {
		t.Errorf("second caller got %v; want the shared token", err)
	}
	if got := f.tokenCalls.Load(); got != 1 {
		t.Errorf("token requests = %d; want 1", got)
	}
}
