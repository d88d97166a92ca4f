package worker_test

// Issue 12, items 8 and 9: what a merchant_reference may reach.

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/worker"
)

// Issue 12 item 8: charges, sessions and callback deliveries have key
// spaces of their own, which no merchant_reference can reach.
func TestIssue12Item8KeySpaces(t *testing.T) {
	ok := func(ref string) []byte {
		return chargeBody(ref, messages.ProductBamboraCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"1", 400)
	}
	t.Run("charge session:ORD-1, then session ORD-1", func(t *testing.T) {
		e := newEnv(t)
		e.startWorker(e.store(), e.client(5*time.Second))
		e.publish(ok("session:i12-8a"))
		if r := e.waitResults("session:i12-8a", 1, 10*time.Second)[0]; r.Outcome != messages.OutcomeSucceeded {
			t.Fatalf("charge session:i12-8a: %+v, want succeeded", r)
		}
		i12PublishSession(e, i12SessionBody("i12-8a", messages.ProductBamboraCreditcard, dinterotest.TokenAuthorized+"1", 900, ""))
		if r := e.waitSessionResults("i12-8a", 1, 10*time.Second)[0]; r.Outcome != messages.OutcomeCreated {
			t.Errorf("session i12-8a after a charge session:i12-8a: %+v, want created", r)
		}
	})
	t.Run("charge delivery:ID, then a callback delivery ID", func(t *testing.T) {
		e := newEnv(t)
		store := e.store()
		cb := i12Callbacks(t, e, store, worker.CallbackConfig{})
		e.startWorker(store, e.client(5*time.Second))
		tx := i12PaidSession(t, e, "i12-8b-cit-1")
		e.publish(ok("delivery:i12-8b-first"))
		if r := e.waitResults("delivery:i12-8b-first", 1, 10*time.Second)[0]; r.Outcome != messages.OutcomeSucceeded {
			t.Fatalf("charge delivery:i12-8b-first: %+v, want succeeded", r)
		}
		if code := i12SendCallback(t, cb, tx, "i12-8b-first"); code != http.StatusOK {
			t.Fatalf("callback: status %d", code)
		}
		if r := e.waitSessionResults("i12-8b-cit-1", 2, 5*time.Second)[1]; r.Outcome != messages.OutcomeCompleted {
			t.Errorf("callback result %+v, want completed", r)
		}
	})
	t.Run("a callback delivery ID, then charge delivery:ID", func(t *testing.T) {
		e := newEnv(t)
		store := e.store()
		cb := i12Callbacks(t, e, store, worker.CallbackConfig{})
		e.startWorker(store, e.client(5*time.Second))
		tx := i12PaidSession(t, e, "i12-8b-cit-2")
		if code := i12SendCallback(t, cb, tx, "i12-8b-second"); code != http.StatusOK {
			t.Fatalf("callback: status %d", code)
		}
		if r := e.waitSessionResults("i12-8b-cit-2", 2, 5*time.Second)[1]; r.Outcome != messages.OutcomeCompleted {
			t.Fatalf("callback result %+v, want completed", r)
		}
		e.publish(ok("delivery:i12-8b-second"))
		if r := e.waitResults("delivery:i12-8b-second", 1, 10*time.Second)[0]; r.Outcome != messages.OutcomeSucceeded {
			t.Errorf("charge delivery:i12-8b-second after the callback delivery i12-8b-second: %+v, want succeeded", r)
		}
	})
	t.Run("session ORD-2, then charge session:ORD-2", func(t *testing.T) {
		e := newEnv(t)
		e.startWorker(e.store(), e.client(5*time.Second))
		i12PublishSession(e, i12SessionBody("i12-8c", messages.ProductBamboraCreditcard, dinterotest.TokenAuthorized+"1", 900, ""))
		if r := e.waitSessionResults("i12-8c", 1, 10*time.Second)[0]; r.Outcome != messages.OutcomeCreated {
			t.Fatalf("session i12-8c: %+v, want created", r)
		}
		e.publish(ok("session:i12-8c"))
		if r := e.waitResults("session:i12-8c", 1, 10*time.Second)[0]; r.Outcome != messages.OutcomeSucceeded {
			t.Errorf("charge session:i12-8c after a session i12-8c: %+v, want succeeded", r)
		}
	})
}

// Issue 12 item 9: a reference with a lone surrogate escape ("\ud800") is
// rejected as invalid, never charged under a reference other than the one
// Dintero would store.
func TestIssue12Item9LoneSurrogateRejected(t *testing.T) {
	e := newEnv(t)
	e.startWorker(e.store(), e.client(5*time.Second))
	body := strings.Replace(string(chargeBody("REF", messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"1", 100)),
		`"merchant_reference": "REF"`, `"merchant_reference": "a\ud800b"`, 1)
	e.publish([]byte(body))
	var r messages.ChargeResult
	i12Wait(t, 10*time.Second, "a result", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, rs := range e.results {
			r = rs[0]
			return true
		}
		return false
	})
	if r.Outcome != messages.OutcomeRejected || r.Error == nil || r.Error.Code != messages.CodeInvalidRequest ||
		!slices.ContainsFunc(r.Error.Fields, func(f messages.FieldError) bool { return f.Field == "session.order.merchant_reference" }) {
		t.Errorf("result %+v, want rejected invalid_request naming session.order.merchant_reference", r)
	}
	if n := e.sandbox.Counters().PayRequests; n != 0 {
		t.Errorf("%d pay calls, want none", n)
	}
}

const i12CallbackSecret = "i12-callback-secret"

// i12Callbacks serves the callback endpoint with cfg (the secret and the
// account filled in) and returns its URL.
func i12Callbacks(t *testing.T, e *env, deliveries worker.Deliveries, cfg worker.CallbackConfig) string {
	t.Helper()
	cfg.Secret, cfg.AccountID = []byte(i12CallbackSecret), dinterotest.DefaultAccountID
	cb, err := worker.NewCallbacks(e.js, e.client(5*time.Second), deliveries, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(worker.CallbackPath, cb)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + worker.CallbackPath
}

// i12PaidSession creates a session for ref (without a callback_url) and
// pays it as the customer would; it returns the authorized transaction.
func i12PaidSession(t *testing.T, e *env, ref string) dintero.Transaction {
	t.Helper()
	i12PublishSession(e, i12SessionBody(ref, messages.ProductPayExCreditcard, dinterotest.TokenAuthorized+"1", 600, ""))
	created := e.waitSessionResults(ref, 1, 10*time.Second)[0]
	if created.Outcome != messages.OutcomeCreated {
		t.Fatalf("session %s: %+v, want created", ref, created)
	}
	tx, err := e.sandbox.PaySession(created.SessionID, "123")
	if err != nil || !dintero.Succeeded(tx.Status) {
		t.Fatalf("the customer pays %s: %v %+v", ref, err, tx)
	}
	return tx
}

// i12SendCallback sends the callback Dintero would send for tx, signed,
// with the given event-delivery id, and returns the status.
func i12SendCallback(t *testing.T, endpoint string, tx dintero.Transaction, delivery string) int {
	t.Helper()
	q := url.Values{}
	q.Set("transaction_id", tx.ID)
	q.Set("session_id", tx.SessionID)
	q.Set("merchant_reference", tx.MerchantReference)
	q.Set("time", time.Now().UTC().Format(time.RFC3339))
	u, err := url.Parse(endpoint + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(dintero.EventDeliveryHeader, delivery)
	req.Header.Set(dintero.SignatureHeader, dintero.SignCallback([]byte(i12CallbackSecret), dinterotest.DefaultAccountID, http.MethodGet, u, time.Now()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
