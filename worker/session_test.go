package worker_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/messages/publish"
	"github.com/payworker/payworker/worker"
)

const callbackSecret = "callback-secret-for-tests"

// citEnv is env plus the callback endpoint, served like the worker serves it.
type citEnv struct {
	*env
	callbackURL string
	store       *idempotency.Store
}

func newCITEnv(t *testing.T) *citEnv { return newCITEnvWith(t, false) }

// newCITEnvWith starts the worker with Config.CallbackURL set to the
// callback endpoint when override is true.
func newCITEnvWith(t *testing.T, override bool) *citEnv {
	t.Helper()
	e := newEnvWith(t, dinterotest.Options{Seed: 1, CallbackSecret: []byte(callbackSecret)})
	c := &citEnv{env: e, store: e.store()}
	gw := e.client(5 * time.Second)
	cb, err := worker.NewCallbacks(e.js, gw, c.store, worker.CallbackConfig{
		Secret: []byte(callbackSecret), AccountID: dinterotest.DefaultAccountID, Logger: e.cfg.Logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(worker.CallbackPath, cb)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c.callbackURL = srv.URL + worker.CallbackPath
	if override {
		e.cfg.CallbackURL = c.callbackURL
	}
	e.startWorker(c.store, gw)
	return c
}

// sessionBody is a "Use token" guide customer-initiated body.
func (c *citEnv) sessionBody(ref, provider, token string, amount int64) []byte {
	return fmt.Appendf(nil, `{
  "url": {"return_url": "https://example.com/thankyou", "callback_url": %q},
  "order": {"amount": %d, "currency": "NOK", "merchant_reference": %q},
  "customer": {"email": "john.doe@example.com", "phone_number": "+4799999999",
    "tokens": {%q: {"payment_token": %q}}},
  "profile_id": "default"
}`, c.callbackURL, amount, ref, provider, token)
}

func (c *citEnv) publishSession(body []byte) {
	c.t.Helper()
	// A Nats-Msg-Id of its own, so that a repeat is a second message
	// (with "" the reference is the id, and JetStream drops the repeat).
	id := fmt.Sprintf("session-test-%d", time.Now().UnixNano())
	if _, err := publish.SessionBody(c.t.Context(), c.js, body, id); err != nil {
		c.t.Fatalf("publish session: %v", err)
	}
}

// TestCustomerInitiatedFlow takes the "Use token" guide's three
// customer-initiated bodies as they are (messages/testdata/cit, token
// "sandbox-ok-1", callback_url https://example.com/callback) through the
// whole flow. The worker points Dintero at its own callback endpoint
// (Config.CallbackURL), as in production.
func TestCustomerInitiatedFlow(t *testing.T) {
	for _, provider := range providers {
		t.Run(provider, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("..", "messages", "testdata", "cit", strings.ReplaceAll(provider, ".", "_")+".json"))
			if err != nil {
				t.Fatal(err)
			}
			c := newCITEnvWith(t, true)
			const ref = "merchants_order_number"
			c.publishSession(body)
			created := c.waitSessionResults(ref, 1, 10*time.Second)[0]
			if created.Outcome != messages.OutcomeCreated || created.SessionID == "" || !strings.Contains(created.URL, created.SessionID) {
				t.Fatalf("created result %+v", created)
			}
			if created.Amount != 29990 || created.Currency != "NOK" {
				t.Errorf("created result %+v does not describe the order", created)
			}
			if _, err := c.sandbox.PaySession(created.SessionID, "123"); err != nil {
				t.Fatalf("customer pays: %v", err)
			}
			done := c.waitSessionResults(ref, 2, 10*time.Second)[1]
			if done.Outcome != messages.OutcomeCompleted || done.Status != dintero.StatusAuthorized || done.TransactionID == "" ||
				done.SessionID != created.SessionID || done.PaymentProductType != provider {
				t.Fatalf("completed result %+v", done)
			}
			if n := c.ledgerFor(ref); n != 1 {
				t.Fatalf("ledger has %d charges, want 1", n)
			}
			c.assertNoSecrets()
		})
	}
}

func TestRepeatedSessionRequestGetsSameSession(t *testing.T) {
	c := newCITEnv(t)
	body := c.sessionBody("cit-repeat", messages.ProductBamboraCreditcard, dinterotest.TokenAuthorized+"1", 500)
	c.publishSession(body)
	first := c.waitSessionResults("cit-repeat", 1, 10*time.Second)[0]
	c.publishSession(body)
	second := c.waitSessionResults("cit-repeat", 2, 10*time.Second)[1]
	if !second.Duplicate || second.SessionID != first.SessionID || second.URL != first.URL {
		t.Fatalf("repeat answered %+v, want the first session %+v", second, first)
	}
	if n := c.sandbox.Counters().SessionsCreated; n != 1 {
		t.Fatalf("Dintero created %d sessions, want 1", n)
	}
}

// TestSlowSessionKeptAlive: a session whose creation takes longer than
// AckWait (2s) and the claim's lease (1.5s) is kept alive like a charge, so
// it is neither redelivered nor created twice.
func TestSlowSessionKeptAlive(t *testing.T) {
	c := newCITEnv(t)
	// A first session fetches the access token before Dintero slows down.
	c.publishSession(c.sessionBody("cit-warm", messages.ProductPayExCreditcard, dinterotest.TokenAuthorized+"1", 500))
	c.waitSessionResults("cit-warm", 1, 10*time.Second)
	c.sandbox.SetFaults(dinterotest.Faults{Latency: 3500 * time.Millisecond})
	c.publishSession(c.sessionBody("cit-slow", messages.ProductPayExCreditcard, dinterotest.TokenAuthorized+"1", 500))
	r := c.waitSessionResults("cit-slow", 1, 30*time.Second)[0]
	if r.Outcome != messages.OutcomeCreated || r.Duplicate {
		t.Fatalf("got %+v, want one created session", r)
	}
	if n := c.sandbox.Counters().SessionsCreated; n != 2 {
		t.Fatalf("Dintero created %d sessions, want 2 (one per reference)", n)
	}
	c.assertNoMoreSessionResults("cit-slow", 1, 500*time.Millisecond)
}

func TestCallbackDeclineAndRedeliveries(t *testing.T) {
	c := newCITEnv(t)
	body := c.sessionBody("cit-decl", messages.ProductDinteroPSPCreditcard, dinterotest.TokenInsufficientFunds+"1", 500)
	// Failures are only called back with report_error=true, as Dintero does.
	body = []byte(strings.Replace(string(body), worker.CallbackPath, worker.CallbackPath+"?report_error=true", 1))
	c.publishSession(body)
	created := c.waitSessionResults("cit-decl", 1, 10*time.Second)[0]
	if _, err := c.sandbox.PaySession(created.SessionID, "123"); err != nil {
		t.Fatal(err)
	}
	failed := c.waitSessionResults("cit-decl", 2, 10*time.Second)[1]
	if failed.Outcome != messages.OutcomeFailed || failed.Error == nil {
		t.Fatalf("got %+v, want failed", failed)
	}
	// Issue 11: the callback maps a decline like a charge does (one
	// function, declineError): Dintero's code, message, types, retry codes
	// and retry_after, none of them dropped or blanked.
	e := failed.Error
	if e.Code != "INSUFFICIENT_FUNDS" || e.Message == "" || !slices.Contains(e.Types, "INSUFFICIENT_FUNDS") ||
		!slices.Equal(e.RetryCodes, []string{dintero.RetryAfterDelay}) || e.RetryAfter == nil {
		t.Fatalf("decline %+v; want code, message, types, RETRY_AFTER_DELAY and retry_after kept", e)
	}
	c.assertNoMoreSessionResults("cit-decl", 2, 300*time.Millisecond)
}

func TestCallbackSignatureRefused(t *testing.T) {
	c := newCITEnv(t)
	u, _ := url.Parse(c.callbackURL + "?transaction_id=T12345678.x&merchant_reference=r&session_id=s&time=2026-01-01T00:00:00Z")
	cases := []struct {
		name, header string
	}{
		{"missing", ""},
		{"wrong secret", dintero.SignCallback([]byte("not-the-secret"), dinterotest.DefaultAccountID, "GET", u, time.Now())},
		{"stale", dintero.SignCallback([]byte(callbackSecret), dinterotest.DefaultAccountID, "GET", u, time.Now().Add(-10*time.Minute))},
		{"other account", dintero.SignCallback([]byte(callbackSecret), "T87654321", "GET", u, time.Now())},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", u.String(), nil)
			if tc.header != "" {
				req.Header.Set(dintero.SignatureHeader, tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401 (a 4xx: Dintero must not retry a forgery)", resp.StatusCode)
			}
		})
	}
	// A correctly signed callback for a transaction Dintero does not know
	// gets a 5xx, so that a real delivery would be retried.
	req, _ := http.NewRequest("GET", u.String(), nil)
	req.Header.Set(dintero.SignatureHeader, dintero.SignCallback([]byte(callbackSecret), dinterotest.DefaultAccountID, "GET", u, time.Now()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 500 {
		t.Fatalf("signed callback for an unknown transaction: status %d, want 5xx", resp.StatusCode)
	}
}

// TestWorkerSetsTheCallbackURL: with Config.CallbackURL the worker points
// Dintero at its own endpoint, with report_error=true, whatever the
// publisher wrote; so a decline is called back and published as failed.
func TestWorkerSetsTheCallbackURL(t *testing.T) {
	c := newCITEnvWith(t, true)
	body := strings.Replace(string(c.sessionBody("cit-override", messages.ProductPayExCreditcard, dinterotest.TokenDoNotRetry+"1", 700)),
		c.callbackURL, "https://publisher.example.com/hook", 1)
	c.publishSession([]byte(body))
	created := c.waitSessionResults("cit-override", 1, 10*time.Second)[0]
	if _, err := c.sandbox.PaySession(created.SessionID, "1234"); err != nil {
		t.Fatal(err)
	}
	failed := c.waitSessionResults("cit-override", 2, 10*time.Second)[1]
	if failed.Outcome != messages.OutcomeFailed || failed.Error == nil || !slices.Contains(failed.Error.RetryCodes, dintero.RetryDoNotRetry) {
		t.Fatalf("got %+v, want failed with DO_NOT_RETRY", failed)
	}
}
