package dintero

import "context"

type traceparentKey struct{}

// WithTraceparent returns a context whose Dintero calls carry the W3C
// traceparent header tp. The caller validates tp.
func WithTraceparent(ctx context.Context, tp string) context.Context {
	if tp == "" {
		return ctx
	}
	return context.WithValue(ctx, traceparentKey{}, tp)
}

func traceparentFrom(ctx context.Context) string {
	tp, _ := ctx.Value(traceparentKey{}).(string)
	return tp
}
