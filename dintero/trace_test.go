package dintero_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/payworker/payworker/dintero"
)

func TestTraceparentSentToDintero(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		seen[r.URL.Path] = r.Header.Get("traceparent")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/auth/token") {
			_, _ = io.WriteString(w, `{"access_token":"a","token_type":"Bearer","expires_in":3600}`)
			return
		}
		_, _ = io.WriteString(w, `{"id":"T12345678.x","status":"AUTHORIZED"}`)
	}))
	defer srv.Close()
	c, err := dintero.New(dintero.Config{AccountID: "T12345678", ClientID: "id", ClientSecret: "secret", APIURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if _, err := c.PaySession(dintero.WithTraceparent(context.Background(), tp), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if got := seen["/v1/sessions/pay"]; got != tp {
		t.Fatalf("pay carried traceparent %q, want %q", got, tp)
	}
	if _, err := c.GetTransaction(context.Background(), "T12345678.x"); err != nil {
		t.Fatal(err)
	}
	if got := seen["/v1/transactions/T12345678.x"]; got != "" {
		t.Fatalf("a call without trace context carried traceparent %q", got)
	}
}
