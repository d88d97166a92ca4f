package dinterotest_test

import (
	"net/http"
	"testing"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
)

// TestRefusalsNameTheRefusedCalls: each pay call a strict toggle refuses
// is listed, with its reference and toggle, in Refusals and at
// /__sandbox/refusals, until Reset.
func TestRefusalsNameTheRefusedCalls(t *testing.T) {
	a := newAPI(t, dinterotest.Options{})
	a.login()
	body := payBody("bambora.creditcard", "unscheduled_purchase", "payment_token", dinterotest.TokenAuthorized+"1", "ref-refused", 500, false)
	a.payTx(body, dintero.ToggleStrictSuccessMerchantReference)
	if r := a.pay(body, dintero.ToggleStrictSuccessMerchantReference); r.status != http.StatusBadRequest || r.errorCode(t) != dintero.CodeDuplicateMerchantReference {
		t.Fatalf("second charge: %d %s, want 400 %s", r.status, r.body, dintero.CodeDuplicateMerchantReference)
	}
	got := a.sb.Refusals()
	if len(got) != 1 || got[0].MerchantReference != "ref-refused" || got[0].Toggle != dintero.ToggleStrictSuccessMerchantReference ||
		got[0].RequestID == "" || got[0].At.IsZero() {
		t.Fatalf("Refusals() = %+v, want the one refused call", got)
	}
	if n := a.sb.Counters().DuplicatesRefused; n != 1 {
		t.Errorf("DuplicatesRefused %d, want 1", n)
	}
	var listed []dinterotest.Refusal
	a.do(http.MethodGet, dinterotest.AdminPrefix+"refusals", nil, nil).decode(t, &listed)
	if len(listed) != 1 || listed[0].MerchantReference != "ref-refused" {
		t.Errorf("GET refusals: %+v", listed)
	}
	a.sb.Reset()
	a.do(http.MethodGet, dinterotest.AdminPrefix+"refusals", nil, nil).decode(t, &listed)
	if len(listed) != 0 || len(a.sb.Refusals()) != 0 {
		t.Errorf("after Reset: %+v", listed)
	}
}
