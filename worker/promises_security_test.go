package worker_test

// Issue 12, items 11, 13 and 14: tokens, limits and callbacks behind a proxy.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
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

// Issue 12 item 14: behind a proxy that rewrites the host and the path, a
// callback Dintero signed for the public URL (CallbackConfig.PublicURL,
// PAYWORKER_CALLBACK_URL) is accepted, and the session's result published.
func TestIssue12Item14CallbackBehindRewritingProxy(t *testing.T) {
	const public = "https://pay.example/hooks/dintero"
	// The proxy's address is needed before the sandbox starts, its target
	// (the worker's endpoint) only after.
	var internal atomic.Pointer[url.URL]
	proxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		in := internal.Load()
		pr.Out.URL.Scheme, pr.Out.URL.Host, pr.Out.Host = in.Scheme, in.Host, in.Host
		pr.Out.URL.Path, pr.Out.URL.RawPath = worker.CallbackPath, ""
		pr.SetXForwarded()
	}})
	t.Cleanup(proxy.Close)
	// Dintero's requests to https://pay.example/... reach the proxy.
	toProxy := &http.Client{Transport: i12RouteTo(proxy.Listener.Addr().String())}
	e := newEnvWith(t, dinterotest.Options{Seed: 1, CallbackSecret: []byte(i12CallbackSecret), CallbackHTTPClient: toProxy, CallbackRetries: -1})
	store := e.store()
	cb := i12Callbacks(t, e, store, worker.CallbackConfig{PublicURL: public})
	u, err := url.Parse(cb)
	if err != nil {
		t.Fatal(err)
	}
	internal.Store(u)
	e.cfg.CallbackURL = public
	e.startWorker(store, e.client(5*time.Second))

	const ref = "i12-14-proxied"
	i12PublishSession(e, i12SessionBody(ref, messages.ProductPayExCreditcard, dinterotest.TokenAuthorized+"1", 1200, ""))
	created := e.waitSessionResults(ref, 1, 10*time.Second)[0]
	if created.Outcome != messages.OutcomeCreated {
		t.Fatalf("session: %+v, want created", created)
	}
	if _, err := e.sandbox.PaySession(created.SessionID, "123"); err != nil {
		t.Fatal(err)
	}
	i12Wait(t, 10*time.Second, "the callback is answered", func() bool {
		c := e.sandbox.Counters()
		return c.CallbacksDelivered+c.CallbackFailures > 0
	})
	if c := e.sandbox.Counters(); c.CallbacksDelivered != 1 {
		t.Errorf("callbacks delivered %d, failed %d; want the one delivered (a 401 is never retried by Dintero)", c.CallbacksDelivered, c.CallbackFailures)
	}
	if r := e.waitSessionResults(ref, 2, 5*time.Second)[1]; r.Outcome != messages.OutcomeCompleted {
		t.Errorf("result %+v, want completed", r)
	}
}

// i12RouteTo sends every request to addr over plain HTTP, keeping the URL's
// host as the Host header: a stand-in for DNS and TLS in front of a proxy.
type i12RouteTo string

func (a i12RouteTo) RoundTrip(r *http.Request) (*http.Response, error) {
	out := r.Clone(r.Context())
	out.Host = r.URL.Host
	out.URL.Scheme, out.URL.Host = "http", string(a)
	return http.DefaultTransport.RoundTrip(out)
}
