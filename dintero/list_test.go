package dintero

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
)

func TestTransactionsByMerchantReferencePagination(t *testing.T) {
	tests := []struct {
		name      string
		total     int // transactions the server holds; -1 = endless
		otherRef  map[int]bool
		wantCalls int64
		wantLen   int
	}{
		{"empty", 0, nil, 1, 0},
		{"one page", 3, nil, 1, 3},
		{"exactly one full page", 100, nil, 2, 100},
		{"three pages, foreign ref dropped", 250, map[int]bool{5: true, 150: true}, 3, 248},
		{"endless is capped at 10 pages", -1, nil, 10, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.api = func(w http.ResponseWriter, r *http.Request, _ []byte, _ int64) {
				q := r.URL.Query()
				if r.URL.Path != "/v1/transactions" || q.Get("merchant_reference") != "ref-p" || q.Get("limit") != "100" {
					writeErr(w, 400, "BAD_QUERY", r.URL.RawQuery)
					return
				}
				start := 0
				if after := q.Get("starting_after"); after != "" {
					var i int
					if _, err := fmt.Sscanf(after, "T12345678.p%d", &i); err != nil {
						writeErr(w, 400, "BAD_CURSOR", after)
						return
					}
					start = i + 1
				}
				page := []Transaction{}
				for i := start; i < start+100 && (tt.total < 0 || i < tt.total); i++ {
					ref := "ref-p"
					if tt.otherRef[i] {
						ref = "ref-p-other"
					}
					page = append(page, Transaction{ID: "T12345678.p" + strconv.Itoa(i), MerchantReference: ref, Status: StatusFailed})
				}
				writeJSON(w, 200, page)
			}
			c := newTestClient(t, f, nil)
			txs, err := c.TransactionsByMerchantReference(context.Background(), "ref-p")
			if err != nil {
				t.Fatal(err)
			}
			if len(txs) != tt.wantLen {
				t.Errorf("got %d transactions; want %d", len(txs), tt.wantLen)
			}
			for _, tx := range txs {
				if tx.MerchantReference != "ref-p" {
					t.Errorf("foreign transaction %s (%s) returned", tx.ID, tx.MerchantReference)
				}
			}
			if got := f.apiCalls.Load(); got != tt.wantCalls {
				t.Errorf("API requests = %d; want %d", got, tt.wantCalls)
			}
			reqs := f.apiRequests()
			for i, r := range reqs {
				want := ""
				if i > 0 {
					want = "T12345678.p" + strconv.Itoa(i*100-1)
				}
				if got := queryValue(r.Query, "starting_after"); got != want {
					t.Errorf("request %d starting_after = %q; want %q", i, got, want)
				}
			}
		})
	}
}

func queryValue(raw, key string) string {
	r, _ := http.NewRequest(http.MethodGet, "/?"+raw, nil)
	return r.URL.Query().Get(key)
}
