package worker_test

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/messages"
)

// TestLogLinesCarryTheRequest: every line the worker logs about a request
// names its merchant_reference, stream sequence and attempt.
func TestLogLinesCarryTheRequest(t *testing.T) {
	e := newEnv(t)
	e.sandbox.SetFaults(dinterotest.Faults{RateLimitRate: 1, RetryAfter: time.Second})
	e.startWorker(e.store(), e.client(time.Second))
	e.publish(chargeBody("log-1", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"1", 100))
	waitFor(t, 10*time.Second, func() bool { return e.sandbox.Counters().FaultRateLimits >= 2 })
	e.sandbox.SetFaults(dinterotest.Faults{})
	e.waitResults("log-1", 1, 10*time.Second)

	lines := 0
	sc := bufio.NewScanner(strings.NewReader(e.logs.String()))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line is not JSON: %s", sc.Text())
		}
		if rec["merchant_reference"] != "log-1" || rec["component"] != nil {
			continue
		}
		lines++
		for _, k := range []string{"stream_seq", "attempt"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("log line without %s: %s", k, sc.Text())
			}
		}
	}
	if lines < 2 {
		t.Fatalf("only %d log lines about the request; the retries should have logged", lines)
	}
}
