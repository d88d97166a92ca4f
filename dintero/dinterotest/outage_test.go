package dinterotest_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
)

// TestOutageHang is "Dintero charged, lost the answer, and lookups fail":
// the charge is made, the client times out, every lookup answers 503
// until the outage ends, and then the lookup finds the charge.
func TestOutageHang(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	a.login()
	a.sb.SetOutage(dinterotest.Outage{Duration: time.Minute})
	a.client = &http.Client{Timeout: 300 * time.Millisecond}
	start := time.Now()
	if r, err := a.send(http.MethodPost, "/v1/sessions/pay", okPay("lost-1"), map[string]string{
		"Dintero-Feature-Toggles": dintero.ToggleStrictSuccessMerchantReference}); err == nil {
		t.Fatalf("pay during an outage answered %d %s", r.status, r.body)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("gave up after %v: the answer did not hang", d)
	}
	ledger := a.sb.Ledger()
	if len(ledger) != 1 || ledger[0].MerchantReference != "lost-1" {
		t.Fatalf("ledger %+v: the charge must be made", ledger)
	}
	a.client = &http.Client{Timeout: 10 * time.Second}
	for _, path := range []string{"/v1/transactions?merchant_reference=lost-1", "/v1/transactions/" + ledger[0].TransactionID,
		"/v1/sessions/" + ledger[0].SessionID} {
		if r := a.do(http.MethodGet, path, nil, nil); r.status != http.StatusServiceUnavailable || r.errorCode(t) != "SERVICE_UNAVAILABLE" {
			t.Errorf("GET %s during the outage: %d %s, want 503", path, r.status, r.body)
		}
	}
	// The token endpoint works.
	a.login()
	if st := a.sb.OutageStatus(); !st.Active || st.Answer != dinterotest.OutageHang || st.End.Sub(st.Start) != time.Minute {
		t.Errorf("status %+v", st)
	}
	c := a.sb.Counters()
	if c.OutageAnswersLost != 1 || c.OutageLookupsFailed != 3 || c.OutageRefused != 0 || c.Authorized != 1 || c.PayRequests != 1 {
		t.Errorf("counters %+v", c)
	}

	a.sb.EndOutage()
	var txs []dintero.Transaction
	a.do(http.MethodGet, "/v1/transactions?merchant_reference=lost-1", nil, nil).decode(t, &txs)
	if len(txs) != 1 || txs[0].ID != ledger[0].TransactionID || txs[0].Status != dintero.StatusAuthorized {
		t.Errorf("lookup after the outage: %+v", txs)
	}
	// A retry is refused by the strict toggle: no second charge.
	if r := a.pay(okPay("lost-1"), dintero.ToggleStrictSuccessMerchantReference); r.status != http.StatusBadRequest ||
		r.errorCode(t) != "DUPLICATE_MERCHANT_REFERENCE" {
		t.Errorf("retry: %d %s", r.status, r.body)
	}
	if n := len(a.sb.Ledger()); n != 1 {
		t.Errorf("%d charges", n)
	}
}

func TestOutageGatewayAnswers(t *testing.T) {
	for _, tt := range []struct {
		answer string
		status int
		code   string
	}{
		{dinterotest.OutageBadGateway, http.StatusBadGateway, "BAD_GATEWAY"},
		{dinterotest.OutageGatewayTimeout, http.StatusGatewayTimeout, "GATEWAY_TIMEOUT"},
	} {
		t.Run(tt.answer, func(t *testing.T) {
			a := newAPI(t, dinterotest.Options{Outage: dinterotest.Outage{Duration: time.Minute, Answer: tt.answer}})
			a.login()
			// Declines are processed too.
			r := a.pay(payBody("payex.creditcard", "unscheduled_purchase", "payment_token", dinterotest.TokenDoNotRetry+"1", "d-1", 100, false), "")
			if r.status != tt.status || r.errorCode(t) != tt.code {
				t.Fatalf("pay: %d %s, want %d %s", r.status, r.body, tt.status, tt.code)
			}
			r = a.pay(okPay("ok-1"), "")
			if r.status != tt.status {
				t.Fatalf("pay: %d", r.status)
			}
			txs := a.sb.Transactions()
			if len(txs) != 2 || txs[0].Status != dintero.StatusDeclined || txs[1].Status != dintero.StatusAuthorized || len(a.sb.Ledger()) != 1 {
				t.Errorf("transactions %+v", txs)
			}
			// A customer-initiated session is stored, its answer lost.
			if r := a.do(http.MethodPost, "/v1/sessions-profile", profileBody("cit-1"), nil); r.status != tt.status {
				t.Errorf("sessions-profile: %d %s", r.status, r.body)
			}
			var sessions []struct {
				Kind  string `json:"kind"`
				Order struct {
					MerchantReference string `json:"merchant_reference"`
				} `json:"order"`
			}
			a.do(http.MethodGet, dinterotest.AdminPrefix+"sessions", nil, nil).decode(t, &sessions)
			found := false
			for _, s := range sessions {
				found = found || (s.Kind == "profile" && s.Order.MerchantReference == "cit-1")
			}
			if !found {
				t.Errorf("session not stored: %+v", sessions)
			}
			if c := a.sb.Counters(); c.OutageAnswersLost != 3 || c.SessionsCreated != 1 {
				t.Errorf("counters %+v", c)
			}
		})
	}
}

func TestOutageRefuses(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	a.login()
	a.sb.SetOutage(dinterotest.Outage{Duration: time.Minute, Answer: dinterotest.OutageBadGateway, RefuseRate: 1})
	for range 3 {
		if r := a.pay(okPay("r-1"), ""); r.status != http.StatusServiceUnavailable {
			t.Fatalf("pay: %d %s, want 503", r.status, r.body)
		}
	}
	if c := a.sb.Counters(); c.OutageRefused != 3 || c.OutageAnswersLost != 0 || len(a.sb.Transactions()) != 0 {
		t.Errorf("counters %+v transactions %d", c, len(a.sb.Transactions()))
	}
}

func TestOutageWindowEnds(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	a.login()
	a.sb.SetOutage(dinterotest.Outage{Duration: 150 * time.Millisecond, Answer: dinterotest.OutageGatewayTimeout})
	if r := a.do(http.MethodGet, "/v1/transactions", nil, nil); r.status != http.StatusServiceUnavailable {
		t.Fatalf("lookup in the window: %d", r.status)
	}
	waitFor(t, "the outage to end", func() bool { return !a.sb.OutageStatus().Active })
	if r := a.do(http.MethodGet, "/v1/transactions", nil, nil); r.status != http.StatusOK {
		t.Errorf("lookup after the window: %d", r.status)
	}
	a.payTx(okPay("after"), "")
	if st := a.sb.OutageStatus(); st.Active || st.Duration != 150*time.Millisecond {
		t.Errorf("status %+v: the last outage stays visible, inactive", st)
	}
}

func TestOutageAdmin(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	a.login()
	path := dinterotest.AdminPrefix + "outage"
	status := func(r response) dinterotest.OutageStatus {
		t.Helper()
		if r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var st dinterotest.OutageStatus
		r.decode(t, &st)
		return st
	}
	if st := status(a.do(http.MethodGet, path, nil, nil)); st.Active || st.Duration != 0 {
		t.Errorf("initial %+v", st)
	}
	st := status(a.do(http.MethodPut, path, `{"duration":"2m","answer":"504","refuse_rate":0.25}`, nil))
	if !st.Active || st.Duration != 2*time.Minute || st.Answer != "504" || st.RefuseRate != 0.25 || st.End.Sub(st.Start) != 2*time.Minute {
		t.Errorf("after PUT %+v", st)
	}
	if r := a.do(http.MethodGet, "/v1/transactions", nil, nil); r.status != http.StatusServiceUnavailable {
		t.Errorf("lookup: %d", r.status)
	}
	if st := status(a.do(http.MethodDelete, path, nil, nil)); st.Active {
		t.Errorf("after DELETE %+v", st)
	}
	if r := a.do(http.MethodGet, "/v1/transactions", nil, nil); r.status != http.StatusOK {
		t.Errorf("lookup after DELETE: %d", r.status)
	}
	// The default answer is hang; duration 0 ends an outage.
	if st := status(a.do(http.MethodPut, path, `{"duration":"1m"}`, nil)); st.Answer != dinterotest.OutageHang || !st.Active {
		t.Errorf("default answer %+v", st)
	}
	if st := status(a.do(http.MethodPut, path, `{"duration":"0s"}`, nil)); st.Active {
		t.Errorf("duration 0 %+v", st)
	}
	for _, bad := range []string{`{"duration":"soon"}`, `{"duration":"-1s"}`, `{"answer":"500"}`, `{"refuse_rate":2}`, `{"start":"now"}`} {
		if r := a.do(http.MethodPut, path, bad, nil); r.status != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, r.status)
		}
	}
	if r := a.do(http.MethodPost, path, nil, nil); r.status != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", r.status)
	}
	// The index lists it.
	var idx struct {
		Admin []struct{ Method, Path string }
	}
	a.do(http.MethodGet, dinterotest.AdminPrefix, nil, nil).decode(t, &idx)
	n := 0
	for _, r := range idx.Admin {
		if r.Path == path {
			n++
		}
	}
	if n != 3 {
		t.Errorf("index lists %d outage routes, want 3", n)
	}
}

func TestOutageJSONRoundTrip(t *testing.T) {
	in := dinterotest.Outage{Duration: 90 * time.Second, Answer: dinterotest.OutageBadGateway, RefuseRate: 0.5}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"duration":"1m30s","answer":"502","refuse_rate":0.5}`; string(b) != want {
		t.Errorf("got %s want %s", b, want)
	}
	var out dinterotest.Outage
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Errorf("round trip %+v %v", out, err)
	}
}

func TestNewPanicsOnInvalidOutage(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New with an invalid outage did not panic")
		}
	}()
	dinterotest.New(dinterotest.Options{Outage: dinterotest.Outage{Answer: "maybe"}})
}
