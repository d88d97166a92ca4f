package worker_test

// Issue 12, items 11, 13 and 14: tokens, limits and callbacks behind a proxy.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/worker"
)

// Issue 12 item 11: a card token Dintero echoes in a decline message never
// reaches a result, a stored record or a log line: not for a charge, not
// for a customer's payment reported by callback.
func TestIssue12Item11EchoedTokenScrubbed(t *testing.T) {
	e := newEnvWith(t, dinterotest.Options{Seed: 1, CallbackSecret: []byte(i12CallbackSecret)})
	store := e.store()
	e.cfg.CallbackURL = i12Callbacks(t, e, store, worker.CallbackConfig{Logger: e.cfg.Logger})
	e.startWorker(store, e.client(5*time.Second))
	const token = dinterotest.TokenEchoDecline + "4925000000000004"

	e.publish(chargeBody("i12-11-charge", messages.ProductDinteroPSPCreditcard, messages.OperationUnscheduledPurchase, token, 300))
	if r := e.waitResults("i12-11-charge", 1, 10*time.Second)[0]; r.Outcome != messages.OutcomeDeclined {
		t.Fatalf("charge: %+v, want declined", r)
	}
	i12PublishSession(e, i12SessionBody("i12-11-session", messages.ProductDinteroPSPCreditcard, token, 300, ""))
	created := e.waitSessionResults("i12-11-session", 1, 10*time.Second)[0]
	if created.Outcome != messages.OutcomeCreated {
		t.Fatalf("session: %+v, want created", created)
	}
	if _, err := e.sandbox.PaySession(created.SessionID, "123"); err != nil {
		t.Fatal(err)
	}
	if r := e.waitSessionResults("i12-11-session", 2, 10*time.Second)[1]; r.Outcome != messages.OutcomeFailed {
		t.Fatalf("callback result: %+v, want failed", r)
	}
	echoed := 0
	for _, tx := range e.sandbox.Transactions() {
		if le := tx.LastError(); le != nil && strings.Contains(le.Message, token) {
			echoed++
		}
	}
	if echoed != 2 {
		t.Fatalf("%d of the sandbox's transactions quote the token, want 2: the test proves nothing", echoed)
	}

	e.assertNoSecrets(token) // results and log lines
	for key, v := range i12RedisContents(t, e) {
		if strings.Contains(v, token) {
			t.Errorf("Redis key %s holds the card token", key)
		}
	}
}

// i12RedisContents returns every string in Redis by key (a hash's fields
// joined), whatever the key space.
func i12RedisContents(t *testing.T, e *env) map[string]string {
	t.Helper()
	ctx := context.Background()
	keys, err := e.rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		var v string
		switch typ, _ := e.rdb.Type(ctx, k).Result(); typ {
		case "hash":
			m, err := e.rdb.HGetAll(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			for f, x := range m {
				v += f + "=" + x + "\n"
			}
		case "string":
			v, _ = e.rdb.Get(ctx, k).Result()
		default:
			v, _ = e.rdb.Dump(ctx, k).Result()
		}
		out[k] = v
	}
	return out
}

// Issue 12 item 13: the callback endpoint refuses an oversized query (414)
// or body (413) before any work, signature check included, and logs bad
// signatures sparingly.
func TestIssue12Item13CallbackLimits(t *testing.T) {
	e := newEnv(t)
	var logs logBuffer
	cb := i12Callbacks(t, e, e.store(), worker.CallbackConfig{
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	do := func(method, u string, body io.Reader, signature string) int {
		t.Helper()
		req, err := http.NewRequest(method, u, body)
		if err != nil {
			t.Fatal(err)
		}
		if signature != "" {
			req.Header.Set(dintero.SignatureHeader, signature)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	t.Run("query over 8 KiB", func(t *testing.T) {
		if code := do(http.MethodGet, cb+"?transaction_id=x&pad="+strings.Repeat("a", 8<<10), nil, ""); code != http.StatusRequestURITooLong {
			t.Errorf("status %d, want 414", code)
		}
	})
	t.Run("body over 64 KiB", func(t *testing.T) {
		if code := do(http.MethodPost, cb+"?transaction_id=x", strings.NewReader(strings.Repeat("a", 64<<10+1)), ""); code != http.StatusRequestEntityTooLarge {
			t.Errorf("status %d, want 413", code)
		}
	})
	t.Run("bad signatures", func(t *testing.T) {
		before := strings.Count(logs.String(), `"level":"WARN"`)
		forged := "t=" + strconv.FormatInt(time.Now().Unix(), 10) + ",v0-hmac-sha256=" + strings.Repeat("00", 32)
		for i := range 2000 {
			if code := do(http.MethodGet, fmt.Sprintf("%s?transaction_id=T%d&merchant_reference=r", cb, i), nil, forged); code != http.StatusUnauthorized {
				t.Fatalf("request %d: status %d, want 401", i, code)
			}
		}
		if n := strings.Count(logs.String(), `"level":"WARN"`) - before; n > 10 {
			t.Errorf("2,000 requests with bad signatures logged %d warnings, want at most 10", n)
		}
	})
}
