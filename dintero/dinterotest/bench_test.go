package dinterotest_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
)

// BenchmarkServeHTTPPay measures the handler cost of one authorization,
// without the network.
func BenchmarkServeHTTPPay(b *testing.B) {
	sb := dinterotest.New(dinterotest.Options{})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/v1/accounts/"+dinterotest.DefaultAccountID+"/auth/token",
		bytes.NewReader(mustJSON(b, tokenBody(dinterotest.DefaultAccountID))))
	req.SetBasicAuth(dinterotest.DefaultClientID, dinterotest.DefaultClientSecret)
	sb.ServeHTTP(rec, req)
	var at dintero.AccessToken
	if err := json.Unmarshal(rec.Body.Bytes(), &at); err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := mustJSON(b, payBody("payex.creditcard", "unscheduled_purchase", "payment_token",
				dinterotest.TokenAuthorized+"b", "ref-"+strconv.FormatInt(n.Add(1), 10), 1000, false))
			req := httptest.NewRequest(http.MethodPost, "/v1/sessions/pay", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+at.AccessToken)
			req.Header.Set("Dintero-Feature-Toggles", dintero.ToggleStrictSuccessMerchantReference)
			rec := httptest.NewRecorder()
			sb.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Errorf("pay: %d %s", rec.Code, rec.Body)
				return
			}
		}
	})
}

func mustJSON(tb testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
