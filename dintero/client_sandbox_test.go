package dintero_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
)

// The "Use token" guide bodies, verbatim, in testdata/seed.
const (
	seedTokenPlaceholder = "<token previously acquired>"
	seedPayRef           = `"merchant_reference": "order-1"`
	seedSessionRef       = `"merchant_reference": "merchants_order_number"`
)

func newSandbox(t *testing.T, opts dinterotest.Options, mod func(*dintero.Config)) (*dinterotest.Server, *dintero.Client) {
	t.Helper()
	sb := dinterotest.Start(t, opts)
	cfg := dintero.Config{
		AccountID:     dinterotest.DefaultAccountID,
		ClientID:      dinterotest.DefaultClientID,
		ClientSecret:  dinterotest.DefaultClientSecret,
		APIURL:        sb.URL(),
		SystemName:    "payworker-test",
		SystemVersion: "0.0.1",
		Timeout:       10 * time.Second,
		Retry: dintero.RetryConfig{
			InitialInterval: 5 * time.Millisecond,
			MaxInterval:     50 * time.Millisecond,
			MaxElapsedTime:  10 * time.Second,
			MaxAttempts:     4,
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := dintero.New(cfg)
	if err != nil {
		t.Fatalf("dintero.New: %v", err)
	}
	return sb, c
}

// seedBody returns a seed body with its card token and merchant_reference
// replaced.
func seedBody(t *testing.T, name, token, ref string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "seed", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(seedTokenPlaceholder)) {
		t.Fatalf("%s: no token placeholder", name)
	}
	b = bytes.ReplaceAll(b, []byte(seedTokenPlaceholder), []byte(token))
	n := len(b)
	b = bytes.ReplaceAll(b, []byte(seedPayRef), []byte(`"merchant_reference": "`+ref+`"`))
	b = bytes.ReplaceAll(b, []byte(seedSessionRef), []byte(`"merchant_reference": "`+ref+`"`))
	if len(b) == n && !bytes.Contains(b, []byte(ref)) {
		t.Fatalf("%s: no merchant_reference to replace", name)
	}
	return b
}

func payBody(t *testing.T, token, ref string) []byte {
	return seedBody(t, "unscheduled_purchase_payex", token, ref)
}

func ledgerFor(sb *dinterotest.Server, ref string) []dinterotest.Charge {
	var out []dinterotest.Charge
	for _, ch := range sb.Ledger() {
		if ch.MerchantReference == ref {
			out = append(out, ch)
		}
	}
	return out
}

func TestSandboxSeedBodies(t *testing.T) {
	sb, c := newSandbox(t, dinterotest.Options{}, nil)
	tests := []struct {
		name    string
		product string
		op      string // "" = sessions-profile
	}{
		{"cit_payex", "payex.creditcard", ""},
		{"cit_bambora", "bambora.creditcard", ""},
		{"cit_dintero_psp", "dintero_psp.creditcard", ""},
		{"recurring_purchase_payex", "payex.creditcard", "recurring_purchase"},
		{"recurring_purchase_bambora", "bambora.creditcard", "recurring_purchase"},
		{"recurring_purchase_dintero_psp", "dintero_psp.creditcard", "recurring_purchase"},
		{"unscheduled_purchase_payex", "payex.creditcard", "unscheduled_purchase"},
		{"unscheduled_purchase_bambora", "bambora.creditcard", "unscheduled_purchase"},
		{"unscheduled_purchase_dintero_psp", "dintero_psp.creditcard", "unscheduled_purchase"},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := "seed-" + tt.name
			body := seedBody(t, tt.name, dinterotest.TokenAuthorized+tt.name, ref)
			if tt.op == "" {
				sc, err := c.CreateSessionProfile(ctx, body)
				if err != nil {
					t.Fatalf("CreateSessionProfile: %v", err)
				}
				if !strings.HasPrefix(sc.ID, dinterotest.DefaultAccountID+".") || !strings.HasSuffix(sc.URL, sc.ID) {
					t.Errorf("session = %+v; want an account-prefixed id and its view url", sc)
				}
				return
			}
			tx, err := c.PaySession(ctx, body)
			if err != nil {
				t.Fatalf("PaySession: %v", err)
			}
			if tx.Status != dintero.StatusAuthorized || tx.MerchantReference != ref || tx.Amount != 29990 ||
				tx.PaymentProductType != tt.product || tx.PaymentOperation != tt.op {
				t.Errorf("tx = %+v; want AUTHORIZED %s %s for %s", tx, tt.product, tt.op, ref)
			}
			if got := ledgerFor(sb, ref); len(got) != 1 || got[0].TransactionID != tx.ID {
				t.Errorf("ledger for %s = %+v; want the one charge %s", ref, got, tx.ID)
			}
		})
	}
	if got := sb.Counters().SessionsCreated; got != 3 {
		t.Errorf("SessionsCreated = %d; want 3", got)
	}
}

func TestSandboxTestCards(t *testing.T) {
	sb, c := newSandbox(t, dinterotest.Options{}, nil)
	tests := []struct {
		name       string
		token      string
		wantKind   dintero.Kind // 0 = success
		wantStatus string       // transaction status
		wantCode   string
		wantRetry  string
		wantHTTP   int
	}{
		{"authorized", dinterotest.TokenAuthorized + "1", 0, dintero.StatusAuthorized, "", "", 0},
		{"insufficient funds", dinterotest.TokenInsufficientFunds + "1", dintero.KindDeclined, dintero.StatusFailed, "INSUFFICIENT_FUNDS", dintero.RetryAfterDelay, 200},
		{"do not retry", dinterotest.TokenDoNotRetry + "1", dintero.KindDeclined, dintero.StatusDeclined, "DECLINED", dintero.RetryDoNotRetry, 200},
		{"expired card", dinterotest.TokenExpiredCard + "1", dintero.KindDeclined, dintero.StatusFailed, "EXPIRED_CARD", dintero.RetryDoNotRetry, 200},
		{"unknown token", "tok_live_unknown_4242", dintero.KindInvalid, "", "INVALID_PAYMENT_TOKEN", "", 400},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := "card-" + strings.ReplaceAll(tt.name, " ", "-")
			tx, err := c.PaySession(ctx, payBody(t, tt.token, ref))
			if tt.wantKind == 0 {
				if err != nil || tx.Status != tt.wantStatus {
					t.Fatalf("PaySession = %+v, %v; want %s", tx, err, tt.wantStatus)
				}
				return
			}
			if got := dintero.KindOf(err); got != tt.wantKind {
				t.Fatalf("kind = %v (%v); want %v", got, err, tt.wantKind)
			}
			var e *dintero.Error
			asErr(err, &e)
			if e.Code != tt.wantCode || e.StatusCode != tt.wantHTTP || e.RequestID == "" {
				t.Errorf("error = %+v; want code %s, HTTP %d and a request id", e, tt.wantCode, tt.wantHTTP)
			}
			if strings.Contains(err.Error(), tt.token) || strings.Contains(err.Error(), dinterotest.DefaultClientSecret) {
				t.Errorf("error string leaks a secret: %v", err)
			}
			if tt.wantStatus == "" {
				if tx != nil || len(ledgerFor(sb, ref)) != 0 {
					t.Errorf("tx %+v / ledger %+v; want nothing for a rejected token", tx, ledgerFor(sb, ref))
				}
				return
			}
			if tx == nil || tx.Status != tt.wantStatus || e.Transaction != tx {
				t.Fatalf("tx = %+v, Error.Transaction = %p; want status %s on both", tx, e.Transaction, tt.wantStatus)
			}
			if p := e.RetryPolicy(); p == nil || len(p.RetryCodes) != 1 || p.RetryCodes[0] != tt.wantRetry {
				t.Errorf("RetryPolicy = %+v; want [%s]", p, tt.wantRetry)
			} else if tt.wantRetry == dintero.RetryAfterDelay && p.RetryAfter == nil {
				t.Errorf("RETRY_AFTER_DELAY without retry_after")
			}
			if len(ledgerFor(sb, ref)) != 0 {
				t.Errorf("a declined card reached the ledger")
			}
		})
	}
}

func TestSandboxStrictSuccessDuplicate(t *testing.T) {
	sb, c := newSandbox(t, dinterotest.Options{}, nil)
	ctx := context.Background()
	const ref = "dup-1"

	// A failed attempt does not block the reference...
	if _, err := c.PaySession(ctx, payBody(t, dinterotest.TokenInsufficientFunds+"a", ref)); dintero.KindOf(err) != dintero.KindDeclined {
		t.Fatalf("first attempt: %v; want declined", err)
	}
	first, err := c.PaySession(ctx, payBody(t, dinterotest.TokenAuthorized+"a", ref))
	if err != nil {
		t.Fatalf("retry after a decline: %v", err)
	}
	// ...a success does.
	tx, err := c.PaySession(ctx, payBody(t, dinterotest.TokenAuthorized+"b", ref))
	var e *dintero.Error
	if tx != nil || err == nil || !asErr(err, &e) || !e.DuplicateReference() || e.Kind != dintero.KindInvalid {
		t.Fatalf("second success = %+v, %v; want a DuplicateReference invalid error", tx, err)
	}
	if got := ledgerFor(sb, ref); len(got) != 1 || got[0].TransactionID != first.ID {
		t.Errorf("ledger = %+v; want exactly the first charge", got)
	}
	txs, err := c.TransactionsByMerchantReference(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	var succeeded int
	for _, tx := range txs {
		if dintero.Succeeded(tx.Status) {
			succeeded++
		}
	}
	if len(txs) != 2 || succeeded != 1 {
		t.Errorf("transactions for %s: %d (%d succeeded); want 2 (1)", ref, len(txs), succeeded)
	}
	if got := sb.Counters().DuplicatesRefused; got != 1 {
		t.Errorf("DuplicatesRefused = %d; want 1", got)
	}
}

func TestSandboxTimeoutAfterCharge(t *testing.T) {
	sb, c := newSandbox(t, dinterotest.Options{HangLimit: 20 * time.Second},
		func(cfg *dintero.Config) { cfg.Timeout = 300 * time.Millisecond })
	ctx := context.Background()
	const ref = "hang-1"
	if _, err := c.Token(ctx); err != nil {
		t.Fatal(err)
	}
	sb.SetFaults(dinterotest.Faults{TimeoutAfterChargeRate: 1})
	start := time.Now()
	tx, err := c.PaySession(ctx, payBody(t, dinterotest.TokenAuthorized+"h", ref))
	if dintero.KindOf(err) != dintero.KindUnknownOutcome || tx != nil {
		t.Fatalf("PaySession = %+v, %v; want unknown outcome", tx, err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("PaySession took %v; want about the 300ms timeout", elapsed)
	}
	if got := sb.Counters().PayRequests; got != 1 {
		t.Errorf("PayRequests = %d; want 1 (never retried)", got)
	}

	// The caller's reconciliation: look the charge up.
	sb.SetFaults(dinterotest.Faults{})
	txs, err := c.TransactionsByMerchantReference(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if len(txs) != 1 || txs[0].Status != dintero.StatusAuthorized || txs[0].MerchantReference != ref {
		t.Fatalf("lookup = %+v; want the one AUTHORIZED charge", txs)
	}
	if got := ledgerFor(sb, ref); len(got) != 1 || got[0].TransactionID != txs[0].ID {
		t.Errorf("ledger = %+v; want exactly the charge found", got)
	}
	// Re-sending is safe: the strict toggle refuses a second charge.
	var e *dintero.Error
	if _, err := c.PaySession(ctx, payBody(t, dinterotest.TokenAuthorized+"h", ref)); !asErr(err, &e) || !e.DuplicateReference() {
		t.Errorf("re-send = %v; want DuplicateReference", err)
	}
	if got := ledgerFor(sb, ref); len(got) != 1 {
		t.Errorf("ledger has %d charges for %s; want 1", len(got), ref)
	}
}

func TestSandboxServerErrors(t *testing.T) {
	tests := []struct {
		name      string
		call      func(ctx context.Context, t *testing.T, c *dintero.Client) error
		wantKind  dintero.Kind
		wantCalls func(dinterotest.Counters) int64
		want      int64
	}{
		{"pay is unknown outcome, not retried", func(ctx context.Context, t *testing.T, c *dintero.Client) error {
			_, err := c.PaySession(ctx, payBody(t, dinterotest.TokenAuthorized+"e", "err-1"))
			return err
		}, dintero.KindUnknownOutcome, func(c dinterotest.Counters) int64 { return c.PayRequests }, 1},
		{"get is transient, retried", func(ctx context.Context, _ *testing.T, c *dintero.Client) error {
			_, err := c.GetTransaction(ctx, "T12345678.nope")
			return err
		}, dintero.KindTransient, func(c dinterotest.Counters) int64 { return c.TransactionGets }, 4},
		{"list is transient, retried", func(ctx context.Context, _ *testing.T, c *dintero.Client) error {
			_, err := c.TransactionsByMerchantReference(ctx, "err-1")
			return err
		}, dintero.KindTransient, func(c dinterotest.Counters) int64 { return c.TransactionLists }, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb, c := newSandbox(t, dinterotest.Options{}, nil)
			ctx := context.Background()
			if _, err := c.Token(ctx); err != nil {
				t.Fatal(err)
			}
			sb.SetFaults(dinterotest.Faults{ErrorRate: 1})
			err := tt.call(ctx, t, c)
			var e *dintero.Error
			if !asErr(err, &e) || e.Kind != tt.wantKind || (e.StatusCode != 500 && e.StatusCode != 503) {
				t.Fatalf("err = %v; want %v with HTTP 500/503", err, tt.wantKind)
			}
			if got := tt.wantCalls(sb.Counters()); got != tt.want {
				t.Errorf("requests = %d; want %d", got, tt.want)
			}
			if len(sb.Ledger()) != 0 {
				t.Errorf("ledger = %+v; want empty", sb.Ledger())
			}
		})
	}
}

func TestSandboxConnectionResetOnPay(t *testing.T) {
	sb, c := newSandbox(t, dinterotest.Options{}, nil)
	ctx := context.Background()
	if _, err := c.Token(ctx); err != nil {
		t.Fatal(err)
	}
	sb.SetFaults(dinterotest.Faults{ResetRate: 1})
	if _, err := c.PaySession(ctx, payBody(t, dinterotest.TokenAuthorized+"r", "reset-1")); dintero.KindOf(err) != dintero.KindUnknownOutcome {
		t.Fatalf("err = %v; want unknown outcome", err)
	}
	if got := sb.Counters().PayRequests; got != 1 {
		t.Errorf("PayRequests = %d; want 1", got)
	}
}

func TestSandboxRateLimitRetried(t *testing.T) {
	sb, c := newSandbox(t, dinterotest.Options{}, nil)
	ctx := context.Background()
	if _, err := c.Token(ctx); err != nil {
		t.Fatal(err)
	}
	sb.SetFaults(dinterotest.Faults{RateLimitRate: 1, RetryAfter: time.Second})
	type result struct {
		tx  *dintero.Transaction
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		tx, err := c.PaySession(ctx, payBody(t, dinterotest.TokenAuthorized+"rl", "rl-1"))
		done <- result{tx, err}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for sb.Counters().FaultRateLimits == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no 429 was served")
		}
		time.Sleep(5 * time.Millisecond)
	}
	sb.SetFaults(dinterotest.Faults{})
	r := <-done
	if r.err != nil || r.tx.Status != dintero.StatusAuthorized {
		t.Fatalf("PaySession = %+v, %v; want AUTHORIZED after the rate limit cleared", r.tx, r.err)
	}
	if elapsed := time.Since(start); elapsed < time.Second {
		t.Errorf("succeeded after %v; want the 1s Retry-After honoured", elapsed)
	}
	cn := sb.Counters()
	if cn.PayRequests < 2 || cn.FaultRateLimits < 1 || len(sb.Ledger()) != 1 {
		t.Errorf("PayRequests %d, FaultRateLimits %d, ledger %d; want >= 2, >= 1, 1", cn.PayRequests, cn.FaultRateLimits, len(sb.Ledger()))
	}
}

func TestSandboxExpiredTokenRefreshed(t *testing.T) {
	sb, c := newSandbox(t, dinterotest.Options{}, nil)
	ctx := context.Background()
	if _, err := c.PaySession(ctx, payBody(t, dinterotest.TokenAuthorized+"x", "exp-1")); err != nil {
		t.Fatal(err)
	}
	sb.ExpireTokens()
	if _, err := c.PaySession(ctx, payBody(t, dinterotest.TokenAuthorized+"x", "exp-2")); err != nil {
		t.Fatalf("PaySession after ExpireTokens: %v", err)
	}
	if _, err := c.GetTransaction(ctx, sb.Ledger()[0].TransactionID); err != nil {
		t.Fatalf("GetTransaction: %v", err)
	}
	cn := sb.Counters()
	if cn.TokensIssued != 2 || cn.Unauthorized != 1 || cn.PayRequests != 3 || len(sb.Ledger()) != 2 {
		t.Errorf("counters %+v, ledger %d; want 2 tokens, 1 unauthorized, 3 pay requests, 2 charges", cn, len(sb.Ledger()))
	}
}

func TestSandboxWrongCredentials(t *testing.T) {
	_, c := newSandbox(t, dinterotest.Options{}, func(cfg *dintero.Config) { cfg.ClientSecret = "wrong-secret-value" })
	_, err := c.PaySession(context.Background(), payBody(t, dinterotest.TokenAuthorized+"w", "cred-1"))
	var e *dintero.Error
	if !asErr(err, &e) || e.Kind != dintero.KindAuth || e.Op != dintero.OpAuth || e.StatusCode != 401 {
		t.Fatalf("err = %v; want auth error from the token endpoint", err)
	}
	if strings.Contains(err.Error(), "wrong-secret-value") {
		t.Errorf("error leaks the secret: %v", err)
	}
}

func TestSandboxConcurrentPaysShareOneToken(t *testing.T) {
	// A generous attempt timeout: the machine may be loaded, and this test
	// is about sharing one token, not about latency.
	sb, c := newSandbox(t, dinterotest.Options{}, func(cfg *dintero.Config) { cfg.Timeout = 30 * time.Second })
	tmpl := payBody(t, "TOKEN", "REF")
	body := func(token, ref string) []byte {
		b := bytes.Replace(tmpl, []byte(`"TOKEN"`), []byte(`"`+token+`"`), 1)
		return bytes.Replace(b, []byte(`"REF"`), []byte(`"`+ref+`"`), 1)
	}
	run := func(t *testing.T, n int, prefix string) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				ref := fmt.Sprintf("%s-%04d", prefix, i)
				tx, err := c.PaySession(context.Background(), body(dinterotest.TokenAuthorized+ref, ref))
				if err == nil && tx.MerchantReference != ref {
					err = fmt.Errorf("tx for %s has ref %s", ref, tx.MerchantReference)
				}
				errs <- err
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("PaySession: %v", err)
			}
		}
	}

	run(t, 1000, "conc")
	cn := sb.Counters()
	if cn.TokensIssued != 1 || cn.TokenRequests != 1 || cn.Authorized != 1000 || len(sb.Ledger()) != 1000 {
		t.Fatalf("tokens issued %d (requests %d), authorized %d, ledger %d; want 1, 1, 1000, 1000",
			cn.TokensIssued, cn.TokenRequests, cn.Authorized, len(sb.Ledger()))
	}

	// All in-flight callers hold the expired token: one refresh serves all.
	sb.ExpireTokens()
	run(t, 300, "after-expiry")
	if got := sb.Counters().TokensIssued; got != 2 {
		t.Errorf("TokensIssued after ExpireTokens = %d; want 2", got)
	}
}

func asErr(err error, target **dintero.Error) bool { return errors.As(err, target) }

// TestSandboxSessionsFindAndCancel: the sessions of a reference are found
// by SessionsByMerchantReference (and only they: the search also matches
// a longer reference), and CancelSession makes one unpayable.
func TestSandboxSessionsFindAndCancel(t *testing.T) {
	sb, c := newSandbox(t, dinterotest.Options{}, nil)
	ctx := context.Background()
	create := func(ref string) *dintero.SessionCreated {
		t.Helper()
		sc, err := c.CreateSessionProfile(ctx, seedBody(t, "cit_bambora", dinterotest.TokenAuthorized+"1", ref))
		if err != nil {
			t.Fatalf("CreateSessionProfile %s: %v", ref, err)
		}
		return sc
	}
	first, second := create("cit-find"), create("cit-find")
	create("cit-find-2") // found by Dintero's search, not the same reference
	if _, err := c.PaySession(ctx, payBody(t, dinterotest.TokenAuthorized+"mit", "cit-find")); err != nil {
		t.Fatalf("PaySession: %v", err)
	}

	found, err := c.SessionsByMerchantReference(ctx, "cit-find")
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 3 || found[1].ID != second.ID || found[2].ID != first.ID || found[0].TransactionID == "" {
		t.Fatalf("sessions of cit-find: %+v; want the MIT one, then %s and %s", found, second.ID, first.ID)
	}
	for _, s := range found {
		if s.Order.MerchantReference != "cit-find" || s.Order.Amount != 29990 || s.Cancelled() || s.CreatedAt.IsZero() {
			t.Errorf("session %+v", s)
		}
	}
	if found[1].URL.ReturnURL == "" {
		t.Errorf("a profile session without its return_url: %+v", found[1])
	}

	cancelled, err := c.CancelSession(ctx, second.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cancelled.ID != second.ID || !cancelled.Cancelled() || cancelled.CancelledBy != dinterotest.DefaultClientID {
		t.Errorf("CancelSession answered %+v", cancelled)
	}
	if again, err := c.CancelSession(ctx, second.ID); err != nil || !again.CancelledAt.Equal(cancelled.CancelledAt) {
		t.Errorf("second CancelSession: %+v, %v", again, err)
	}
	if _, err := sb.PaySession(second.ID, "123"); !errors.Is(err, dinterotest.ErrSessionCancelled) {
		t.Errorf("paying the cancelled session: %v", err)
	}
	if _, err := sb.PaySession(first.ID, "123"); err != nil {
		t.Errorf("paying the other session: %v", err)
	}
	found, err = c.SessionsByMerchantReference(ctx, "cit-find")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range found {
		if (s.ID == second.ID) != s.Cancelled() {
			t.Errorf("after the cancel: %+v", s)
		}
	}

	// A paid session is refused, an unknown one is not found.
	_, err = c.CancelSession(ctx, first.ID)
	if dintero.KindOf(err) != dintero.KindInvalid {
		t.Errorf("cancel of a paid session: %v, want KindInvalid", err)
	}
	_, err = c.CancelSession(ctx, "T12345678.nope")
	var de *dintero.Error
	if !errors.As(err, &de) || de.Kind != dintero.KindPermanent || de.StatusCode != 404 || de.Op != dintero.OpCancelSession {
		t.Errorf("cancel of an unknown session: %v, want KindPermanent 404", err)
	}
	if got := sb.Counters().SessionsCancelled; got != 1 {
		t.Errorf("SessionsCancelled = %d; want 1", got)
	}
}

// TestSandboxSessionCreatedButUnanswered: a session Dintero made whose
// answer was lost is an unknown outcome, and is not made a second time.
func TestSandboxSessionCreatedButUnanswered(t *testing.T) {
	sb, c := newSandbox(t, dinterotest.Options{Outage: dinterotest.Outage{Duration: time.Minute, Answer: dinterotest.OutageGatewayTimeout}}, nil)
	ctx := context.Background()
	_, err := c.CreateSessionProfile(ctx, seedBody(t, "cit_payex", dinterotest.TokenAuthorized+"1", "cit-lost"))
	if dintero.KindOf(err) != dintero.KindUnknownOutcome {
		t.Fatalf("CreateSessionProfile in an outage: %v, want KindUnknownOutcome", err)
	}
	if got := sb.Counters().SessionsCreated; got != 1 {
		t.Errorf("SessionsCreated = %d; want 1: a call that may have made a session is not repeated", got)
	}
	sb.EndOutage()
	found, err := c.SessionsByMerchantReference(ctx, "cit-lost")
	if err != nil || len(found) != 1 || found[0].Cancelled() {
		t.Fatalf("sessions of cit-lost: %+v, %v; want the one made", found, err)
	}
	if _, err := c.CancelSession(ctx, found[0].ID); err != nil {
		t.Fatal(err)
	}
}
