package worker_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/worker"
)

func TestMetricsCountWhatHappened(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	m := worker.NewMetrics(reg)
	e.cfg.Metrics = m
	c := e.client(5 * time.Second)
	e.startWorker(e.store(), c)

	ok := chargeBody("m-ok", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"1", 100)
	e.publish(ok)
	e.waitResults("m-ok", 1, 10*time.Second)
	e.publish(ok)
	e.publish(chargeBody("m-decl", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenDoNotRetry+"1", 100))
	e.publish([]byte(`{"session":{"order":{"merchant_reference":"m-bad"}}}`))
	for _, ref := range []string{"m-ok", "m-decl", "m-bad"} {
		want := 1
		if ref == "m-ok" {
			want = 2
		}
		e.waitResults(ref, want, 10*time.Second)
	}
	cases := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"payworker_requests_total", map[string]string{"outcome": "succeeded", "duplicate": "false"}, 1},
		{"payworker_requests_total", map[string]string{"outcome": "succeeded", "duplicate": "true"}, 1},
		{"payworker_requests_total", map[string]string{"outcome": "declined", "duplicate": "false"}, 1},
		{"payworker_idempotency_answers_total", map[string]string{"kind": "new"}, 2},
		{"payworker_idempotency_answers_total", map[string]string{"kind": "duplicate"}, 1},
		{"payworker_dead_letters_total", nil, 1},
		{"payworker_in_flight", nil, 0},
	}
	// Metrics are recorded just after the result is published: wait for
	// them to settle before comparing.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		settled := true
		for _, c := range cases {
			settled = settled && metricValue(t, reg, c.name, c.labels) == c.want
		}
		if settled {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range cases {
		if got := metricValue(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// metricValue sums the samples of a metric whose labels include labels.
func metricValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}
