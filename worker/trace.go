package worker

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/payworker/payworker/dintero"
)

// Tracing. A request's W3C trace context (traceparent, tracestate,
// baggage) is taken from its headers; the request gets a span of its own
// ("payworker <kind>"), with child spans for the claim, each Dintero call
// and the publish of its result; the trace context goes on to Dintero (as
// HTTP headers), to the result and to any scheduled copy of the request.
// With no tracer configured (OpenTelemetry's default no-op) the spans cost
// nothing and the request's trace context still passes through unchanged.

// tracerName is the instrumentation scope of the worker's spans.
const tracerName = "github.com/payworker/payworker/worker"

// DefaultPropagator is the W3C trace context and baggage.
func DefaultPropagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// natsCarrier reads and writes trace context in NATS headers, whose keys
// are exact (traceparent, tracestate, baggage in lower case).
type natsCarrier nats.Header

func (c natsCarrier) Get(key string) string { return nats.Header(c).Get(key) }
func (c natsCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }
func (c natsCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// startRequest extracts a request's trace context from its headers and
// starts its span.
func (w *Worker) startRequest(ctx context.Context, d *delivery) (context.Context, trace.Span) {
	ctx = w.cfg.Propagator.Extract(ctx, natsCarrier(d.msg.Headers()))
	return w.cfg.Tracer.Start(ctx, "payworker "+d.kind.name, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", d.msg.Subject()),
			attribute.Int64("messaging.message.sequence", int64(d.seq)),
			attribute.Int64("messaging.delivery.attempt", int64(d.delivered))))
}

// inject writes ctx's trace context into NATS headers.
func (w *Worker) inject(ctx context.Context, h nats.Header) {
	w.cfg.Propagator.Inject(ctx, natsCarrier(h))
}

// traceAttrs are the trace and span ids of ctx for a log line, when it has
// a span.
func traceAttrs(ctx context.Context) []slog.Attr {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return nil
	}
	return []slog.Attr{slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String())}
}

// endSpan records err on span and ends it.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// tracedGateway gives every Dintero call a span of its own and sends its
// trace context to Dintero.
type tracedGateway struct {
	Gateway
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
}

func (g tracedGateway) start(ctx context.Context, op string) (context.Context, trace.Span) {
	ctx, span := g.tracer.Start(ctx, "dintero "+op, trace.WithSpanKind(trace.SpanKindClient))
	h := http.Header{}
	g.propagator.Inject(ctx, propagation.HeaderCarrier(h))
	return dintero.WithTraceHeaders(ctx, h), span
}

func (g tracedGateway) PaySession(ctx context.Context, body []byte, opts ...dintero.CallOption) (*dintero.Transaction, error) {
	ctx, span := g.start(ctx, dintero.OpPay)
	tx, err := g.Gateway.PaySession(ctx, body, opts...)
	if tx != nil {
		span.SetAttributes(attribute.String("dintero.transaction.status", tx.Status))
	}
	endSpan(span, err)
	return tx, err
}

func (g tracedGateway) TransactionsByMerchantReference(ctx context.Context, ref string) ([]dintero.Transaction, error) {
	ctx, span := g.start(ctx, dintero.OpListTransactions)
	txs, err := g.Gateway.TransactionsByMerchantReference(ctx, ref)
	endSpan(span, err)
	return txs, err
}

func (g tracedGateway) CreateSessionProfile(ctx context.Context, body []byte, opts ...dintero.CallOption) (*dintero.SessionCreated, error) {
	ctx, span := g.start(ctx, dintero.OpCreateSession)
	s, err := g.Gateway.CreateSessionProfile(ctx, body, opts...)
	endSpan(span, err)
	return s, err
}

func (g tracedGateway) SessionsByMerchantReference(ctx context.Context, ref string) ([]dintero.Session, error) {
	ctx, span := g.start(ctx, dintero.OpListSessions)
	ss, err := g.Gateway.SessionsByMerchantReference(ctx, ref)
	endSpan(span, err)
	return ss, err
}

func (g tracedGateway) CancelSession(ctx context.Context, id string) (*dintero.Session, error) {
	ctx, span := g.start(ctx, dintero.OpCancelSession)
	s, err := g.Gateway.CancelSession(ctx, id)
	endSpan(span, err)
	return s, err
}

func (g tracedGateway) GetTransaction(ctx context.Context, id string, includes ...string) (*dintero.Transaction, error) {
	ctx, span := g.start(ctx, dintero.OpGetTransaction)
	tx, err := g.Gateway.GetTransaction(ctx, id, includes...)
	endSpan(span, err)
	return tx, err
}

// defaultTracer is the global tracer provider's (a no-op unless the
// process installed one).
func defaultTracer() trace.Tracer { return otel.Tracer(tracerName) }
