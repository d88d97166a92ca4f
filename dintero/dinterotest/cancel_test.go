package dinterotest_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero/dinterotest"
)

// sessionJSON is the part of a session's JSON these tests read.
type sessionJSON struct {
	ID            string    `json:"id"`
	TransactionID string    `json:"transaction_id"`
	CancelledAt   time.Time `json:"cancelled_at"`
	CancelledBy   string    `json:"cancelled_by"`
	State         string    `json:"state"` // admin entries only
	Order         struct {
		MerchantReference string `json:"merchant_reference"`
	} `json:"order"`
}

func TestSessionCancel(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	id, pageURL := a.createSession(citBody("cit-cancel", dinterotest.TokenAuthorized+citSecretMarker, ""))
	other, _ := a.createSession(citBody("cit-cancel-other", dinterotest.TokenAuthorized+"2", ""))

	r := a.do(http.MethodPost, "/v1/sessions/"+id+"/cancel", nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	var cancelled sessionJSON
	r.decode(t, &cancelled)
	if cancelled.ID != id || cancelled.CancelledAt.IsZero() || cancelled.CancelledBy != dinterotest.DefaultClientID ||
		cancelled.Order.MerchantReference != "cit-cancel" {
		t.Errorf("cancel answered %s", r.body)
	}
	var got sessionJSON
	a.do(http.MethodGet, "/v1/sessions/"+id, nil, nil).decode(t, &got)
	if !got.CancelledAt.Equal(cancelled.CancelledAt) {
		t.Errorf("GET after cancel: cancelled_at %v, want %v", got.CancelledAt, cancelled.CancelledAt)
	}

	// Cancelling again answers the same session, unchanged.
	var again sessionJSON
	r = a.do(http.MethodPost, "/v1/sessions/"+id+"/cancel", nil, nil)
	r.decode(t, &again)
	if r.status != http.StatusOK || !again.CancelledAt.Equal(cancelled.CancelledAt) {
		t.Errorf("second cancel: %d %s", r.status, r.body)
	}

	// The customer cannot pay it, on the page nor through PaySession.
	p := fetch(t, http.MethodGet, pageURL, nil)
	if p.status != http.StatusOK || !strings.Contains(p.body, `id="cancelled"`) || strings.Contains(p.body, `id="cvc"`) {
		t.Errorf("page of a cancelled session: %d %s", p.status, p.body)
	}
	p = fetch(t, http.MethodPost, pageURL+"/pay", url.Values{"cvc": {"123"}})
	if p.status != http.StatusConflict || !strings.Contains(p.body, "has been cancelled") || p.location != "" {
		t.Errorf("paying a cancelled session on its page: %d %q %s", p.status, p.location, p.body)
	}
	if _, err := a.sb.PaySession(id, "123"); !errors.Is(err, dinterotest.ErrSessionCancelled) {
		t.Errorf("PaySession of a cancelled session: %v, want ErrSessionCancelled", err)
	}
	if n := len(a.sb.Ledger()) + len(a.sb.Transactions()); n != 0 {
		t.Errorf("%d ledger entries and transactions after paying a cancelled session, want none", n)
	}
	// The other session is untouched and can be paid.
	if _, err := a.sb.PaySession(other, "123"); err != nil {
		t.Errorf("PaySession of the other session: %v", err)
	}

	// A paid session is not cancelled (the sandbox voids nothing), an
	// unknown one is not found.
	if r := a.do(http.MethodPost, "/v1/sessions/"+other+"/cancel", nil, nil); r.status != http.StatusBadRequest || r.errorCode(t) != "INVALID_REQUEST" {
		t.Errorf("cancel of a paid session: %d %s", r.status, r.body)
	}
	if r := a.do(http.MethodPost, "/v1/sessions/T12345678.nope/cancel", nil, nil); r.status != http.StatusNotFound || r.errorCode(t) != "NOT_FOUND" {
		t.Errorf("cancel of an unknown session: %d %s", r.status, r.body)
	}
	if r := a.do(http.MethodGet, "/v1/sessions/"+id+"/cancel", nil, nil); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET .../cancel: %d %s", r.status, r.body)
	}
	saved := a.token
	a.token = ""
	if r := a.do(http.MethodPost, "/v1/sessions/"+id+"/cancel", nil, nil); r.status != http.StatusUnauthorized {
		t.Errorf("cancel without a token: %d %s", r.status, r.body)
	}
	a.token = saved

	c := a.sb.Counters()
	if c.SessionCancels != 5 || c.SessionsCancelled != 1 { // the GET is refused before it counts
		t.Errorf("counters: %d cancel requests, %d sessions cancelled; want 5 and 1", c.SessionCancels, c.SessionsCancelled)
	}

	// The admin API and Sessions show each session's state.
	var admin []sessionJSON
	a.do(http.MethodGet, dinterotest.AdminPrefix+"sessions", nil, nil).decode(t, &admin)
	states := map[string]string{}
	for _, s := range admin {
		states[s.ID] = s.State
		if s.ID == id && s.CancelledAt.IsZero() {
			t.Errorf("admin entry of the cancelled session has no cancelled_at")
		}
	}
	if states[id] != dinterotest.SessionCancelled || states[other] != dinterotest.SessionPaid {
		t.Errorf("admin states %v", states)
	}
	for _, s := range a.sb.Sessions() {
		if s.State != states[s.ID] || (s.ID == id) == s.CancelledAt.IsZero() {
			t.Errorf("Sessions() entry %+v, admin state %q", s, states[s.ID])
		}
	}
	for _, b := range a.allBodies() {
		if strings.Contains(string(b), citSecretMarker) {
			t.Errorf("a response shows the token: %s", b)
		}
	}
}

func TestSessionList(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	var ids []string // of "ORD-7", oldest first
	for i := range 5 {
		id, _ := a.createSession(citBody("ORD-7", dinterotest.TokenAuthorized+fmt.Sprint(i), ""))
		ids = append(ids, id)
		a.createSession(citBody(fmt.Sprintf("other-%d", i), "", ""))
	}
	mit := a.payTx(payBody("bambora.creditcard", "unscheduled_purchase", "payment_token", dinterotest.TokenAuthorized+"m", "ORD-7", 100, false), "")
	if _, err := a.sb.PaySession(ids[1], "123"); err != nil { // paid: listed once, in its place
		t.Fatal(err)
	}
	list := func(q string) []sessionJSON {
		t.Helper()
		r := a.do(http.MethodGet, "/v1/sessions?"+q, nil, nil)
		if r.status != http.StatusOK {
			t.Fatalf("list %s: %d %s", q, r.status, r.body)
		}
		var out []sessionJSON
		r.decode(t, &out)
		return out
	}
	idsOf := func(ss []sessionJSON) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.ID)
		}
		return out
	}
	// Newest first: the MIT session, then ids[4] .. ids[0]; the search
	// ignores case.
	want := []string{mit.SessionID, ids[4], ids[3], ids[2], ids[1], ids[0]}
	if got := idsOf(list("search=ord-7&limit=100")); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("search ord-7: %v, want %v", got, want)
	}
	page1 := list("search=ORD-7&limit=4")
	page2 := list("search=ORD-7&limit=4&starting_after=" + page1[len(page1)-1].ID)
	if got := idsOf(append(page1, page2...)); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("two pages: %v, want %v", got, want)
	}
	if all := list(""); len(all) != 10 {
		t.Errorf("default limit: %d sessions, want 10", len(all))
	}
	if got := list("search=nothing-like-it"); got == nil || len(got) != 0 {
		t.Errorf("no match: %v, want []", got)
	}
	for _, q := range []string{"limit=0", "limit=101", "limit=x", "starting_after=T12345678.nope"} {
		if r := a.do(http.MethodGet, "/v1/sessions?"+q, nil, nil); r.status != http.StatusBadRequest || r.errorCode(t) != "INVALID_REQUEST" {
			t.Errorf("%s: %d %s", q, r.status, r.body)
		}
	}
	if c := a.sb.Counters(); c.SessionLists != 9 {
		t.Errorf("SessionLists %d, want 9", c.SessionLists)
	}
}

// TestSessionCancelAndListInOutage: in an outage a cancel is processed and
// its answer lost, like a session's creation; the list is a lookup, and
// answers 503.
func TestSessionCancelAndListInOutage(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	id, _ := a.createSession(citBody("cit-outage", dinterotest.TokenAuthorized+"1", ""))
	a.sb.SetOutage(dinterotest.Outage{Duration: time.Minute, Answer: dinterotest.OutageBadGateway})
	if r := a.do(http.MethodGet, "/v1/sessions?search=cit-outage", nil, nil); r.status != http.StatusServiceUnavailable {
		t.Errorf("list in an outage: %d %s", r.status, r.body)
	}
	if r := a.do(http.MethodPost, "/v1/sessions/"+id+"/cancel", nil, nil); r.status != http.StatusBadGateway {
		t.Errorf("cancel in an outage: %d %s", r.status, r.body)
	}
	a.sb.EndOutage()
	if s := a.sb.Sessions(); len(s) != 1 || s[0].State != dinterotest.SessionCancelled {
		t.Errorf("after the outage: %+v, want the session cancelled", s)
	}
}
