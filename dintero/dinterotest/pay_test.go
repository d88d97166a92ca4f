package dinterotest_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
)

const placeholder = "<token previously acquired>"

// TestSeedBodies sends the nine bodies of Dintero's "Use token" guide with
// the placeholder replaced by a sandbox-ok token.
func TestSeedBodies(t *testing.T) {
	files, err := filepath.Glob("testdata/seed_*.json")
	if err != nil || len(files) != 9 {
		t.Fatalf("want 9 seed bodies, got %d (%v)", len(files), err)
	}
	a := newAPI(t, dinterotest.Options{})
	a.login()
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(raw), placeholder) {
				t.Fatalf("%s has no placeholder", f)
			}
			token := dinterotest.TokenAuthorized + "seed-" + name
			body := strings.ReplaceAll(string(raw), placeholder, token)
			if strings.HasPrefix(name, "seed_cit_") {
				r := a.do(http.MethodPost, "/v1/sessions-profile", body, nil)
				if r.status != http.StatusOK {
					t.Fatalf("sessions-profile: %d %s", r.status, r.body)
				}
				var sc dintero.SessionCreated
				r.decode(t, &sc)
				if !strings.HasPrefix(sc.ID, dinterotest.DefaultAccountID+".") || sc.URL != a.base+"/v1/view/"+sc.ID {
					t.Errorf("session created %+v", sc)
				}
				g := a.do(http.MethodGet, "/v1/sessions/"+sc.ID, nil, nil)
				if g.status != http.StatusOK || strings.Contains(string(g.body), token) {
					t.Errorf("get session: %d %s", g.status, g.body)
				}
				var view struct {
					ID    string `json:"id"`
					Order struct {
						Amount            int64  `json:"amount"`
						MerchantReference string `json:"merchant_reference"`
					} `json:"order"`
					URL struct {
						ReturnURL string `json:"return_url"`
					} `json:"url"`
				}
				g.decode(t, &view)
				if view.ID != sc.ID || view.Order.Amount != 29990 || view.Order.MerchantReference != "merchants_order_number" ||
					view.URL.ReturnURL != "https://example.com/thankyou" {
					t.Errorf("session view %+v", view)
				}
				return
			}
			before := len(a.sb.Ledger())
			tx := a.payTx(body, dintero.ToggleStrictMerchantReference+"-not-really") // unknown toggles are ignored
			wantOp := "unscheduled_purchase"
			if strings.Contains(name, "recurring") {
				wantOp = "recurring_purchase"
			}
			wantProduct := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(name, "seed_recurring_purchase_"), "seed_unscheduled_purchase_"), "seed_")
			if tx.Status != dintero.StatusAuthorized || tx.Amount != 29990 || tx.Currency != "NOK" ||
				tx.MerchantReference != "order-1" || tx.PaymentOperation != wantOp ||
				tx.PaymentProduct != wantProduct || tx.PaymentProductType != wantProduct+".creditcard" ||
				tx.Success == nil || !*tx.Success || tx.SessionID == "" {
				t.Errorf("transaction %+v", tx)
			}
			ledger := a.sb.Ledger()
			if len(ledger) != before+1 {
				t.Fatalf("ledger %d entries, want %d", len(ledger), before+1)
			}
			if c := ledger[len(ledger)-1]; c.TransactionID != tx.ID || c.SessionID != tx.SessionID ||
				c.Amount != 29990 || c.Operation != wantOp || c.Status != dintero.StatusAuthorized {
				t.Errorf("charge %+v", c)
			}
		})
	}
}

func TestTestCards(t *testing.T) {
	tests := []struct {
		name        string
		prefix      string
		autoCapture bool
		wantStatus  string
		wantType    string // error.type[0]; "" = success
		wantRetry   string
		retryAfter  bool
		wantEvents  []string
	}{
		{"authorized", dinterotest.TokenAuthorized, false, dintero.StatusAuthorized, "", "", false, []string{"AUTHORIZE"}},
		{"auto capture", dinterotest.TokenAuthorized, true, dintero.StatusCaptured, "", "", false, []string{"AUTHORIZE", "CAPTURE"}},
		{"insufficient funds", dinterotest.TokenInsufficientFunds, false, dintero.StatusFailed, "INSUFFICIENT_FUNDS", dintero.RetryAfterDelay, true, []string{"AUTHORIZE"}},
		{"insufficient funds, auto capture", dinterotest.TokenInsufficientFunds, true, dintero.StatusFailed, "INSUFFICIENT_FUNDS", dintero.RetryAfterDelay, true, []string{"AUTHORIZE"}},
		{"do not retry", dinterotest.TokenDoNotRetry, false, dintero.StatusDeclined, "DECLINED", dintero.RetryDoNotRetry, false, []string{"AUTHORIZE"}},
		{"expired card", dinterotest.TokenExpiredCard, false, dintero.StatusFailed, "EXPIRED_CARD", dintero.RetryDoNotRetry, false, []string{"AUTHORIZE"}},
		{"closed account", dinterotest.TokenClosedAccount, false, dintero.StatusFailed, "CLOSED_ACCOUNT", dintero.RetryDoNotRetry, false, []string{"AUTHORIZE"}},
		{"pick up card", dinterotest.TokenPickUpCard, false, dintero.StatusDeclined, "PICK_UP_CARD", dintero.RetryDoNotRetry, false, []string{"AUTHORIZE"}},
		{"restricted card", dinterotest.TokenRestrictedCard, false, dintero.StatusDeclined, "RESTRICTED_CARD", dintero.RetryDoNotRetry, false, []string{"AUTHORIZE"}},
		{"declined, no retry policy", dinterotest.TokenDeclinedNoPolicy, true, dintero.StatusDeclined, "DECLINED", "", false, []string{"AUTHORIZE"}},
		{"soft decline 0 times", dinterotest.SoftDeclineToken(0, ""), false, dintero.StatusAuthorized, "", "", false, []string{"AUTHORIZE"}},
		{"soft decline, first call", dinterotest.SoftDeclineToken(1, ""), false, dintero.StatusFailed, "DECLINED", dintero.RetryAfterDelay, true, []string{"AUTHORIZE"}},
	}
	products := []struct{ product, op, kind string }{
		{"payex.creditcard", "recurring_purchase", "recurrence_token"},
		{"payex.creditcard", "unscheduled_purchase", "payment_token"},
		{"bambora.creditcard", "unscheduled_purchase", "payment_token"},
		{"dintero_psp.creditcard", "recurring_purchase", "payment_token"},
	}
	for _, tt := range tests {
		for _, p := range products {
			t.Run(tt.name+"/"+p.product+"/"+p.op, func(t *testing.T) {
				a := newAPI(t, dinterotest.Options{})
				a.login()
				start := time.Now()
				tx := a.payTx(payBody(p.product, p.op, p.kind, tt.prefix+"4925000000000004", "ref-1", 29900, tt.autoCapture), "")
				if tx.Status != tt.wantStatus || tx.Success == nil || *tx.Success != (tt.wantType == "") {
					t.Fatalf("status %s success %v, want %s", tx.Status, tx.Success, tt.wantStatus)
				}
				var events []string
				for _, e := range tx.Events {
					events = append(events, e.Event)
					if e.Success != (tt.wantType == "") || e.CreatedAt.IsZero() {
						t.Errorf("event %+v", e)
					}
				}
				if strings.Join(events, ",") != strings.Join(tt.wantEvents, ",") {
					t.Errorf("events %v, want %v", events, tt.wantEvents)
				}
				ledger := a.sb.Ledger()
				c := a.sb.Counters()
				if tt.wantType == "" {
					if tx.LastError() != nil || len(ledger) != 1 || ledger[0].Status != tt.wantStatus || c.Authorized != 1 || c.Declined != 0 {
						t.Errorf("success: error %+v ledger %+v counters %+v", tx.LastError(), ledger, c)
					}
					return
				}
				if len(ledger) != 0 || c.Declined != 1 || c.Authorized != 0 {
					t.Errorf("decline: ledger %+v counters %+v", ledger, c)
				}
				e := tx.LastError()
				if tt.wantRetry == "" {
					if e == nil || len(e.Type) != 1 || e.Type[0] != tt.wantType || e.Message == "" || e.RetryPolicy != nil {
						t.Fatalf("error %+v, want type %s and no retry_policy", e, tt.wantType)
					}
					return
				}
				if e == nil || len(e.Type) != 1 || e.Type[0] != tt.wantType || e.Message == "" || e.RetryPolicy == nil ||
					len(e.RetryPolicy.RetryCodes) != 1 || e.RetryPolicy.RetryCodes[0] != tt.wantRetry {
					t.Fatalf("error %+v", e)
				}
				if got := e.RetryPolicy.RetryAfter != nil; got != tt.retryAfter {
					t.Fatalf("retry_after present %v, want %v", got, tt.retryAfter)
				}
				if tt.retryAfter {
					want := start.Add(24 * time.Hour)
					if d := e.RetryPolicy.RetryAfter.Sub(want); d < -time.Second || d > time.Minute {
						t.Errorf("retry_after %v, want about %v", e.RetryPolicy.RetryAfter, want)
					}
				}
				// Declines are transactions too.
				if txs := a.sb.Transactions(); len(txs) != 1 || txs[0].ID != tx.ID || txs[0].Status != tt.wantStatus {
					t.Errorf("transactions %+v", txs)
				}
			})
		}
	}
}

// TestTokenChoice checks which token payex recurring_purchase charges.
func TestTokenChoice(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	a.login()
	body := payBody("payex.creditcard", "recurring_purchase", "recurrence_token", dinterotest.TokenAuthorized+"r", "ref", 100, false)
	tokens := body["session"].(map[string]any)["customer"].(map[string]any)["tokens"].(map[string]any)
	tokens["payex.creditcard"].(map[string]any)["payment_token"] = dinterotest.TokenDoNotRetry + "p"
	if tx := a.payTx(body, ""); tx.Status != dintero.StatusAuthorized {
		t.Errorf("recurring with both tokens: %s, want the recurrence token's outcome", tx.Status)
	}
	body["payment"].(map[string]any)["operation"] = "unscheduled_purchase"
	if tx := a.payTx(body, ""); tx.Status != dintero.StatusDeclined {
		t.Errorf("unscheduled with both tokens: %s, want the payment token's outcome", tx.Status)
	}
	// payex recurring_purchase with only a payment_token is allowed.
	if tx := a.payTx(payBody("payex.creditcard", "recurring_purchase", "payment_token", dinterotest.TokenAuthorized+"x", "ref", 100, false), ""); tx.Status != dintero.StatusAuthorized {
		t.Errorf("payex recurring with payment_token: %s", tx.Status)
	}
}

func TestPayValidation(t *testing.T) {
	ok := dinterotest.TokenAuthorized + "4925"
	type body = map[string]any
	order := func(b body) body { return b["session"].(body)["order"].(body) }
	customer := func(b body) body { return b["session"].(body)["customer"].(body) }
	tests := []struct {
		name     string
		product  string
		op       string
		kind     string
		mutate   func(b body)
		raw      string // used instead of the body when set
		wantCode string
	}{
		{name: "float amount", mutate: func(b body) { order(b)["amount"] = 299.5 }},
		{name: "amount with exponent", raw: `{"session":{"customer":{"tokens":{"payex.creditcard":{"payment_token":"` + ok + `"}}},"order":{"amount":2.999e4,"currency":"NOK","merchant_reference":"r"}},"payment":{"payment_product_type":"payex.creditcard","operation":"unscheduled_purchase"}}`},
		{name: "amount as string", mutate: func(b body) { order(b)["amount"] = "29990" }},
		{name: "zero amount", mutate: func(b body) { order(b)["amount"] = 0 }},
		{name: "negative amount", mutate: func(b body) { order(b)["amount"] = -5 }},
		{name: "missing amount", mutate: func(b body) { delete(order(b), "amount") }},
		{name: "missing merchant_reference", mutate: func(b body) { delete(order(b), "merchant_reference") }},
		{name: "empty merchant_reference", mutate: func(b body) { order(b)["merchant_reference"] = "" }},
		{name: "missing currency", mutate: func(b body) { delete(order(b), "currency") }},
		{name: "lower-case currency", mutate: func(b body) { order(b)["currency"] = "nok" }},
		{name: "four-letter currency", mutate: func(b body) { order(b)["currency"] = "NOKK" }},
		{name: "currency as number", mutate: func(b body) { order(b)["currency"] = 578 }},
		{name: "float item amount", mutate: func(b body) { order(b)["items"] = []any{body{"line_id": "1", "amount": 10.5}} }},
		{name: "item without amount", mutate: func(b body) { order(b)["items"] = []any{body{"line_id": "1"}} }},
		{name: "float vat_amount", mutate: func(b body) { order(b)["vat_amount"] = 5.5 }},
		{name: "missing order", mutate: func(b body) { delete(b["session"].(body), "order") }},
		{name: "missing session", mutate: func(b body) { delete(b, "session") }},
		{name: "missing payment", mutate: func(b body) { delete(b, "payment") }},
		{name: "unknown product", mutate: func(b body) { b["payment"].(body)["payment_product_type"] = "payex.vipps" }},
		{name: "missing product", mutate: func(b body) { delete(b["payment"].(body), "payment_product_type") }},
		{name: "unknown operation", mutate: func(b body) { b["payment"].(body)["operation"] = "purchase" }},
		{name: "missing operation", mutate: func(b body) { delete(b["payment"].(body), "operation") }},
		{name: "bambora recurrence_token", product: "bambora.creditcard", op: "recurring_purchase", kind: "recurrence_token"},
		{name: "dintero_psp recurrence_token", product: "dintero_psp.creditcard", op: "recurring_purchase", kind: "recurrence_token"},
		{name: "bambora recurrence_token beside payment_token", product: "bambora.creditcard", mutate: func(b body) {
			customer(b)["tokens"].(body)["bambora.creditcard"].(body)["recurrence_token"] = ok
		}},
		{name: "payex unscheduled with recurrence_token only", product: "payex.creditcard", op: "unscheduled_purchase", kind: "recurrence_token"},
		{name: "nested tokens object", mutate: func(b body) {
			customer(b)["tokens"] = body{"payex": body{"creditcard": body{"payment_token": ok}}}
		}},
		{name: "nested tokens beside dotted key", mutate: func(b body) {
			customer(b)["tokens"].(body)["payex"] = body{"creditcard": body{"payment_token": ok}}
		}},
		{name: "token for another provider", mutate: func(b body) {
			customer(b)["tokens"] = body{"bambora.creditcard": body{"payment_token": ok}}
		}},
		{name: "empty token", mutate: func(b body) {
			customer(b)["tokens"].(body)["payex.creditcard"].(body)["payment_token"] = ""
		}},
		{name: "token as number", mutate: func(b body) {
			customer(b)["tokens"].(body)["payex.creditcard"].(body)["payment_token"] = 42
		}},
		{name: "token entry not an object", mutate: func(b body) { customer(b)["tokens"].(body)["payex.creditcard"] = ok }},
		{name: "no tokens", mutate: func(b body) { delete(customer(b), "tokens") }},
		{name: "no customer", mutate: func(b body) { delete(b["session"].(body), "customer") }},
		{name: "not json", raw: `{"session":`},
		{name: "trailing data", raw: `{} {}`},
		{name: "array body", raw: `[]`},
		{name: "unknown test card", mutate: func(b body) {
			customer(b)["tokens"].(body)["payex.creditcard"].(body)["payment_token"] = "tok_live_4925"
		}, wantCode: "INVALID_PAYMENT_TOKEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAPI(t, dinterotest.Options{})
			a.login()
			product, op, kind := tt.product, tt.op, tt.kind
			if product == "" {
				product = "payex.creditcard"
			}
			if op == "" {
				op = "unscheduled_purchase"
			}
			if kind == "" {
				kind = "payment_token"
			}
			var req any = tt.raw
			if tt.raw == "" {
				b := payBody(product, op, kind, ok, "ref-v", 29990, false)
				if tt.mutate != nil {
					tt.mutate(b)
				}
				req = b
			}
			r := a.pay(req, dintero.ToggleStrictSuccessMerchantReference)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
			want := tt.wantCode
			if want == "" {
				want = "INVALID_REQUEST"
			}
			if code := r.errorCode(t); code != want {
				t.Errorf("code %q, want %q: %s", code, want, r.body)
			}
			var eb dintero.ErrorBody
			r.decode(t, &eb)
			if eb.Success == nil || *eb.Success {
				t.Errorf("success %v, want false", eb.Success)
			}
			if strings.Contains(string(r.body), "4925") {
				t.Errorf("error echoes the token: %s", r.body)
			}
			c := a.sb.Counters()
			if c.InvalidRequests != 1 || c.PayRequests != 1 || c.Authorized+c.Declined != 0 {
				t.Errorf("counters %+v", c)
			}
			if n := len(a.sb.Transactions()); n != 0 {
				t.Errorf("%d transactions recorded", n)
			}
		})
	}
}

func TestPayAcceptsUnknownFields(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	a.login()
	b := payBody("bambora.creditcard", "unscheduled_purchase", "payment_token", dinterotest.TokenAuthorized+"1", "ref", 500, false)
	b["profile_id"] = "default"
	b["session"].(map[string]any)["expires_at"] = "2030-01-01T00:00:00Z"
	b["session"].(map[string]any)["customer"].(map[string]any)["tokens"].(map[string]any)["klarna.klarna"] = map[string]any{"x": 1}
	b["payment"].(map[string]any)["extra"] = true
	if tx := a.payTx(b, ""); tx.Status != dintero.StatusAuthorized {
		t.Fatalf("status %s", tx.Status)
	}
}

func TestFeatureToggles(t *testing.T) {
	const (
		strict  = dintero.ToggleStrictMerchantReference
		success = dintero.ToggleStrictSuccessMerchantReference
		okTok   = dinterotest.TokenAuthorized + "1"
		nsfTok  = dinterotest.TokenInsufficientFunds + "1"
	)
	type step struct {
		token, toggles string
		cit            bool // create a sessions-profile session with the reference instead
		want           int  // HTTP status
	}
	tests := []struct {
		name       string
		steps      []step
		wantLedger int
		wantDups   int64
	}{
		{"no toggle allows duplicates", []step{{token: okTok, want: 200}, {token: okTok, want: 200}}, 2, 0},
		{"strict-success refuses a second success", []step{{token: okTok, toggles: success, want: 200}, {token: okTok, toggles: success, want: 400}}, 1, 1},
		{"strict-success allows a retry after a decline", []step{
			{token: nsfTok, toggles: success, want: 200}, {token: nsfTok, toggles: success, want: 200},
			{token: okTok, toggles: success, want: 200}, {token: okTok, toggles: success, want: 400}, {token: nsfTok, toggles: success, want: 400},
		}, 1, 2},
		{"strict refuses after a decline", []step{{token: nsfTok, toggles: strict, want: 200}, {token: okTok, toggles: strict, want: 400}}, 0, 1},
		{"strict refuses after a CIT session", []step{{cit: true, want: 200}, {token: okTok, toggles: strict, want: 400}}, 0, 1},
		{"strict-success ignores a CIT session", []step{{cit: true, want: 200}, {token: okTok, toggles: success, want: 200}}, 1, 0},
		{"toggle in a CSV list", []step{{token: okTok, want: 200}, {token: okTok, toggles: "strict-session-amounts, " + success + " ", want: 400}}, 1, 1},
		{"later toggle only checks the past", []step{{token: okTok, want: 200}, {token: okTok, want: 200}, {token: okTok, toggles: strict + "," + success, want: 400}}, 2, 1},
		{"invalid token leaves no session", []step{{token: "nope", toggles: strict, want: 400}, {token: okTok, toggles: strict, want: 200}}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAPI(t, dinterotest.Options{})
			a.login()
			for i, s := range tt.steps {
				var r response
				if s.cit {
					r = a.do(http.MethodPost, "/v1/sessions-profile", profileBody("same-ref"), nil)
				} else {
					r = a.pay(payBody("payex.creditcard", "unscheduled_purchase", "payment_token", s.token, "same-ref", 1000, false), s.toggles)
				}
				if r.status != s.want {
					t.Fatalf("step %d: status %d, want %d: %s", i, r.status, s.want, r.body)
				}
				if r.status == 400 && s.token != "nope" && r.errorCode(t) != "DUPLICATE_MERCHANT_REFERENCE" {
					t.Errorf("step %d: %s", i, r.body)
				}
			}
			if n := len(a.sb.Ledger()); n != tt.wantLedger {
				t.Errorf("ledger %d, want %d", n, tt.wantLedger)
			}
			if n := a.sb.Counters().DuplicatesRefused; n != tt.wantDups {
				t.Errorf("DuplicatesRefused %d, want %d", n, tt.wantDups)
			}
		})
	}
}

func TestConcurrentSameReference(t *testing.T) {
	for _, toggle := range []string{dintero.ToggleStrictMerchantReference, dintero.ToggleStrictSuccessMerchantReference} {
		t.Run(toggle, func(t *testing.T) {
			a := newAPI(t, dinterotest.Options{})
			a.login()
			const n = 50
			body := payBody("dintero_psp.creditcard", "recurring_purchase", "payment_token", dinterotest.TokenAuthorized+"c", "concurrent", 4200, false)
			statuses := make(chan int, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					<-start
					r, err := a.send(http.MethodPost, "/v1/sessions/pay", body, map[string]string{"Dintero-Feature-Toggles": toggle})
					if err != nil {
						t.Errorf("pay: %v", err)
						return
					}
					statuses <- r.status
				})
			}
			close(start)
			wg.Wait()
			close(statuses)
			count := map[int]int{}
			for s := range statuses {
				count[s]++
			}
			if count[200] != 1 || count[400] != n-1 {
				t.Errorf("statuses %v, want one 200 and %d 400", count, n-1)
			}
			if l := a.sb.Ledger(); len(l) != 1 {
				t.Errorf("ledger %d entries, want 1", len(l))
			}
			if c := a.sb.Counters(); c.DuplicatesRefused != n-1 || c.Authorized != 1 || c.PayRequests != n {
				t.Errorf("counters %+v", c)
			}
		})
	}
}
