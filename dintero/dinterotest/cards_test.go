package dinterotest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
)

func TestSoftDeclineCard(t *testing.T) {
	const delay = 3 * time.Second
	a := newAPI(t, dinterotest.Options{RetryAfterDelay: delay})
	a.login()
	tok := dinterotest.SoftDeclineToken(2, "dunning-1")
	other := dinterotest.SoftDeclineToken(2, "dunning-2")
	pay := func(token, ref, toggles string) dintero.Transaction {
		t.Helper()
		return a.payTx(payBody("payex.creditcard", "recurring_purchase", "recurrence_token", token, ref, 29900, false), toggles)
	}
	for i := 1; i <= 2; i++ {
		start := time.Now()
		tx := pay(tok, "sub-1", dintero.ToggleStrictSuccessMerchantReference) // the same reference, as dunning does
		e := tx.LastError()
		if tx.Status != dintero.StatusFailed || e == nil || e.Code != "SOFT_DECLINE" || len(e.Type) != 1 || e.Type[0] != "DECLINED" ||
			e.RetryPolicy == nil || len(e.RetryPolicy.RetryCodes) != 1 || e.RetryPolicy.RetryCodes[0] != dintero.RetryAfterDelay ||
			e.RetryPolicy.RetryAfter == nil {
			t.Fatalf("call %d: %s %+v, want a soft decline", i, tx.Status, e)
		}
		if d := e.RetryPolicy.RetryAfter.Sub(start.Add(delay)); d < -time.Second || d > time.Second {
			t.Errorf("call %d: retry_after %v, want about %v", i, e.RetryPolicy.RetryAfter, start.Add(delay))
		}
	}
	// Another token of the same shape counts on its own.
	if tx := pay(other, "sub-2", ""); tx.Status != dintero.StatusFailed {
		t.Errorf("other token's first call: %s, want FAILED", tx.Status)
	}
	// A call refused before processing does not count: sub-1 is not yet
	// paid, so strict-merchant-reference refuses it as a duplicate session.
	if r := a.pay(payBody("payex.creditcard", "recurring_purchase", "recurrence_token", tok, "sub-1", 29900, false),
		dintero.ToggleStrictMerchantReference); r.status != http.StatusBadRequest {
		t.Fatalf("duplicate: %d %s", r.status, r.body)
	}
	tx := pay(tok, "sub-1", dintero.ToggleStrictSuccessMerchantReference)
	if tx.Status != dintero.StatusAuthorized || tx.LastError() != nil {
		t.Fatalf("third processed call: %s %+v, want AUTHORIZED", tx.Status, tx.LastError())
	}
	if l := a.sb.Ledger(); len(l) != 1 || l[0].MerchantReference != "sub-1" || l[0].TransactionID != tx.ID {
		t.Errorf("ledger %+v", l)
	}
	if c := a.sb.Counters(); c.Declined != 3 || c.Authorized != 1 || c.DuplicatesRefused != 1 {
		t.Errorf("counters %+v", c)
	}
	// Once authorized, it stays authorized.
	if tx := pay(tok, "sub-1b", ""); tx.Status != dintero.StatusAuthorized {
		t.Errorf("fourth call: %s", tx.Status)
	}
	// Reset forgets the counts.
	a.sb.Reset()
	if tx := pay(tok, "sub-1c", ""); tx.Status != dintero.StatusFailed {
		t.Errorf("after Reset: %s, want FAILED", tx.Status)
	}
}

func TestSoftDeclineBadCount(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	a.login()
	for _, tok := range []string{dinterotest.TokenSoftDecline + "x-1", dinterotest.TokenSoftDecline + "2", dinterotest.TokenSoftDecline + "-1-a",
		dinterotest.TokenSoftDecline + "02-a", dinterotest.TokenSoftDecline + "+2-a", dinterotest.TokenSoftDecline + "99999999999-a"} {
		r := a.pay(payBody("payex.creditcard", "unscheduled_purchase", "payment_token", tok, "ref", 100, false), "")
		if r.status != http.StatusBadRequest || r.errorCode(t) != "INVALID_PAYMENT_TOKEN" {
			t.Errorf("%s: %d %s, want 400 INVALID_PAYMENT_TOKEN", tok, r.status, r.body)
		}
	}
	if n := len(a.sb.Transactions()); n != 0 {
		t.Errorf("%d transactions recorded", n)
	}
}

func TestInsufficientFundsRetryAfterDelay(t *testing.T) {
	a := newAPI(t, dinterotest.Options{RetryAfterDelay: 90 * time.Second})
	a.login()
	start := time.Now()
	tx := a.payTx(payBody("bambora.creditcard", "unscheduled_purchase", "payment_token", dinterotest.TokenInsufficientFunds+"1", "ref", 100, false), "")
	e := tx.LastError()
	if e == nil || e.RetryPolicy == nil || e.RetryPolicy.RetryAfter == nil {
		t.Fatalf("error %+v", e)
	}
	if d := e.RetryPolicy.RetryAfter.Sub(start.Add(90 * time.Second)); d < -time.Second || d > time.Second {
		t.Errorf("retry_after %v, want about now+90s", e.RetryPolicy.RetryAfter)
	}
}

func TestCardBrands(t *testing.T) {
	tests := []struct {
		token, brand, pan, status string
	}{
		{dinterotest.TokenAuthorized + "1", "Visa", "492500******0004", dintero.StatusAuthorized},
		{dinterotest.TokenAuthorized + dinterotest.BrandVisa + "1", "Visa", "492500******0004", dintero.StatusAuthorized},
		{dinterotest.TokenAuthorized + dinterotest.BrandMastercard + "1", "Mastercard", "555555******4444", dintero.StatusAuthorized},
		{dinterotest.TokenDoNotRetry + dinterotest.BrandMastercard + "1", "Mastercard", "555555******4444", dintero.StatusDeclined},
		{dinterotest.SoftDeclineToken(1, dinterotest.BrandMastercard+"1"), "Mastercard", "555555******4444", dintero.StatusFailed},
		{dinterotest.TokenAuthorized + "mastercard", "Visa", "492500******0004", dintero.StatusAuthorized}, // no dash: not a brand
	}
	a := newAPI(t, dinterotest.Options{})
	a.login()
	for i, tt := range tests {
		tx := a.payTx(payBody("dintero_psp.creditcard", "unscheduled_purchase", "payment_token", tt.token, "ref-"+tt.token, 100, false), "")
		if tx.Status != tt.status || tx.Card == nil || tx.Card.Brand != tt.brand || tx.Card.MaskedPAN != tt.pan {
			t.Errorf("%d %s: status %s card %+v, want %s %s %s", i, tt.token, tx.Status, tx.Card, tt.status, tt.brand, tt.pan)
		}
	}
	// A customer-initiated session shows and records the brand too.
	b := profileBody("cit-mc")
	b["customer"].(map[string]any)["tokens"] = map[string]any{"payex.creditcard": map[string]any{"payment_token": dinterotest.TokenAuthorized + dinterotest.BrandMastercard + "x"}}
	var sc dintero.SessionCreated
	a.do(http.MethodPost, "/v1/sessions-profile", b, nil).decode(t, &sc)
	page := getPage(t, a.base+"/v1/view/"+sc.ID)
	if !strings.Contains(page, "•••• 4444") {
		t.Errorf("page does not show the Mastercard: %s", page)
	}
	tx, err := a.sb.PaySession(sc.ID, "123")
	if err != nil || tx.Card == nil || tx.Card.Brand != "Mastercard" || tx.Card.MaskedPAN != "555555******4444" {
		t.Errorf("PaySession: %v card %+v", err, tx.Card)
	}
}

func getPage(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return sb.String()
}

// TestSoftDeclineSessions: a customer paying sessions with a soft-decline
// card meets the same count as /v1/sessions/pay.
func TestSoftDeclineSessions(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	a.login()
	tok := dinterotest.SoftDeclineToken(1, "cit")
	session := func(ref string) string {
		b := profileBody(ref)
		b["customer"].(map[string]any)["tokens"] = map[string]any{"payex.creditcard": map[string]any{"payment_token": tok}}
		var sc dintero.SessionCreated
		a.do(http.MethodPost, "/v1/sessions-profile", b, nil).decode(t, &sc)
		return sc.ID
	}
	if tx, err := a.sb.PaySession(session("cit-1"), "123"); err != nil || tx.Status != dintero.StatusFailed {
		t.Fatalf("first: %v %s", err, tx.Status)
	}
	if tx, err := a.sb.PaySession(session("cit-2"), "123"); err != nil || tx.Status != dintero.StatusAuthorized {
		t.Fatalf("second: %v %s", err, tx.Status)
	}
}

func TestTransactionCustomerAndIncludes(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	a.login()
	const secret = "TOKEN-VALUE-42"
	rec := a.payTx(payBody("payex.creditcard", "recurring_purchase", "recurrence_token", dinterotest.TokenAuthorized+"rec-"+secret, "ref-rec", 29900, false), "")
	pay := a.payTx(payBody("bambora.creditcard", "unscheduled_purchase", "payment_token", dinterotest.TokenDoNotRetry+"pay-"+secret, "ref-pay", 100, false), "")

	get := func(id string, includes ...string) dintero.Transaction {
		t.Helper()
		q := url.Values{"includes": includes}
		var tx dintero.Transaction
		r := a.do(http.MethodGet, "/v1/transactions/"+id+"?"+q.Encode(), nil, nil)
		if r.status != http.StatusOK {
			t.Fatalf("get %s: %d %s", id, r.status, r.body)
		}
		r.decode(t, &tx)
		return tx
	}
	// The whole request is on the transaction.
	for _, tc := range []struct {
		tx                        dintero.Transaction
		product, op, currency, id string
		amount                    int64
	}{
		{get(rec.ID), "payex.creditcard", "recurring_purchase", "NOK", rec.ID, 29900},
		{get(pay.ID), "bambora.creditcard", "unscheduled_purchase", "NOK", pay.ID, 100},
	} {
		tx := tc.tx
		if tx.ID != tc.id || tx.PaymentProductType != tc.product || tx.PaymentOperation != tc.op || tx.Amount != tc.amount ||
			tx.Currency != tc.currency || tx.Customer == nil || tx.Customer.CustomerID != "cust-42" {
			t.Errorf("transaction %+v customer %+v", tx, tx.Customer)
		}
		if tx.Card == nil || tx.Card.PaymentToken != "" || tx.Card.RecurrenceToken != "" {
			t.Errorf("token without includes: %+v", tx.Card)
		}
	}

	tests := []struct {
		name     string
		id       string
		includes []string
		pay, rec string
	}{
		{"recurrence token", rec.ID, []string{dintero.IncludeRecurrenceToken}, "", dinterotest.TokenAuthorized + "rec-" + secret},
		{"recurrence token asked as payment token", rec.ID, []string{dintero.IncludePaymentToken}, "", ""},
		{"both asked, repeated", rec.ID, []string{dintero.IncludePaymentToken, dintero.IncludeRecurrenceToken}, "", dinterotest.TokenAuthorized + "rec-" + secret},
		{"payment token of a decline", pay.ID, []string{dintero.IncludePaymentToken}, dinterotest.TokenDoNotRetry + "pay-" + secret, ""},
		{"comma separated", pay.ID, []string{"session," + dintero.IncludePaymentToken}, dinterotest.TokenDoNotRetry + "pay-" + secret, ""},
		{"other includes", pay.ID, []string{"session", "events.success.true"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx := get(tt.id, tt.includes...)
			if tx.Card == nil || tx.Card.PaymentToken != tt.pay || tx.Card.RecurrenceToken != tt.rec {
				t.Errorf("card %#v tokens %q %q, want %q %q", tx.Card, tx.Card.PaymentToken, tx.Card.RecurrenceToken, tt.pay, tt.rec)
			}
		})
	}
	// The stored transaction is unchanged, and neither the list nor the
	// admin endpoints show a token.
	before := len(a.allBodies())
	get(rec.ID, dintero.IncludeRecurrenceToken)
	a.do(http.MethodGet, "/v1/transactions?includes=card.payment_token&includes=card.recurrence_token", nil, nil)
	a.do(http.MethodGet, "/v1/transactions?merchant_reference=ref-rec&includes=card.recurrence_token", nil, nil)
	a.do(http.MethodGet, dinterotest.AdminPrefix+"transactions", nil, nil)
	a.do(http.MethodGet, "/v1/transactions/"+rec.ID, nil, nil)
	for _, b := range a.allBodies()[before+1:] {
		if strings.Contains(string(b), secret) {
			t.Errorf("token shown: %s", b)
		}
	}
	for _, tx := range a.sb.Transactions() {
		if tx.Card.PaymentToken != "" || tx.Card.RecurrenceToken != "" {
			t.Errorf("Transactions() shows a token: %+v", tx.Card)
		}
	}
}

func TestCustomerSessionTransaction(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	a.login()
	var sc dintero.SessionCreated
	b := profileBody("cit-1")
	b["customer"].(map[string]any)["customer_id"] = "cust-7"
	a.do(http.MethodPost, "/v1/sessions-profile", b, nil).decode(t, &sc)
	paid, err := a.sb.PaySession(sc.ID, "123")
	if err != nil {
		t.Fatal(err)
	}
	var tx dintero.Transaction
	a.do(http.MethodGet, "/v1/transactions/"+paid.ID+"?includes="+dintero.IncludePaymentToken, nil, nil).decode(t, &tx)
	if tx.PaymentOperation != "" || tx.PaymentProductType != "payex.creditcard" || tx.Amount != 29990 || tx.Currency != "NOK" ||
		tx.Customer == nil || tx.Customer.CustomerID != "cust-7" || tx.Customer.Email != "john.doe@example.com" {
		t.Errorf("transaction %+v customer %+v", tx, tx.Customer)
	}
	if tx.Card == nil || tx.Card.PaymentToken != dinterotest.TokenAuthorized+"cit-secret" {
		t.Errorf("includes=card.payment_token on a session's transaction: %#v", tx.Card)
	}
}

// TestClientLookupSeesTheWholeRequest: through the real client, a lookup
// returns what the worker compares with a request (issue 12 item 3).
func TestClientLookupSeesTheWholeRequest(t *testing.T) {
	sb := dinterotest.Start(t, dinterotest.Options{})
	client, err := dintero.New(dintero.Config{
		AccountID: dinterotest.DefaultAccountID, ClientID: dinterotest.DefaultClientID,
		ClientSecret: dinterotest.DefaultClientSecret, APIURL: sb.URL(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok := dinterotest.TokenAuthorized + dinterotest.BrandMastercard + "lookup-1"
	body, err := json.Marshal(payBody("payex.creditcard", "recurring_purchase", "recurrence_token", tok, "sub-9", 29900, false))
	if err != nil {
		t.Fatal(err)
	}
	paid, err := client.PaySession(ctx, body)
	if err != nil {
		t.Fatal(err)
	}
	got, err := client.GetTransaction(ctx, paid.ID, dintero.IncludeRecurrenceToken)
	if err != nil {
		t.Fatal(err)
	}
	if got.Card == nil || got.Card.RecurrenceToken != tok || got.Card.PaymentToken != "" || got.Card.Brand != "Mastercard" ||
		got.Customer == nil || got.Customer.CustomerID != "cust-42" || got.PaymentOperation != "recurring_purchase" ||
		got.PaymentProductType != "payex.creditcard" || got.Amount != 29900 || got.Currency != "NOK" {
		t.Errorf("lookup %+v card %#v customer %+v", got, got.Card, got.Customer)
	}
	list, err := client.TransactionsByMerchantReference(ctx, "sub-9")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Customer == nil || list[0].Card.RecurrenceToken != "" {
		t.Errorf("list %+v", list)
	}
}
