package dintero

import (
	"context"
	"net/http"
)

type traceKey struct{}

// WithTraceHeaders returns a context whose Dintero calls carry the given
// trace context headers (W3C traceparent, tracestate, baggage), as an
// OpenTelemetry propagator writes them into a carrier. The caller makes
// them; the client only copies them onto every request of the call.
func WithTraceHeaders(ctx context.Context, h http.Header) context.Context {
	if len(h) == 0 {
		return ctx
	}
	return context.WithValue(ctx, traceKey{}, h)
}

// WithTraceparent is WithTraceHeaders with a traceparent alone.
func WithTraceparent(ctx context.Context, tp string) context.Context {
	if tp == "" {
		return ctx
	}
	return WithTraceHeaders(ctx, http.Header{"Traceparent": {tp}})
}

func traceHeaders(ctx context.Context) http.Header {
	h, _ := ctx.Value(traceKey{}).(http.Header)
	return h
}
