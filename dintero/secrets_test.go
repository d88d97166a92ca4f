package dintero

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSecretsNeverLeak drives every error path with a debug logger and
// checks that no error string or log line carries the client secret, an
// access token, a card token or any part of a request body, even when the
// server echoes them back.
func TestSecretsNeverLeak(t *testing.T) {
	const cardToken = "card-token-SECRET-123"
	secrets := []string{testSecret, "xyzzy", cardToken, "body-marker@example.com", "recurrence_token"}

	// echo is what a careless server might send back: the client secret,
	// the bearer token and the card token of the request, if it had one.
	echo := func(r *http.Request, body []byte) string {
		card := ""
		if strings.Contains(string(body), cardToken) {
			card = cardToken
		}
		return fmt.Sprintf("echo %s %s %s", testSecret, card, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	}
	tests := []struct {
		name  string
		token func(w http.ResponseWriter, r *http.Request, n int64) // nil = default
		api   func(w http.ResponseWriter, r *http.Request, body []byte, n int64)
		mod   func(*Config)
	}{
		{name: "success", api: func(w http.ResponseWriter, r *http.Request, _ []byte, _ int64) {
			writeJSON(w, 200, authorizedTx("ref-1"))
		}},
		{name: "decline echoing secrets", api: func(w http.ResponseWriter, r *http.Request, body []byte, _ int64) {
			tx := failedTx("ref-1", "DECLINED", RetryDoNotRetry)
			tx.Events[0].Error.Message = echo(r, body)
			writeJSON(w, 200, tx)
		}},
		{name: "400 echoing secrets", api: func(w http.ResponseWriter, r *http.Request, body []byte, _ int64) {
			writeErr(w, 400, "INVALID", echo(r, body))
		}},
		{name: "500 echoing secrets", api: func(w http.ResponseWriter, r *http.Request, body []byte, _ int64) {
			writeErr(w, 500, "INTERNAL", echo(r, body))
		}},
		{name: "429 then give up", api: func(w http.ResponseWriter, r *http.Request, body []byte, _ int64) {
			writeErr(w, 429, "RATE", echo(r, body))
		}},
		{name: "timeout", mod: func(c *Config) { c.Timeout = 100 * time.Millisecond }, api: blockUntilClientGone},
		{name: "reset", api: func(w http.ResponseWriter, r *http.Request, _ []byte, _ int64) { resetConn(t, w) }},
		{name: "401 twice", api: func(w http.ResponseWriter, r *http.Request, body []byte, _ int64) {
			writeErr(w, 401, "UNAUTHORIZED", echo(r, body))
		}},
		{name: "token endpoint refuses, echoing basic auth", token: func(w http.ResponseWriter, r *http.Request, _ int64) {
			_, pass, _ := r.BasicAuth()
			writeErr(w, 401, "INVALID_CLIENT", "bad secret "+pass+" "+r.Header.Get("Authorization"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.token = tt.token
			f.api = tt.api
			var text, js logBuffer
			logger := slog.New(multiHandler{
				slog.NewTextHandler(&text, &slog.HandlerOptions{Level: slog.LevelDebug}),
				slog.NewJSONHandler(&js, &slog.HandlerOptions{Level: slog.LevelDebug}),
			})
			c := newTestClient(t, f, func(cfg *Config) {
				cfg.Logger = logger
				if tt.mod != nil {
					tt.mod(cfg)
				}
			})
			logger.Debug("config", "config", c.cfg, "client", c)

			var outputs []string
			ctx := context.Background()
			for op, call := range ops {
				err := call(ctx, c)
				if err != nil {
					outputs = append(outputs, op+": "+err.Error(), fmt.Sprintf("%v|%+v|%s", err, err, err))
					if e := (*Error)(nil); errors.As(err, &e) {
						outputs = append(outputs, e.Message)
					}
				}
			}
			outputs = append(outputs, text.String(), js.String())
			if text.String() == "" {
				t.Fatal("no log output captured; the test would prove nothing")
			}
			for _, out := range outputs {
				for _, s := range secrets {
					if strings.Contains(out, s) {
						t.Errorf("output leaks %q:\n%s", s, out)
					}
				}
			}
		})
	}
}

// multiHandler fans records out to several handlers.
type multiHandler []slog.Handler

func (m multiHandler) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range m {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (m multiHandler) Handle(ctx context.Context, r slog.Record) error {
	for _, h := range m {
		if err := h.Handle(ctx, r.Clone()); err != nil {
			return err
		}
	}
	return nil
}

func (m multiHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(multiHandler, len(m))
	for i, h := range m {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (m multiHandler) WithGroup(g string) slog.Handler {
	out := make(multiHandler, len(m))
	for i, h := range m {
		out[i] = h.WithGroup(g)
	}
	return out
}
