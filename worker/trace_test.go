package worker_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/messages"
)

// Issue 16 item 4: a request's W3C trace context (traceparent, tracestate,
// baggage) gets a span per request with child spans for the claim, the
// Dintero call and the publish; it reaches Dintero and the result.
func TestTracing(t *testing.T) {
	e := newEnv(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	e.cfg.Tracer = tp.Tracer("test")

	// What Dintero sees, through a proxy in front of the sandbox.
	var mu sync.Mutex
	seen := map[string]http.Header{}
	target, _ := url.Parse(e.sandbox.URL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path] = r.Header.Clone()
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	gw, err := dintero.New(dintero.Config{AccountID: dinterotest.DefaultAccountID, ClientID: dinterotest.DefaultClientID,
		ClientSecret: dinterotest.DefaultClientSecret, APIURL: srv.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.startWorker(e.store(), gw)

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	m := nats.NewMsg(messages.SubjectChargeRequest)
	m.Data = chargeBody("traced", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"1", 100)
	m.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	m.Header.Set("tracestate", "vendor=abc")
	m.Header.Set("baggage", "tenant=acme")
	if _, err := e.js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	e.waitResults("traced", 1, 10*time.Second)

	// Spans: the request's, a child of the publisher's; its children.
	spans := exp.GetSpans()
	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	root, ok := byName["payworker charge"]
	if !ok || root.Parent.SpanID().String() != "00f067aa0ba902b7" || root.SpanContext.TraceID().String() != traceID {
		t.Fatalf("request span %+v; want a child of the publisher's span in its trace (spans: %v)", root.Name, names(spans))
	}
	for _, child := range []string{"claim", "dintero pay", "publish succeeded"} {
		s, ok := byName[child]
		if !ok || s.Parent.SpanID() != root.SpanContext.SpanID() {
			t.Errorf("span %q missing or not a child of the request's span (spans: %v)", child, names(spans))
		}
	}
	// Dintero got the trace context of its call's span, tracestate and baggage too.
	mu.Lock()
	h := seen["/v1/sessions/pay"]
	mu.Unlock()
	if tpHeader := h.Get("traceparent"); len(tpHeader) < 35 || tpHeader[3:35] != traceID ||
		tpHeader[36:52] != byName["dintero pay"].SpanContext.SpanID().String() {
		t.Errorf("Dintero saw traceparent %q, want the pay span's in trace %s", tpHeader, traceID)
	}
	if h.Get("tracestate") != "vendor=abc" || h.Get("baggage") != "tenant=acme" {
		t.Errorf("Dintero saw tracestate %q, baggage %q", h.Get("tracestate"), h.Get("baggage"))
	}
	// The result carries the trace on.
	results, _ := e.js.Stream(context.Background(), messages.StreamResults)
	raw, err := results.GetLastMsgForSubject(context.Background(), messages.ResultSubject(messages.KindCharge, messages.OutcomeSucceeded))
	if err != nil {
		t.Fatal(err)
	}
	if got := raw.Header.Get("traceparent"); len(got) < 35 || got[3:35] != traceID {
		t.Errorf("result traceparent %q, want trace %s", got, traceID)
	}
	if raw.Header.Get("tracestate") != "vendor=abc" || raw.Header.Get("baggage") != "tenant=acme" {
		t.Errorf("result tracestate %q, baggage %q", raw.Header.Get("tracestate"), raw.Header.Get("baggage"))
	}
	// Log lines of the request carry the trace.
	if !containsFold(e.logs.String(), `"trace_id":"`+traceID+`"`) {
		t.Errorf("no log line with trace_id %s", traceID)
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}
