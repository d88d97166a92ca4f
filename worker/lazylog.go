package worker

import (
	"context"
	"log/slog"
	"slices"
)

// lazyWith returns l with attrs added to every record it logs, like
// l.With(attrs...), but without formatting them up front: slog's built-in
// handlers pre-format With attributes, which costs an allocation-heavy
// microsecond or two for every request, and most requests log nothing at
// the production level. The attributes are formatted only for a record
// that passes the level.
func lazyWith(l *slog.Logger, attrs ...slog.Attr) *slog.Logger {
	return slog.New(&lazyHandler{inner: l.Handler(), attrs: attrs})
}

// lazyHandler adds attrs to the records it handles.
type lazyHandler struct {
	inner slog.Handler
	attrs []slog.Attr
}

func (h *lazyHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

func (h *lazyHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.inner.WithAttrs(h.attrs).Handle(ctx, r)
}

func (h *lazyHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &lazyHandler{inner: h.inner, attrs: append(slices.Clip(h.attrs), attrs...)}
}

func (h *lazyHandler) WithGroup(name string) slog.Handler {
	return h.inner.WithAttrs(h.attrs).WithGroup(name)
}
