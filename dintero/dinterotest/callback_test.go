package dinterotest_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
)

var cbSecret = []byte("sandbox-signature-secret")

// fastCallbacks are Options for callback tests: signed, quick retries.
func fastCallbacks(retries int) dinterotest.Options {
	return dinterotest.Options{CallbackSecret: cbSecret, CallbackRetries: retries, CallbackBackoff: 5 * time.Millisecond}
}

func TestCallbackSigned(t *testing.T) {
	tests := []struct {
		name       string
		query      string // added to the callback_url
		wantMethod string
		sidParam   string
	}{
		{"GET by default", "", http.MethodGet, "session_id"},
		{"method=GET", "?method=GET", http.MethodGet, "session_id"},
		{"method=POST", "?method=POST", http.MethodPost, "session_id"},
		{"own params kept, sid_parameter_name", "?shop=a+b&sid_parameter_name=sid", http.MethodGet, "sid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, cbSecret, nil)
			a := newAPI(t, fastCallbacks(0))
			ref := "cit-cb-" + strings.ReplaceAll(tt.name, " ", "-")
			id, _ := a.createSession(citBody(ref, dinterotest.TokenAuthorized+citSecretMarker, rc.srv.URL+"/dintero/callback"+tt.query))
			before := time.Now().UTC().Truncate(time.Second)
			tx, err := a.sb.PaySession(id, "123")
			if err != nil {
				t.Fatal(err)
			}
			c := rc.next(t)
			if c.method != tt.wantMethod || c.url.Path != "/dintero/callback" {
				t.Errorf("%s %s", c.method, c.url)
			}
			if c.verifyErr != nil {
				t.Errorf("signature: %v (header %q)", c.verifyErr, c.header.Get(dintero.SignatureHeader))
			}
			q := c.url.Query()
			if q.Get("transaction_id") != tx.ID || q.Get(tt.sidParam) != id || q.Get("merchant_reference") != ref || q.Has("error") {
				t.Errorf("query %v", q)
			}
			if tt.sidParam != "session_id" && q.Has("session_id") {
				t.Errorf("session_id sent beside %s: %v", tt.sidParam, q)
			}
			at, err := time.Parse(time.RFC3339, q.Get("time"))
			if err != nil || at.Before(before) || at.After(time.Now().Add(time.Second)) {
				t.Errorf("time %q: %v", q.Get("time"), err)
			}
			if own, _ := url.ParseQuery(strings.TrimPrefix(tt.query, "?")); len(own) > 0 {
				for k, v := range own {
					if q.Get(k) != v[0] {
						t.Errorf("own param %s=%q lost: %v", k, v[0], q)
					}
				}
			}
			if ed := c.header.Get(dintero.EventDeliveryHeader); len(ed) < 16 {
				t.Errorf("event-delivery %q", ed)
			}
			if tt.wantMethod == http.MethodPost {
				var body dintero.Transaction
				if err := json.Unmarshal(c.body, &body); err != nil || body.ID != tx.ID || body.Status != dintero.StatusAuthorized {
					t.Errorf("POST body %s: %v", c.body, err)
				}
				if ct := c.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q", ct)
				}
			} else if len(c.body) != 0 {
				t.Errorf("GET with a body: %s", c.body)
			}
			if strings.Contains(c.url.String()+string(c.body), citSecretMarker) {
				t.Error("the callback carries the card token")
			}
			waitFor(t, "delivered", func() bool { return a.sb.Counters().CallbacksDelivered == 1 })
			if c := a.sb.Counters(); c.CallbacksSent != 1 || c.CallbackFailures != 0 {
				t.Errorf("counters %+v", c)
			}
			// A signature made with another secret is refused.
			r, _ := http.NewRequest(c.method, rc.srv.URL+c.url.RequestURI(), nil)
			r.Host = strings.TrimPrefix(rc.srv.URL, "http://")
			r.Header = c.header
			if err := dintero.VerifyCallback(r, []byte("other"), dinterotest.DefaultAccountID, time.Time{}, 0); !errors.Is(err, dintero.ErrSignatureInvalid) {
				t.Errorf("verify with another secret: %v", err)
			}
		})
	}
}

func TestCallbackUnsigned(t *testing.T) {
	rc := newReceiver(t, cbSecret, nil)
	a := newAPI(t, dinterotest.Options{})
	id, _ := a.createSession(citBody("cit-unsigned", dinterotest.TokenAuthorized+"x", rc.srv.URL+"/cb"))
	if _, err := a.sb.PaySession(id, "123"); err != nil {
		t.Fatal(err)
	}
	c := rc.next(t)
	if h := c.header.Get(dintero.SignatureHeader); h != "" || !errors.Is(c.verifyErr, dintero.ErrSignatureMissing) {
		t.Errorf("signature header %q, verify %v", h, c.verifyErr)
	}
	if c.header.Get(dintero.EventDeliveryHeader) == "" {
		t.Error("no event-delivery header")
	}
}

func TestCallbackRetries(t *testing.T) {
	tests := []struct {
		name          string
		retries       int
		status        func(n int) int
		hang          func(n int) bool
		wantAttempts  int
		wantDelivered int64
	}{
		{"500 then 200", 5, func(n int) int { return map[bool]int{true: 500, false: 200}[n == 1] }, nil, 2, 1},
		{"503 twice then 204", 5, func(n int) int { return map[bool]int{true: 503, false: 204}[n <= 2] }, nil, 3, 1},
		{"timeout then 200", 5, nil, func(n int) bool { return n == 1 }, 2, 1},
		{"404 is not retried", 5, func(int) int { return 404 }, nil, 1, 0},
		{"400 is not retried", 5, func(int) int { return 400 }, nil, 1, 0},
		{"retries exhausted", 2, func(int) int { return 502 }, nil, 3, 0},
		{"no retries", -1, func(int) int { return 500 }, nil, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, cbSecret, tt.status)
			rc.hang = tt.hang
			opts := fastCallbacks(tt.retries)
			opts.CallbackTimeout = 200 * time.Millisecond
			a := newAPI(t, opts)
			id, _ := a.createSession(citBody("cit-retry", dinterotest.TokenAuthorized+"x", rc.srv.URL+"/cb"))
			if _, err := a.sb.PaySession(id, "123"); err != nil {
				t.Fatal(err)
			}
			var ids []string
			for range tt.wantAttempts {
				c := rc.next(t)
				if c.verifyErr != nil {
					t.Errorf("attempt %d signature: %v", len(ids)+1, c.verifyErr)
				}
				ids = append(ids, c.header.Get(dintero.EventDeliveryHeader))
			}
			waitFor(t, "the delivery to end", func() bool {
				c := a.sb.Counters()
				return c.CallbacksDelivered+c.CallbackFailures == 1
			})
			// Close waits for every delivery: nothing more can come after.
			if err := a.sb.Close(); err != nil {
				t.Fatal(err)
			}
			rc.none(t)
			for _, id := range ids {
				if id == "" || id != ids[0] {
					t.Errorf("event-delivery ids %q: want one id on every attempt", ids)
					break
				}
			}
			c := a.sb.Counters()
			if c.CallbacksSent != int64(tt.wantAttempts) || c.CallbacksDelivered != tt.wantDelivered ||
				c.CallbackFailures != 1-tt.wantDelivered {
				t.Errorf("counters %+v", c)
			}
		})
	}
}

func TestCallbackDistinctDeliveries(t *testing.T) {
	rc := newReceiver(t, cbSecret, nil)
	a := newAPI(t, fastCallbacks(0))
	seen := map[string]bool{}
	for _, ref := range []string{"cit-d1", "cit-d2"} {
		id, _ := a.createSession(citBody(ref, dinterotest.TokenAuthorized+"x", rc.srv.URL+"/cb"))
		if _, err := a.sb.PaySession(id, "123"); err != nil {
			t.Fatal(err)
		}
		seen[rc.next(t).header.Get(dintero.EventDeliveryHeader)] = true
	}
	if len(seen) != 2 {
		t.Errorf("event-delivery ids %v: want one per delivery", seen)
	}
}

func TestCallbackDeclined(t *testing.T) {
	tests := []struct {
		name         string
		token        string
		query        string
		wantStatus   string
		wantCallback bool
	}{
		{"insufficient funds, no report_error", dinterotest.TokenInsufficientFunds, "", dintero.StatusFailed, false},
		{"do not retry, no report_error", dinterotest.TokenDoNotRetry, "?method=GET", dintero.StatusDeclined, false},
		{"expired card, report_error=true", dinterotest.TokenExpiredCard, "?report_error=true", dintero.StatusFailed, true},
		{"insufficient funds, report_error=true, POST", dinterotest.TokenInsufficientFunds, "?report_error=true&method=POST", dintero.StatusFailed, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, cbSecret, nil)
			a := newAPI(t, fastCallbacks(0))
			id, pageURL := a.createSession(citBody("cit-decline", tt.token+"x", rc.srv.URL+"/cb"+tt.query))
			p := fetch(t, http.MethodPost, pageURL+"/pay", url.Values{"cvc": {"999"}})
			if p.status != http.StatusSeeOther {
				t.Fatalf("pay: %d %s", p.status, p.body)
			}
			loc, _ := url.Parse(p.location)
			if loc.Query().Get("error") != "authorization" || loc.Query().Get("merchant_reference") != "cit-decline" {
				t.Errorf("Location %s", p.location)
			}
			txs := a.sb.Transactions()
			if len(txs) != 1 || txs[0].Status != tt.wantStatus || txs[0].SessionID != id || txs[0].LastError() == nil ||
				txs[0].LastError().RetryPolicy == nil {
				t.Fatalf("transactions %+v", txs)
			}
			if n := len(a.sb.Ledger()); n != 0 {
				t.Errorf("a decline is in the ledger (%d entries)", n)
			}
			if c := a.sb.Counters(); c.SessionsPaid != 1 || c.Declined != 1 || c.Authorized != 0 {
				t.Errorf("counters %+v", c)
			}
			if !tt.wantCallback {
				if err := a.sb.Close(); err != nil {
					t.Fatal(err)
				}
				rc.none(t)
				if c := a.sb.Counters(); c.CallbacksSent != 0 {
					t.Errorf("counters %+v", c)
				}
				return
			}
			c := rc.next(t)
			q := c.url.Query()
			if c.verifyErr != nil || q.Get("transaction_id") != txs[0].ID || q.Get("error") != "authorization" ||
				q.Get("session_id") != id || q.Get("report_error") != "true" {
				t.Errorf("callback %s %v (verify %v)", c.method, q, c.verifyErr)
			}
		})
	}
}

func TestCallbackNoCallbackURL(t *testing.T) {
	a := newAPI(t, fastCallbacks(0))
	id, _ := a.createSession(citBody("cit-none", dinterotest.TokenAuthorized+"x", ""))
	if _, err := a.sb.PaySession(id, "123"); err != nil {
		t.Fatal(err)
	}
	if err := a.sb.Close(); err != nil {
		t.Fatal(err)
	}
	if c := a.sb.Counters(); c.CallbacksSent != 0 || c.CallbackFailures != 0 {
		t.Errorf("counters %+v", c)
	}
}

// TestCallbackCloseCancels checks that Close does not wait for a hanging
// merchant: it cancels the delivery.
func TestCallbackCloseCancels(t *testing.T) {
	rc := newReceiver(t, cbSecret, nil)
	rc.hang = func(int) bool { return true }
	a := newAPI(t, dinterotest.Options{CallbackSecret: cbSecret}) // 10 s attempts
	id, _ := a.createSession(citBody("cit-hang", dinterotest.TokenAuthorized+"x", rc.srv.URL+"/cb"))
	later, _ := a.createSession(citBody("cit-later", dinterotest.TokenAuthorized+"x", rc.srv.URL+"/cb"))
	if _, err := a.sb.PaySession(id, "123"); err != nil {
		t.Fatal(err)
	}
	rc.next(t)
	start := time.Now()
	if err := a.sb.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %s", d)
	}
	if c := a.sb.Counters(); c.CallbackFailures != 1 || c.CallbacksDelivered != 0 {
		t.Errorf("counters %+v", c)
	}
	// After Close a payment still records, but no callback starts.
	if _, err := a.sb.PaySession(later, "123"); err != nil {
		t.Fatal(err)
	}
	rc.none(t)
	if c := a.sb.Counters(); c.CallbackFailures != 2 || c.CallbacksSent != 1 {
		t.Errorf("counters after Close %+v", c)
	}
}

// TestCITSeeds runs the guide's three customer-initiated bodies end to end:
// the client creates the session, the customer pays it, the merchant gets
// a signed callback and fetches the transaction.
func TestCITSeeds(t *testing.T) {
	for _, provider := range []string{"payex", "bambora", "dintero_psp"} {
		t.Run(provider, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "seed_cit_"+provider+".json"))
			if err != nil {
				t.Fatal(err)
			}
			rc := newReceiver(t, cbSecret, nil)
			sb := dinterotest.Start(t, fastCallbacks(0))
			client, err := dintero.New(dintero.Config{
				AccountID:    dinterotest.DefaultAccountID,
				ClientID:     dinterotest.DefaultClientID,
				ClientSecret: dinterotest.DefaultClientSecret,
				APIURL:       sb.URL(),
			})
			if err != nil {
				t.Fatal(err)
			}
			body := strings.Replace(string(raw), "<token previously acquired>", dinterotest.TokenAuthorized+citSecretMarker, 1)
			body = strings.Replace(body, "https://example.com/callback", rc.srv.URL+"/callback", 1)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			created, err := client.CreateSessionProfile(ctx, []byte(body))
			if err != nil {
				t.Fatal(err)
			}
			if created.URL != sb.URL()+"/v1/view/"+created.ID {
				t.Errorf("url %q", created.URL)
			}
			if p := fetch(t, http.MethodGet, created.URL, nil); p.status != http.StatusOK || !strings.Contains(p.body, "merchants_order_number") {
				t.Errorf("page %d %s", p.status, p.body)
			}
			tx, err := sb.PaySession(created.ID, "737")
			if err != nil {
				t.Fatal(err)
			}
			product := provider + ".creditcard"
			if tx.Status != dintero.StatusAuthorized || tx.PaymentProductType != product || tx.Amount != 29990 ||
				tx.MerchantReference != "merchants_order_number" || tx.SessionID != created.ID {
				t.Errorf("transaction %+v", tx)
			}
			c := rc.next(t)
			if c.verifyErr != nil || c.method != http.MethodGet {
				t.Fatalf("callback %s: %v", c.method, c.verifyErr)
			}
			// What the worker's callback endpoint does: verify, then fetch.
			got, err := client.GetTransaction(ctx, c.url.Query().Get("transaction_id"))
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != tx.ID || got.Status != dintero.StatusAuthorized || got.PaymentProductType != product {
				t.Errorf("fetched %+v", got)
			}
			if l := sb.Ledger(); len(l) != 1 || l[0].TransactionID != tx.ID {
				t.Errorf("ledger %+v", l)
			}
		})
	}
}
