package dinterotest_test

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero/dinterotest"
)

func TestRateLimitBucket(t *testing.T) {
	// 0.25/s: once the burst is spent the next token is 4 s away, so the
	// test's own calls cannot refill it.
	a := newAPI(t, dinterotest.Options{Faults: dinterotest.Faults{RateLimit: 0.25, RateBurst: 3}})
	a.login() // the token endpoint counts: 1 of 3
	a.payTx(okPay("r1"), "")
	if r := a.do(http.MethodGet, "/v1/transactions", nil, nil); r.status != http.StatusOK {
		t.Fatalf("third call: %d", r.status)
	}
	r := a.pay(okPay("r2"), "")
	if r.status != http.StatusTooManyRequests || r.errorCode(t) != "TOO_MANY_REQUESTS" {
		t.Fatalf("fourth call: %d %s, want 429", r.status, r.body)
	}
	if ra := r.header.Get("Retry-After"); ra != "4" { // ceil of the just under 4 s until the next token
		t.Errorf("Retry-After %q, want 4", ra)
	}
	if r := a.do(http.MethodGet, "/v1/transactions/x", nil, nil); r.status != http.StatusTooManyRequests {
		t.Errorf("lookup: %d, want 429", r.status)
	}
	// The admin endpoints and the customer's pages are never limited.
	for range 5 {
		if r := a.do(http.MethodGet, dinterotest.AdminPrefix+"counters", nil, nil); r.status != http.StatusOK {
			t.Fatalf("admin: %d", r.status)
		}
	}
	c := a.sb.Counters()
	if c.RateLimited != 2 || c.RateLimitedPay != 1 || c.PayRequests != 2 || c.Authorized != 1 || c.FaultRateLimits != 0 {
		t.Errorf("counters %+v", c)
	}
	if n := len(a.sb.Ledger()); n != 1 {
		t.Errorf("ledger has %d charges, want 1 (a 429 is not processed)", n)
	}
}

func TestRateLimitRetryAfterCeiling(t *testing.T) {
	for _, tt := range []struct {
		rate float64
		want string
	}{{0.4, "3"}, {100, "1"}} { // 2.5 s up to 3; 10 ms up to the minimum 1
		a := newAPI(t, dinterotest.Options{Faults: dinterotest.Faults{RateLimit: tt.rate, RateBurst: 1}})
		a.do(http.MethodGet, "/v1/transactions", nil, nil) // spends the token (401, but counted)
		r := a.do(http.MethodGet, "/v1/transactions", nil, nil)
		if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != tt.want {
			t.Errorf("rate %v: %d Retry-After %q, want 429 %s", tt.rate, r.status, r.header.Get("Retry-After"), tt.want)
		}
	}
}

func TestRateLimitAtRunTime(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	a.login()
	set := func(body string) dinterotest.Faults {
		t.Helper()
		r := a.do(http.MethodPut, dinterotest.AdminPrefix+"faults", body, nil)
		if r.status != http.StatusOK {
			t.Fatalf("PUT faults %s: %d %s", body, r.status, r.body)
		}
		var f dinterotest.Faults
		r.decode(t, &f)
		return f
	}
	if f := set(`{"rate_limit":0.1}`); f.RateLimit != 0.1 || f.RateBurst != 1 {
		t.Errorf("faults %+v, want rate 0.1 with the default burst 1", f)
	}
	a.do(http.MethodGet, "/v1/transactions", nil, nil)
	if r := a.do(http.MethodGet, "/v1/transactions", nil, nil); r.status != http.StatusTooManyRequests {
		t.Fatalf("second call at 0.1/s: %d", r.status)
	}
	// Setting the same limit again keeps the bucket (still empty) ...
	set(`{"rate_limit":0.1,"latency":"1ms"}`)
	if r := a.do(http.MethodGet, "/v1/transactions", nil, nil); r.status != http.StatusTooManyRequests {
		t.Errorf("same limit again refilled the bucket: %d", r.status)
	}
	// ... a new one starts full, and 0 lifts it.
	set(`{"rate_limit":0.1,"rate_burst":2}`)
	for i := range 2 {
		if r := a.do(http.MethodGet, "/v1/transactions", nil, nil); r.status != http.StatusOK {
			t.Errorf("call %d after a new limit: %d", i, r.status)
		}
	}
	set(`{}`)
	for range 20 {
		if r := a.do(http.MethodGet, "/v1/transactions", nil, nil); r.status != http.StatusOK {
			t.Fatalf("no limit: %d", r.status)
		}
	}
	if r := a.do(http.MethodPut, dinterotest.AdminPrefix+"faults", `{"rate_limit":-5}`, nil); r.status != http.StatusBadRequest {
		t.Errorf("negative rate accepted: %d", r.status)
	}
}

// TestRateLimitRate: however many clients call at once, the sandbox never
// answers more than burst + rate × elapsed calls.
func TestRateLimitRate(t *testing.T) {
	const rate, burst = 200.0, 10
	a := newAPI(t, dinterotest.Options{Faults: dinterotest.Faults{RateLimit: rate, RateBurst: burst}})
	var ok, limited atomic.Int64
	start := time.Now()
	stop := start.Add(500 * time.Millisecond)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				r, err := a.send(http.MethodGet, "/v1/transactions", nil, nil)
				if err != nil {
					t.Error(err)
					return
				}
				switch r.status {
				case http.StatusTooManyRequests:
					limited.Add(1)
				default:
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	if max := burst + rate*elapsed + 1; float64(ok.Load()) > max {
		t.Errorf("%d calls answered in %.3fs, the bucket allows at most %.0f", ok.Load(), elapsed, max)
	}
	if limited.Load() == 0 || a.sb.Counters().RateLimited != limited.Load() {
		t.Errorf("limited %d, counter %d", limited.Load(), a.sb.Counters().RateLimited)
	}
	if ok.Load() < burst {
		t.Errorf("only %d calls answered", ok.Load())
	}
}
