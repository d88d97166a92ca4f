package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/messages"
)

func TestResultsAreCloudEventsWithTraceContext(t *testing.T) {
	e := newEnv(t)
	e.startWorker(e.store(), e.client(5*time.Second))
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	cases := []struct {
		ref, traceparent, want string
	}{
		{"ce-traced", tp, tp},
		{"ce-bad-trace", "00-not-a-trace\r\nx: y", ""},
		{"ce-untraced", "", ""},
	}
	ctx := context.Background()
	for _, c := range cases {
		m := nats.NewMsg(messages.SubjectChargeRequest)
		m.Data = chargeBody(c.ref, messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"1", 100)
		m.Header.Set(messages.HeaderMsgID, c.ref)
		if c.traceparent != "" {
			m.Header.Set(messages.HeaderTraceparent, c.traceparent)
		}
		if _, err := e.js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	results, err := e.js.Stream(ctx, messages.StreamResults)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.ref, func(t *testing.T) {
			e.waitResults(c.ref, 1, 10*time.Second)
			var got *nats.Header
			info, _ := results.Info(ctx)
			for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
				raw, err := results.GetMsg(ctx, seq)
				if err == nil && raw.Header.Get(messages.HeaderCESubject) == c.ref {
					got = &raw.Header
				}
			}
			if got == nil {
				t.Fatalf("no result with ce-subject %s", c.ref)
			}
			h := *got
			want := map[string]string{
				messages.HeaderCESpecVersion: "1.0",
				messages.HeaderCEType:        "dev.payworker.charge.result.succeeded",
				messages.HeaderCESource:      "payworker",
				messages.HeaderCEID:          h.Get(messages.HeaderMsgID),
				messages.HeaderContentType:   "application/json",
				messages.HeaderTraceparent:   c.want,
			}
			for k, v := range want {
				if h.Get(k) != v {
					t.Errorf("header %s = %q, want %q", k, h.Get(k), v)
				}
			}
			if _, err := time.Parse(time.RFC3339Nano, h.Get(messages.HeaderCETime)); err != nil {
				t.Errorf("ce-time %q: %v", h.Get(messages.HeaderCETime), err)
			}
		})
	}
}
