package dinterotest_test

import (
	"encoding/json"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero/dinterotest"
)

func okPay(ref string) map[string]any {
	return payBody("payex.creditcard", "unscheduled_purchase", "payment_token", dinterotest.TokenAuthorized+"f", ref, 1000, false)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFaultErrors(t *testing.T) {
	a := newAPI(t, dinterotest.Options{Seed: 7})
	a.login()
	a.sb.SetFaults(dinterotest.Faults{ErrorRate: 1})
	seen := map[int]int{}
	const n = 40
	for range n {
		r := a.pay(okPay("ref"), "")
		seen[r.status]++
		if code := r.errorCode(t); code == "" {
			t.Errorf("no error code: %s", r.body)
		}
	}
	if seen[500] == 0 || seen[503] == 0 || seen[500]+seen[503] != n {
		t.Errorf("statuses %v, want a mix of 500 and 503", seen)
	}
	c := a.sb.Counters()
	if c.FaultErrors != n || c.PayRequests != n || c.Authorized != 0 || len(a.sb.Transactions()) != 0 {
		t.Errorf("counters %+v", c)
	}
	// The token endpoint is faulted too.
	r := a.do(http.MethodPost, a.tokenPath(), tokenBody(dinterotest.DefaultAccountID), basic(dinterotest.DefaultClientID, dinterotest.DefaultClientSecret))
	if r.status != 500 && r.status != 503 {
		t.Errorf("token endpoint: %d", r.status)
	}
}

func TestFaultRateLimit(t *testing.T) {
	tests := []struct {
		retryAfter time.Duration
		want       string
	}{
		{0, "1"},
		{300 * time.Millisecond, "1"},
		{time.Second, "1"},
		{1500 * time.Millisecond, "2"},
		{30 * time.Second, "30"},
	}
	for _, tt := range tests {
		t.Run(tt.retryAfter.String(), func(t *testing.T) {
			a := newAPI(t, dinterotest.Options{})
			a.login()
			a.sb.SetFaults(dinterotest.Faults{RateLimitRate: 1, RetryAfter: tt.retryAfter})
			r := a.do(http.MethodGet, "/v1/transactions", nil, nil)
			if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != tt.want {
				t.Fatalf("%d Retry-After %q, want 429 %q", r.status, r.header.Get("Retry-After"), tt.want)
			}
			if r.errorCode(t) != "TOO_MANY_REQUESTS" || a.sb.Counters().FaultRateLimits != 1 {
				t.Errorf("%s %+v", r.body, a.sb.Counters())
			}
		})
	}
}

func TestFaultReset(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	a.login()
	a.sb.SetFaults(dinterotest.Faults{ResetRate: 1, ErrorRate: 1, RateLimitRate: 1}) // reset is tried first
	if r, err := a.send(http.MethodPost, "/v1/sessions/pay", okPay("ref"), nil); err == nil {
		t.Fatalf("want a dropped connection, got %d %s", r.status, r.body)
	}
	c := a.sb.Counters()
	if c.FaultResets != 1 || c.FaultErrors != 0 || c.Authorized != 0 || len(a.sb.Ledger()) != 0 {
		t.Errorf("counters %+v", c)
	}
	// Admin endpoints are never faulted.
	if r := a.do(http.MethodGet, dinterotest.AdminPrefix+"counters", nil, nil); r.status != http.StatusOK {
		t.Errorf("admin: %d", r.status)
	}
}

func TestFaultOrder(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	a.login()
	a.sb.SetFaults(dinterotest.Faults{ErrorRate: 1, RateLimitRate: 1})
	if r := a.do(http.MethodGet, "/v1/transactions", nil, nil); r.status != 500 && r.status != 503 {
		t.Errorf("error before rate limit: got %d", r.status)
	}
}

func TestFaultLatency(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	a.login()
	a.sb.SetFaults(dinterotest.Faults{Latency: 80 * time.Millisecond, LatencyJitter: 20 * time.Millisecond})
	start := time.Now()
	a.payTx(okPay("ref"), "")
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Errorf("answered after %v, want at least 80ms", d)
	}

	// The sleep ends when the client gives up, and nothing is done.
	a.sb.SetFaults(dinterotest.Faults{Latency: time.Minute})
	a.client = &http.Client{Timeout: 100 * time.Millisecond}
	start = time.Now()
	if _, err := a.send(http.MethodPost, "/v1/sessions/pay", okPay("ref2"), nil); err == nil {
		t.Fatal("want a client timeout")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("client waited %v", d)
	}
	if n := len(a.sb.Ledger()); n != 1 {
		t.Errorf("ledger %d, want only the first charge", n)
	}
}

func TestFaultTimeoutAfterCharge(t *testing.T) {
	t.Run("client gives up", func(t *testing.T) {
		a := newAPI(t, dinterotest.Options{})
		a.login()
		a.sb.SetFaults(dinterotest.Faults{TimeoutAfterChargeRate: 1})
		a.client = &http.Client{Timeout: 300 * time.Millisecond}
		if r, err := a.send(http.MethodPost, "/v1/sessions/pay", okPay("ref-t"), nil); err == nil {
			t.Fatalf("want a timeout, got %d %s", r.status, r.body)
		}
		waitFor(t, "the charge", func() bool { return len(a.sb.Ledger()) == 1 })
		if l := a.sb.Ledger(); l[0].MerchantReference != "ref-t" {
			t.Errorf("ledger %+v", l)
		}
		if c := a.sb.Counters(); c.FaultTimeoutsAfterCharge != 1 || c.Authorized != 1 {
			t.Errorf("counters %+v", c)
		}
		// The charge is visible to reconciliation.
		a.client = &http.Client{Timeout: 10 * time.Second}
		a.sb.SetFaults(dinterotest.Faults{})
		var txs []map[string]any
		a.do(http.MethodGet, "/v1/transactions?merchant_reference=ref-t", nil, nil).decode(t, &txs)
		if len(txs) != 1 || txs[0]["status"] != "AUTHORIZED" {
			t.Errorf("list %+v", txs)
		}
	})
	t.Run("hang limit drops the connection", func(t *testing.T) {
		a := newAPI(t, dinterotest.Options{HangLimit: 100 * time.Millisecond})
		a.login()
		a.sb.SetFaults(dinterotest.Faults{TimeoutAfterChargeRate: 1})
		start := time.Now()
		if r, err := a.send(http.MethodPost, "/v1/sessions/pay",
			payBody("bambora.creditcard", "unscheduled_purchase", "payment_token", dinterotest.TokenExpiredCard+"1", "ref-d", 5, false), nil); err == nil {
			t.Fatalf("want a dropped connection, got %d %s", r.status, r.body)
		}
		if d := time.Since(start); d < 100*time.Millisecond {
			t.Errorf("dropped after %v, want at least the hang limit", d)
		}
		if txs := a.sb.Transactions(); len(txs) != 1 || txs[0].Status != "FAILED" {
			t.Errorf("declines are recorded before the hang too: %+v", txs)
		}
	})
	t.Run("Close releases the hang", func(t *testing.T) {
		a := newAPI(t, dinterotest.Options{}) // HangLimit 2m
		a.login()
		a.sb.SetFaults(dinterotest.Faults{TimeoutAfterChargeRate: 1})
		a.client = &http.Client{} // no timeout
		done := make(chan error, 1)
		go func() {
			_, err := a.send(http.MethodPost, "/v1/sessions/pay", okPay("ref-c"), nil)
			done <- err
		}()
		waitFor(t, "the hang", func() bool { return a.sb.Counters().FaultTimeoutsAfterCharge == 1 })
		if err := a.sb.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err == nil {
				t.Error("want an error from the dropped connection")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("request still hanging after Close")
		}
	})
}

func TestFaultSeedRepeatable(t *testing.T) {
	run := func() []int {
		a := newAPI(t, dinterotest.Options{Seed: 42})
		a.login()
		a.sb.SetFaults(dinterotest.Faults{ErrorRate: 0.5})
		var out []int
		for range 30 {
			out = append(out, a.do(http.MethodGet, "/v1/transactions", nil, nil).status)
		}
		return out
	}
	first, second := run(), run()
	var ok, failed bool
	for i := range first {
		if first[i] != second[i] {
			t.Fatalf("run differs at %d: %v vs %v", i, first, second)
		}
		ok = ok || first[i] == 200
		failed = failed || first[i] >= 500
	}
	if !ok || !failed {
		t.Errorf("rate 0.5 gave %v", first)
	}
}

func TestFaultsValidation(t *testing.T) {
	tests := []struct {
		name    string
		f       dinterotest.Faults
		wantErr bool
	}{
		{"zero", dinterotest.Faults{}, false},
		{"all ones", dinterotest.Faults{ErrorRate: 1, RateLimitRate: 1, TimeoutAfterChargeRate: 1, ResetRate: 1}, false},
		{"rate above 1", dinterotest.Faults{ErrorRate: 1.5}, true},
		{"negative rate", dinterotest.Faults{ResetRate: -0.1}, true},
		{"negative latency", dinterotest.Faults{Latency: -time.Second}, true},
		{"rate limit", dinterotest.Faults{RateLimit: 0.5, RateBurst: 3}, false},
		{"negative rate limit", dinterotest.Faults{RateLimit: -1}, true},
		{"infinite rate limit", dinterotest.Faults{RateLimit: math.Inf(1)}, true},
		{"negative burst", dinterotest.Faults{RateLimit: 1, RateBurst: -1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.f.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestFaultsJSON(t *testing.T) {
	in := dinterotest.Faults{Latency: 150 * time.Millisecond, LatencyJitter: time.Second, ErrorRate: 0.1,
		RateLimitRate: 0.2, RetryAfter: 2 * time.Second, TimeoutAfterChargeRate: 0.3, ResetRate: 0.4, RateLimit: 500, RateBurst: 50}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"latency":"150ms","latency_jitter":"1s","error_rate":0.1,"rate_limit_rate":0.2,"retry_after":"2s","timeout_after_charge_rate":0.3,"reset_rate":0.4,"rate_limit":500,"rate_burst":50}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	var out dinterotest.Faults
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Errorf("round trip %+v, %v", out, err)
	}
	for _, bad := range []string{`{"latency":"soon"}`, `{"latency":150}`, `{"error_rate":"0.5"}`, `{"unknown":1}`} {
		if err := json.Unmarshal([]byte(bad), &out); err == nil {
			t.Errorf("%s: want an error", bad)
		}
	}
}

func TestStart(t *testing.T) {
	sb := dinterotest.New(dinterotest.Options{})
	base, err := sb.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Close() })
	if base != sb.URL() {
		t.Errorf("URL() %q, Start %q", sb.URL(), base)
	}
	if _, err := sb.Listen("127.0.0.1:0"); err == nil {
		t.Error("second Start succeeded")
	}
	a := &api{t: t, sb: sb, base: base, client: &http.Client{Timeout: 5 * time.Second}}
	a.login()
	a.payTx(okPay("ref"), "")
	if err := sb.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.send(http.MethodGet, "/v1/transactions", nil, nil); err == nil {
		t.Error("request after Close succeeded")
	}
}

func TestNewPanicsOnInvalidOptions(t *testing.T) {
	for _, o := range []dinterotest.Options{
		{AccountID: "12345678"},
		{Faults: dinterotest.Faults{ErrorRate: 2}},
		{TokenTTL: -time.Second},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%+v) did not panic", o)
				}
			}()
			dinterotest.New(o)
		}()
	}
}
