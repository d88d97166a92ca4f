package dinterotest_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero/dinterotest"
)

func TestSandboxTime(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	a.login()
	a.sb.SetFaults(dinterotest.Faults{Latency: 50 * time.Millisecond})
	start := time.Now()
	r := a.pay(okPay("timed"), "")
	roundTrip := float64(time.Since(start).Microseconds()) / 1e3
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	h, err := strconv.ParseFloat(r.header.Get(dinterotest.HeaderSandboxTime), 64)
	if err != nil {
		t.Fatalf("%s: %q: %v", dinterotest.HeaderSandboxTime, r.header.Get(dinterotest.HeaderSandboxTime), err)
	}
	if h < 50 || h > roundTrip {
		t.Errorf("sandbox time %.3f ms, want at least the 50 ms latency and at most the %.3f ms round trip", h, roundTrip)
	}
	l := a.sb.Ledger()
	if len(l) != 1 || l[0].SandboxMs != h {
		t.Errorf("ledger %+v, want sandbox_ms %.3f", l, h)
	}
	// Declines carry the header too; they are not in the ledger.
	r = a.pay(payBody("payex.creditcard", "unscheduled_purchase", "payment_token", dinterotest.TokenDoNotRetry+"x", "d", 100, false), "")
	if v, err := strconv.ParseFloat(r.header.Get(dinterotest.HeaderSandboxTime), 64); err != nil || v < 50 {
		t.Errorf("decline: %s %q", dinterotest.HeaderSandboxTime, r.header.Get(dinterotest.HeaderSandboxTime))
	}
	// The admin ledger has it as sandbox_ms.
	var ledger []map[string]any
	a.do(http.MethodGet, dinterotest.AdminPrefix+"ledger", nil, nil).decode(t, &ledger)
	if len(ledger) != 1 || ledger[0]["sandbox_ms"] != h {
		t.Errorf("admin ledger %v", ledger)
	}
}
