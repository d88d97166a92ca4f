package dinterotest

import (
	"net/http"
	"time"
)

// Refusal is one /v1/sessions/pay call that a strict merchant-reference
// toggle refused as a duplicate (400 DUPLICATE_MERCHANT_REFERENCE). A
// client that never charges twice should see few of them, and be able to
// explain each: Counters.DuplicatesRefused counts them, Refusals names
// them.
type Refusal struct {
	MerchantReference string `json:"merchant_reference"`
	// Toggle is the toggle that refused the call:
	// strict-success-merchant-reference or strict-merchant-reference.
	Toggle    string    `json:"toggle"`
	RequestID string    `json:"request_id"`
	At        time.Time `json:"at"`
}

// Refusals returns the pay calls refused as duplicates since New or the
// last Reset, in order.
func (s *Server) Refusals() []Refusal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Refusal(nil), s.st.refusals...)
}

// serveAdminRefusals serves GET /__sandbox/refusals.
func (s *Server) serveAdminRefusals(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "method not allowed", nil)
		return
	}
	out := s.Refusals()
	if out == nil {
		out = []Refusal{}
	}
	writeJSON(w, http.StatusOK, out)
}
