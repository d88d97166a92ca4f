package worker

import (
	"bytes"
	"log/slog"
	"testing"
)

// lazyWith must log exactly what With logs.
func TestLazyWithMatchesWith(t *testing.T) {
	attrs := []slog.Attr{slog.String("merchant_reference", "order-1"), slog.Uint64("stream_seq", 42), slog.Uint64("attempt", 2)}
	args := []any{"merchant_reference", "order-1", "stream_seq", uint64(42), "attempt", uint64(2)}
	tests := []struct {
		name string
		log  func(*slog.Logger)
		base func(*slog.Logger) *slog.Logger
	}{
		{"warn", func(l *slog.Logger) { l.Warn("retrying", "delay", 5) }, nil},
		{"below level", func(l *slog.Logger) { l.Debug("hidden", "x", 1) }, nil},
		{"With on top", func(l *slog.Logger) { l.With("kind", "session").Error("failed", "err", "boom") }, nil},
		{"group on top", func(l *slog.Logger) { l.WithGroup("g").Info("grouped", "k", "v") }, nil},
		{"base with attrs and group", func(l *slog.Logger) { l.Info("done") },
			func(l *slog.Logger) *slog.Logger { return l.With("component", "worker").WithGroup("req") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want, got bytes.Buffer
			opts := &slog.HandlerOptions{Level: slog.LevelInfo, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}}
			wl, gl := slog.New(slog.NewJSONHandler(&want, opts)), slog.New(slog.NewJSONHandler(&got, opts))
			if tt.base != nil {
				wl, gl = tt.base(wl), tt.base(gl)
			}
			tt.log(wl.With(args...))
			tt.log(lazyWith(gl, attrs...))
			if want.String() != got.String() {
				t.Errorf("With logged\n%s\nlazyWith logged\n%s", want.String(), got.String())
			}
		})
	}
}
