package worker_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/idempotency/redistest"
	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/worker"
)

// TestMaxInFlightBoundsDinteroCalls: MaxInFlight is the number of charges
// at Dintero at once; the worker keeps every slot busy, and never more.
func TestMaxInFlightBoundsDinteroCalls(t *testing.T) {
	e := newEnv(t)
	e.cfg.MaxInFlight = 4
	e.sandbox.SetFaults(dinterotest.Faults{Latency: 150 * time.Millisecond})
	gw := &concurrencyGateway{Gateway: e.client(5 * time.Second)}
	e.startWorker(e.store(), gw)
	const n = 24
	for i := range n {
		e.publish(chargeBody(fmt.Sprintf("bound-%d", i), messages.ProductPayExCreditcard,
			messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"1", 100))
	}
	for i := range n {
		if r := e.waitResults(fmt.Sprintf("bound-%d", i), 1, 20*time.Second)[0]; r.Outcome != messages.OutcomeSucceeded {
			t.Fatalf("bound-%d: %+v", i, r)
		}
	}
	if got := gw.maxCalls(); got != e.cfg.MaxInFlight {
		t.Fatalf("at most %d pay calls at once, want exactly MaxInFlight = %d", got, e.cfg.MaxInFlight)
	}
}

// concurrencyGateway records the most pay calls in progress at once.
type concurrencyGateway struct {
	worker.Gateway
	mu       sync.Mutex
	now, max int
}

func (g *concurrencyGateway) PaySession(ctx context.Context, body []byte, opts ...dintero.CallOption) (*dintero.Transaction, error) {
	g.mu.Lock()
	g.now++
	g.max = max(g.max, g.now)
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.now--
		g.mu.Unlock()
	}()
	return g.Gateway.PaySession(ctx, body, opts...)
}

func (g *concurrencyGateway) maxCalls() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.max
}

// TestSlowDinteroKeptAlive: a charge that takes longer than AckWait is kept
// alive with InProgress and lease renewals, so it is neither redelivered
// nor charged twice.
func TestSlowDinteroKeptAlive(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	e.cfg.Metrics = worker.NewMetrics(reg)
	e.sandbox.SetFaults(dinterotest.Faults{Latency: 3500 * time.Millisecond}) // AckWait is 2s, the lease 1.5s
	e.startWorker(e.store(), e.client(10*time.Second))
	e.startWorker(e.store(), e.client(10*time.Second))
	e.publish(chargeBody("slow-1", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"1", 100))
	r := e.waitResults("slow-1", 1, 30*time.Second)[0]
	if r.Outcome != messages.OutcomeSucceeded || r.Attempts != 1 {
		t.Fatalf("got %+v, want succeeded on the first attempt", r)
	}
	if n := e.sandbox.Counters().PayRequests; n != 1 {
		t.Fatalf("Dintero got %d pay calls, want 1", n)
	}
	if n := metricValue(t, reg, "payworker_redeliveries_total", nil); n != 0 {
		t.Fatalf("%v redeliveries: the heartbeat did not keep the message", n)
	}
	e.assertNoMoreResults("slow-1", 1, 500*time.Millisecond)
}

// TestSurvivesNATSAndRedisRestarts restarts both servers under load. Every
// request ends with exactly one result and one charge.
func TestSurvivesNATSAndRedisRestarts(t *testing.T) {
	e := newEnv(t)
	redisSrv := redistest.Start(t, redistest.Options{AppendOnly: true})
	rdb := redisSrv.Client(t)
	e.rdb = rdb
	e.sandbox.SetFaults(dinterotest.Faults{Latency: 20 * time.Millisecond})
	e.startWorker(e.store(), e.client(5*time.Second))
	e.startWorker(e.store(), e.client(5*time.Second))
	const n = 120
	for i := range n {
		e.publish(chargeBody(fmt.Sprintf("outage-%d", i), providers[i%3], operations[i%2], dinterotest.TokenAuthorized+"1", 100))
		switch i {
		case 40:
			if err := redisSrv.Close(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
			if err := redisSrv.Restart(); err != nil {
				t.Fatal(err)
			}
		case 80:
			if err := e.nats.Restart(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond) // let clients reconnect before publishing again
		}
	}
	for i := range n {
		ref := fmt.Sprintf("outage-%d", i)
		r := e.waitResults(ref, 1, 60*time.Second)[0]
		if r.Outcome != messages.OutcomeSucceeded {
			t.Fatalf("%s: %+v", ref, r)
		}
		if c := e.ledgerFor(ref); c != 1 {
			t.Fatalf("%s charged %d times", ref, c)
		}
	}
	time.Sleep(time.Second)
	for i := range n {
		ref := fmt.Sprintf("outage-%d", i)
		e.mu.Lock()
		got := len(e.results[ref])
		e.mu.Unlock()
		if got != 1 {
			t.Errorf("%s has %d results, want 1", ref, got)
		}
	}
}

// TestMalformedCorpus: every kind of bad input gets a rejected result that
// names the problem, and never reaches Dintero.
func TestMalformedCorpus(t *testing.T) {
	e := newEnv(t)
	e.startWorker(e.store(), e.client(5*time.Second))
	good := string(chargeBody("REF", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"1", 1000))
	mutate := func(ref, old, new string) []byte {
		b := strings.Replace(good, `"merchant_reference": "REF"`, `"merchant_reference": "`+ref+`"`, 1)
		if !strings.Contains(b, old) {
			t.Fatalf("corpus: %q not in the good body", old)
		}
		return []byte(strings.Replace(b, old, new, 1))
	}
	huge := mutate("huge", `"ext_test": "kept"`, `"ext_test": "`+strings.Repeat("x", 1_000_000)+`"`)
	cases := []struct {
		name, ref, field string
		body             []byte
		msg              string // the error message must say this
	}{
		{"not json", "", "body", []byte(`charge me`), "not valid JSON"},
		{"truncated", "", "body", []byte(good[:len(good)/2]), "truncated"},
		{"huge", "huge", "body", huge, "larger than"},
		{"invalid utf-8", "bad-utf8", "body", mutate("bad-utf8", "john.doe@", "john\xff\xfe@"), "UTF-8"},
		{"amount as string", "amt-str", "session.order.amount", mutate("amt-str", `"amount": 1000, "currency"`, `"amount": "1000", "currency"`), ""},
		{"negative amount", "amt-neg", "session.order.amount", mutate("amt-neg", `"amount": 1000, "currency"`, `"amount": -1000, "currency"`), ""},
		{"zero amount", "amt-zero", "session.order.amount", mutate("amt-zero", `"amount": 1000, "currency"`, `"amount": 0, "currency"`), ""},
		{"float amount", "amt-float", "session.order.amount", mutate("amt-float", `"amount": 1000, "currency"`, `"amount": 1000.5, "currency"`), ""},
		{"missing token", "no-token", "session.customer.tokens.payex.creditcard", mutate("no-token", `"payex.creditcard": {"payment_token"`, `"other.creditcard": {"payment_token"`), ""},
		{"wrong token kind", "wrong-kind", "session.customer.tokens.payex.creditcard.payment_token", mutate("wrong-kind", `"payment_token"`, `"recurrence_token"`), ""},
		{"unknown provider", "unknown-prov", "payment.payment_product_type", mutate("unknown-prov", `"payment_product_type": "payex.creditcard"`, `"payment_product_type": "klarna.klarna"`), ""},
		{"items not summing", "bad-sum", "session.order.items", mutate("bad-sum", `"amount": 1000, "vat_amount": 200, "vat"`, `"amount": 999, "vat_amount": 200, "vat"`), ""},
		{"missing reference", "", "session.order.merchant_reference", mutate("x", `"merchant_reference": "x"`, `"merchant_reference": ""`), ""},
	}
	for _, c := range cases {
		e.publish(c.body)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r messages.ChargeResult
			found := false
			waitFor(t, 10*time.Second, func() bool {
				e.mu.Lock()
				defer e.mu.Unlock()
				for _, got := range e.results[c.ref] {
					if got.Error != nil && strings.Contains(got.Error.Message, c.msg) &&
						slices.ContainsFunc(got.Error.Fields, func(f messages.FieldError) bool { return f.Field == c.field }) {
						r, found = got, true
					}
				}
				return found
			})
			if r.Outcome != messages.OutcomeRejected || r.Error.Code != messages.CodeInvalidRequest {
				t.Fatalf("got %+v, want rejected invalid_request", r)
			}
		})
	}
	if n := e.sandbox.Counters().PayRequests; n != 0 {
		t.Fatalf("Dintero got %d pay calls for bad input, want 0", n)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, raw := range e.raw {
		if bytes.Contains(raw, []byte(dinterotest.TokenAuthorized)) {
			t.Fatalf("a rejected result quotes a token: %s", raw)
		}
	}
}
