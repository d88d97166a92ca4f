package dinterotest_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
)

const citSecretMarker = "cit-secret"

// callback is one request the receiver got.
type callback struct {
	method    string
	url       *url.URL
	header    http.Header
	body      []byte
	verifyErr error // dintero.VerifyCallback with the receiver's secret
}

// receiver is a merchant's callback endpoint. status picks the answer to
// the n-th request (1-based); nil answers 200.
type receiver struct {
	srv    *httptest.Server
	got    chan callback
	secret []byte

	mu     sync.Mutex
	n      int
	status func(n int) int
	hang   func(n int) bool
}

func newReceiver(t *testing.T, secret []byte, status func(n int) int) *receiver {
	t.Helper()
	rc := &receiver{got: make(chan callback, 64), secret: secret, status: status}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.n++
		n, st, hang := rc.n, 200, false
		if rc.status != nil {
			st = rc.status(n)
		}
		if rc.hang != nil {
			hang = rc.hang(n)
		}
		rc.mu.Unlock()
		rc.got <- callback{
			method: r.Method, url: r.URL, header: r.Header.Clone(), body: b,
			verifyErr: dintero.VerifyCallback(r, rc.secret, dinterotest.DefaultAccountID, time.Time{}, 0),
		}
		if hang {
			<-r.Context().Done()
			return
		}
		w.WriteHeader(st)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) next(t *testing.T) callback {
	t.Helper()
	select {
	case c := <-rc.got:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no callback arrived")
	}
	return callback{}
}

func (rc *receiver) none(t *testing.T) {
	t.Helper()
	select {
	case c := <-rc.got:
		t.Fatalf("unexpected callback %s %s", c.method, c.url)
	default:
	}
}

// citBody is a /v1/sessions-profile body whose callback_url is cb (with
// query), and whose saved card is token (none when "").
func citBody(ref, token, cb string) map[string]any {
	b := map[string]any{
		"url":        map[string]any{"return_url": "https://shop.example/thanks?order=" + ref},
		"order":      map[string]any{"amount": 29990, "currency": "NOK", "merchant_reference": ref},
		"profile_id": "default",
		"metadata":   map[string]any{"ext_order": "42"},
	}
	if cb != "" {
		b["url"].(map[string]any)["callback_url"] = cb
	}
	if token != "" {
		b["customer"] = map[string]any{
			"email":  "john.doe@example.com",
			"tokens": map[string]any{"bambora.creditcard": map[string]any{"payment_token": token}},
		}
	}
	return b
}

// createSession makes a session through the API and returns its id and
// page URL.
func (a *api) createSession(body any) (string, string) {
	a.t.Helper()
	if a.token == "" {
		a.login()
	}
	r := a.do(http.MethodPost, "/v1/sessions-profile", body, nil)
	if r.status != http.StatusOK {
		a.t.Fatalf("sessions-profile: %d %s", r.status, r.body)
	}
	var sc dintero.SessionCreated
	r.decode(a.t, &sc)
	return sc.ID, sc.URL
}

// browser is an HTTP client that does not follow redirects.
var browser = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

type page struct {
	status   int
	header   http.Header
	body     string
	location string
}

func fetch(t *testing.T, method, u string, form url.Values) page {
	t.Helper()
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{status: resp.StatusCode, header: resp.Header, body: string(b), location: resp.Header.Get("Location")}
}

func TestViewPage(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	withCard, pageURL := a.createSession(citBody("cit-page", dinterotest.TokenAuthorized+citSecretMarker, ""))
	noCard, noCardURL := a.createSession(citBody("cit-nocard", "", ""))

	if want := a.base + "/v1/view/" + withCard; pageURL != want {
		t.Errorf("session url %q, want %q", pageURL, want)
	}
	tests := []struct {
		name       string
		url        string
		status     int
		contains   []string
		notContain []string
	}{
		{"saved card", pageURL, http.StatusOK,
			[]string{"cit-page", "299.90 NOK", "•••• 4242", `id="cvc"`, `name="cvc"`, `id="pay"`, `action="/v1/view/` + withCard + `/pay"`},
			[]string{citSecretMarker, dinterotest.TokenAuthorized, "no-card"}},
		{"no saved card", noCardURL, http.StatusOK,
			[]string{"cit-nocard", "299.90 NOK", `id="no-card"`, "No saved card"},
			[]string{`id="pay"`, `id="cvc"`, "4242"}},
		{"unknown session", a.base + "/v1/view/T12345678.nope", http.StatusNotFound,
			[]string{"Session not found"}, []string{`id="pay"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := fetch(t, http.MethodGet, tt.url, nil)
			if p.status != tt.status {
				t.Fatalf("status %d, want %d: %s", p.status, tt.status, p.body)
			}
			if ct := p.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			for _, s := range tt.contains {
				if !strings.Contains(p.body, s) {
					t.Errorf("page lacks %q:\n%s", s, p.body)
				}
			}
			for _, s := range tt.notContain {
				if strings.Contains(p.body, s) {
					t.Errorf("page shows %q:\n%s", s, p.body)
				}
			}
		})
	}
	t.Run("no access token needed, wrong method refused", func(t *testing.T) {
		if p := fetch(t, http.MethodPost, pageURL, url.Values{}); p.status != http.StatusMethodNotAllowed {
			t.Errorf("POST page: %d", p.status)
		}
		if p := fetch(t, http.MethodGet, pageURL+"/pay", nil); p.status != http.StatusMethodNotAllowed {
			t.Errorf("GET pay: %d", p.status)
		}
	})
	t.Run("paying a session without a card", func(t *testing.T) {
		p := fetch(t, http.MethodPost, noCardURL+"/pay", url.Values{"cvc": {"123"}})
		if p.status != http.StatusConflict || !strings.Contains(p.body, "No saved card") {
			t.Errorf("%d %s", p.status, p.body)
		}
		if _, err := a.sb.PaySession(noCard, "123"); !errors.Is(err, dinterotest.ErrNoSavedCard) {
			t.Errorf("PaySession: %v", err)
		}
	})
	if n := len(a.sb.Transactions()); n != 0 {
		t.Errorf("%d transactions after viewing pages", n)
	}
}

func TestViewPayCVC(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	id, pageURL := a.createSession(citBody("cit-cvc", dinterotest.TokenAuthorized+citSecretMarker, ""))
	for _, cvc := range []string{"", "12", "12345", "12a", "abc", " 123", "١٢٣"} {
		t.Run("cvc "+cvc, func(t *testing.T) {
			p := fetch(t, http.MethodPost, pageURL+"/pay", url.Values{"cvc": {cvc}})
			if p.status != http.StatusBadRequest || !strings.Contains(p.body, "3 or 4 digits") || !strings.Contains(p.body, `id="pay"`) {
				t.Errorf("%d %s", p.status, p.body)
			}
			if _, err := a.sb.PaySession(id, cvc); !errors.Is(err, dinterotest.ErrInvalidCVC) {
				t.Errorf("PaySession: %v", err)
			}
		})
	}
	if n, c := len(a.sb.Transactions()), a.sb.Counters(); n != 0 || c.SessionsPaid != 0 {
		t.Errorf("%d transactions, counters %+v", n, c)
	}
	for _, cvc := range []string{"123", "1234"} {
		if _, err := a.sb.PaySession(id, cvc); cvc == "123" && err != nil {
			t.Errorf("cvc %q: %v", cvc, err)
		} else if cvc == "1234" && !errors.Is(err, dinterotest.ErrSessionPaid) {
			t.Errorf("second pay: %v", err)
		}
	}
}

func TestViewPayForm(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	id, pageURL := a.createSession(citBody("cit-form", dinterotest.TokenAuthorized+citSecretMarker, ""))

	p := fetch(t, http.MethodPost, pageURL+"/pay", url.Values{"cvc": {"123"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("pay: %d %s", p.status, p.body)
	}
	txs := a.sb.Transactions()
	if len(txs) != 1 {
		t.Fatalf("%d transactions", len(txs))
	}
	tx := txs[0]
	if tx.SessionID != id || tx.Status != dintero.StatusAuthorized || tx.MerchantReference != "cit-form" ||
		tx.Amount != 29990 || tx.Currency != "NOK" || tx.PaymentProductType != "bambora.creditcard" ||
		tx.PaymentProduct != "bambora" || tx.PaymentOperation != "" || tx.Card == nil || !strings.HasSuffix(tx.Card.MaskedPAN, "4242") ||
		tx.Metadata["session:profile_id"] != "default" || tx.Metadata["ext_order"] != "42" {
		t.Errorf("transaction %+v", tx)
	}
	loc, err := url.Parse(p.location)
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	if loc.Host != "shop.example" || loc.Path != "/thanks" || q.Get("order") != "cit-form" ||
		q.Get("transaction_id") != tx.ID || q.Get("merchant_reference") != "cit-form" || q.Has("error") {
		t.Errorf("Location %s", p.location)
	}
	ledger := a.sb.Ledger()
	if len(ledger) != 1 || ledger[0].TransactionID != tx.ID || ledger[0].SessionID != id || ledger[0].Amount != 29990 ||
		ledger[0].Status != dintero.StatusAuthorized || ledger[0].PaymentProductType != "bambora.creditcard" {
		t.Errorf("ledger %+v", ledger)
	}
	if c := a.sb.Counters(); c.SessionsPaid != 1 || c.Authorized != 1 || c.Declined != 0 || c.CallbacksSent != 0 {
		t.Errorf("counters %+v", c)
	}

	// The API shows the payment: the session's transaction_id, the
	// transaction by id and by merchant_reference.
	var sv struct {
		TransactionID string `json:"transaction_id"`
	}
	a.do(http.MethodGet, "/v1/sessions/"+id, nil, nil).decode(t, &sv)
	if sv.TransactionID != tx.ID {
		t.Errorf("session transaction_id %q", sv.TransactionID)
	}
	if r := a.do(http.MethodGet, "/v1/transactions/"+tx.ID, nil, nil); r.status != http.StatusOK {
		t.Errorf("get transaction: %d", r.status)
	}
	var list []dintero.Transaction
	a.do(http.MethodGet, "/v1/transactions?merchant_reference=cit-form", nil, nil).decode(t, &list)
	if len(list) != 1 || list[0].ID != tx.ID {
		t.Errorf("list %+v", list)
	}

	// Paid once: the page says so and the form is gone.
	again := fetch(t, http.MethodPost, pageURL+"/pay", url.Values{"cvc": {"123"}})
	if again.status != http.StatusConflict || !strings.Contains(again.body, "already paid") || strings.Contains(again.body, `id="pay"`) {
		t.Errorf("second pay: %d %s", again.status, again.body)
	}
	view := fetch(t, http.MethodGet, pageURL, nil)
	if !strings.Contains(view.body, `id="paid"`) || !strings.Contains(view.body, tx.ID) || strings.Contains(view.body, `id="pay"`) {
		t.Errorf("page after paying: %s", view.body)
	}
	if _, err := a.sb.PaySession(id, "123"); !errors.Is(err, dinterotest.ErrSessionPaid) {
		t.Errorf("PaySession after paying: %v", err)
	}
	if n := len(a.sb.Ledger()); n != 1 {
		t.Errorf("ledger has %d entries", n)
	}
	// strict-success-merchant-reference now refuses a MIT charge on it.
	r := a.pay(payBody("bambora.creditcard", "unscheduled_purchase", "payment_token", dinterotest.TokenAuthorized+"m", "cit-form", 100, false),
		dintero.ToggleStrictSuccessMerchantReference)
	if r.status != http.StatusBadRequest || r.errorCode(t) != "DUPLICATE_MERCHANT_REFERENCE" {
		t.Errorf("MIT on a paid CIT reference: %d %s", r.status, r.body)
	}
	for _, b := range a.allBodies() {
		if strings.Contains(string(b), citSecretMarker) {
			t.Errorf("a response shows the token: %s", b)
		}
	}
}

func TestPaySessionErrors(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	unknown, _ := a.createSession(citBody("cit-unknown", "not-a-test-card", ""))
	mit := a.payTx(payBody("bambora.creditcard", "unscheduled_purchase", "payment_token", dinterotest.TokenAuthorized+"m", "mit-1", 100, false), "")
	tests := []struct {
		name string
		id   string
		want error
	}{
		{"unknown session", "T12345678.nope", dinterotest.ErrSessionNotFound},
		{"unknown card", unknown, dinterotest.ErrUnknownCard},
		{"a MIT session is paid", mit.SessionID, dinterotest.ErrSessionPaid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := a.sb.PaySession(tt.id, "123"); !errors.Is(err, tt.want) {
				t.Errorf("err %v, want %v", err, tt.want)
			}
		})
	}
	p := fetch(t, http.MethodPost, a.base+"/v1/view/"+unknown+"/pay", url.Values{"cvc": {"123"}})
	if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "not a sandbox test card") {
		t.Errorf("unknown card page: %d %s", p.status, p.body)
	}
	if n := len(a.sb.Transactions()); n != 1 {
		t.Errorf("%d transactions, want only the MIT one", n)
	}
}

func TestAdminSessions(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	id1, _ := a.createSession(citBody("cit-a", dinterotest.TokenAuthorized+citSecretMarker, "https://shop.example/cb"))
	id2, _ := a.createSession(citBody("cit-b", "", ""))
	mit := a.payTx(payBody("payex.creditcard", "recurring_purchase", "recurrence_token", dinterotest.TokenAuthorized+citSecretMarker, "mit-a", 100, false), "")
	if _, err := a.sb.PaySession(id1, "123"); err != nil {
		t.Fatal(err)
	}
	r := a.do(http.MethodGet, dinterotest.AdminPrefix+"sessions", nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if strings.Contains(string(r.body), citSecretMarker) {
		t.Errorf("admin sessions show a token: %s", r.body)
	}
	var got []struct {
		ID            string   `json:"id"`
		Kind          string   `json:"kind"`
		SavedCards    []string `json:"saved_cards"`
		TransactionID string   `json:"transaction_id"`
		Order         struct {
			MerchantReference string `json:"merchant_reference"`
		} `json:"order"`
		URL struct {
			CallbackURL string `json:"callback_url"`
		} `json:"url"`
	}
	r.decode(t, &got)
	if len(got) != 3 {
		t.Fatalf("%d sessions: %s", len(got), r.body)
	}
	byID := map[string]int{}
	for i, s := range got {
		byID[s.ID] = i
	}
	s1, s2, s3 := got[byID[id1]], got[byID[id2]], got[byID[mit.SessionID]]
	if s1.Kind != "profile" || len(s1.SavedCards) != 1 || s1.SavedCards[0] != "bambora.creditcard" ||
		s1.TransactionID == "" || s1.Order.MerchantReference != "cit-a" || s1.URL.CallbackURL != "https://shop.example/cb" {
		t.Errorf("paid CIT session %+v", s1)
	}
	if s2.Kind != "profile" || len(s2.SavedCards) != 0 || s2.TransactionID != "" {
		t.Errorf("CIT session without card %+v", s2)
	}
	if s3.Kind != "pay" || s3.TransactionID != mit.ID {
		t.Errorf("MIT session %+v", s3)
	}
	if r := a.do(http.MethodPost, dinterotest.AdminPrefix+"sessions", nil, nil); r.status != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", r.status)
	}
	a.sb.Reset()
	var empty []json.RawMessage
	a.do(http.MethodGet, dinterotest.AdminPrefix+"sessions", nil, nil).decode(t, &empty)
	if len(empty) != 0 {
		t.Errorf("after reset: %d sessions", len(empty))
	}
}
