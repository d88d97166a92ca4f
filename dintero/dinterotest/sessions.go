package dinterotest

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/payworker/payworker/dintero"
)

type profileRequest struct {
	URL *struct {
		ReturnURL   *string `json:"return_url"`
		CallbackURL string  `json:"callback_url"`
	} `json:"url"`
	Order     *orderIn       `json:"order"`
	Customer  *customerIn    `json:"customer"`
	ProfileID *string        `json:"profile_id"`
	Metadata  map[string]any `json:"metadata"`
}

// handleSessionsProfile serves POST /v1/sessions-profile: it stores a
// session for the customer to pay later and answers its id and view URL.
func (s *Server) handleSessionsProfile(w http.ResponseWriter, r *http.Request) {
	b, err := readBody(w, r)
	var req profileRequest
	if err == nil {
		err = decodeJSON(b, &req)
	}
	if err != nil {
		s.c.invalidRequests.Add(1)
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", decodeErrorMessage(err), nil)
		return
	}
	var v validator
	sess := &session{Kind: sessionKindProfile, Metadata: req.Metadata}
	switch {
	case req.URL == nil:
		v.add("url", "required")
	case req.URL.ReturnURL == nil || *req.URL.ReturnURL == "":
		v.add("url.return_url", "required")
	default:
		sess.ReturnURL, sess.CallbackURL = *req.URL.ReturnURL, req.URL.CallbackURL
	}
	sess.Order = v.order("order", req.Order)
	if req.ProfileID == nil || *req.ProfileID == "" {
		v.add("profile_id", "required")
	} else {
		sess.ProfileID = *req.ProfileID
	}
	if c := req.Customer; c != nil {
		sess.Customer = c.summary()
		for k, raw := range c.Tokens {
			field := `customer.tokens["` + k + `"]`
			if isNestedTokenKey(k) {
				v.add("customer.tokens."+k, `token keys are literal dotted strings such as "payex.creditcard", not nested objects`)
				continue
			}
			if _, ok := paymentProduct(k); !ok {
				continue // unknown providers are ignored
			}
			toks := v.cardTokens(field, raw)
			if _, ok := toks[tokenRecurrence]; ok {
				v.add(field+"."+tokenRecurrence, "customer-initiated sessions take only payment_token")
				continue
			}
			if tok, ok := toks[tokenPayment]; ok {
				if sess.Tokens == nil {
					sess.Tokens = make(map[string]string, 1)
				}
				sess.Tokens[k] = tok
			}
		}
	}
	if len(v.errs) > 0 {
		s.c.invalidRequests.Add(1)
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "invalid session", v.errs)
		return
	}
	sess.ID = s.newID()
	sess.CreatedAt = time.Now().UTC()
	s.mu.Lock()
	s.st.addSession(sess)
	s.mu.Unlock()
	s.c.sessionsCreated.Add(1)
	writeJSON(w, http.StatusOK, dintero.SessionCreated{ID: sess.ID, URL: baseURL(r) + "/v1/view/" + sess.ID})
}

// baseURL is the sandbox's base URL as the client reached it.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// handleSessionGet serves GET /v1/sessions/{id}.
func (s *Server) handleSessionGet(w http.ResponseWriter, id string) {
	s.mu.Lock()
	sess, ok := s.st.sessions[id]
	var view sessionView
	if ok {
		view = sess.view()
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "session not found", nil)
		return
	}
	writeJSON(w, http.StatusOK, view)
}

// handleSessionList serves GET /v1/sessions: the sessions (as GET
// /v1/sessions/{id} shows them) in a bare array, newest first, paged by
// limit (1-100, default 10) and starting_after (the id of the last session
// of the previous page). search keeps the sessions whose merchant_reference
// contains it, ignoring case (Dintero also matches merchant_reference_2 and
// the customer's name, which the sandbox does not keep).
func (s *Server) handleSessionList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 10
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 100 {
			s.c.invalidRequests.Add(1)
			writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "limit must be an integer from 1 to 100", nil)
			return
		}
		limit = n
	}
	search := strings.ToLower(q.Get("search"))
	s.mu.Lock()
	all := s.st.sessionOrder
	end := len(all) // exclusive; walk backwards from end-1 (newest first)
	if after := q.Get("starting_after"); after != "" {
		end = -1
		if sess, ok := s.st.sessions[after]; ok {
			end = sess.seq
		}
	}
	var page []sessionView
	for i := end - 1; i >= 0 && len(page) < limit; i-- {
		if search == "" || strings.Contains(strings.ToLower(all[i].Order.MerchantReference), search) {
			page = append(page, all[i].view())
		}
	}
	s.mu.Unlock()
	if end < 0 {
		s.c.invalidRequests.Add(1)
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "starting_after is not a session", nil)
		return
	}
	if page == nil {
		page = []sessionView{}
	}
	writeJSON(w, http.StatusOK, page)
}

// handleSessionCancel serves POST /v1/sessions/{id}/cancel: the session can
// no longer be paid, and is answered as GET /v1/sessions/{id} shows it,
// with cancelled_at and cancelled_by (the client id). Cancelling a
// cancelled session answers it again, unchanged. A session with a
// transaction is refused with 400: Dintero voids an initialized or
// authorized one and refuses the others; the sandbox voids nothing.
func (s *Server) handleSessionCancel(w http.ResponseWriter, id string) {
	s.mu.Lock()
	sess, ok := s.st.sessions[id]
	var view sessionView
	paid, cancelled := false, false
	if ok {
		switch {
		case !sess.CancelledAt.IsZero():
		case sess.TransactionID != "":
			paid = true
		default:
			sess.CancelledAt, sess.CancelledBy = time.Now().UTC(), s.opts.ClientID
			cancelled = true
		}
		view = sess.view()
	}
	s.mu.Unlock()
	switch {
	case !ok:
		writeError(w, http.StatusNotFound, "NOT_FOUND", "session not found", nil)
	case paid:
		s.c.invalidRequests.Add(1)
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST",
			"the session has a transaction; the sandbox does not void it (cancel is not modelled for paid sessions)", nil)
	default:
		if cancelled {
			s.c.sessionsCancelled.Add(1)
		}
		writeJSON(w, http.StatusOK, view)
	}
}

// handleTransactionGet serves GET /v1/transactions/{id}. Of the includes
// parameter (repeatable; comma-separated values are accepted too) it
// honours card.payment_token and card.recurrence_token: the token the
// transaction was paid with, if it was of that kind. Other values are
// accepted and ignored.
func (s *Server) handleTransactionGet(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	rec, ok := s.st.txByID[id]
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "transaction not found", nil)
		return
	}
	if inc, ok := r.URL.Query()["includes"]; ok && rec.token != "" && rec.tx.Card != nil {
		want := ""
		for _, v := range inc {
			for part := range strings.SplitSeq(v, ",") {
				switch strings.TrimSpace(part) {
				case dintero.IncludePaymentToken:
					if rec.tokenKind == tokenPayment {
						want = tokenPayment
					}
				case dintero.IncludeRecurrenceToken:
					if rec.tokenKind == tokenRecurrence {
						want = tokenRecurrence
					}
				}
			}
		}
		if want != "" {
			tx := rec.tx // shallow copy; the card is copied before it changes
			c := *tx.Card
			if want == tokenPayment {
				c.PaymentToken = rec.token
			} else {
				c.RecurrenceToken = rec.token
			}
			tx.Card = &c
			writeJSON(w, http.StatusOK, &tx)
			return
		}
	}
	writeJSON(w, http.StatusOK, &rec.tx)
}

// handleTransactionList serves GET /v1/transactions: a bare array, newest
// first, optionally filtered by merchant_reference, paged by limit (1-100,
// default 10) and starting_after (the id of the last transaction of the
// previous page).
func (s *Server) handleTransactionList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 10
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 100 {
			s.c.invalidRequests.Add(1)
			writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "limit must be an integer from 1 to 100", nil)
			return
		}
		limit = n
	}
	after := q.Get("starting_after")
	ref, byRef := q.Get("merchant_reference"), q.Has("merchant_reference")

	s.mu.Lock()
	all := s.st.txs
	if byRef {
		all = s.st.txByRef[ref]
	}
	end := len(all) // exclusive; walk backwards from end-1 (newest first)
	if after != "" {
		rec, ok := s.st.txByID[after]
		end = -1
		if ok {
			// all is sorted by seq; find rec's position.
			lo, hi := 0, len(all)
			for lo < hi {
				mid := (lo + hi) / 2
				if all[mid].seq < rec.seq {
					lo = mid + 1
				} else {
					hi = mid
				}
			}
			if lo < len(all) && all[lo] == rec {
				end = lo
			}
		}
	}
	var page []*txRecord
	if end >= 0 {
		page = make([]*txRecord, 0, min(limit, end))
		for i := end - 1; i >= 0 && len(page) < limit; i-- {
			page = append(page, all[i])
		}
	}
	s.mu.Unlock()
	if end < 0 {
		s.c.invalidRequests.Add(1)
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "starting_after is not a transaction in this listing", nil)
		return
	}
	out := make([]*dintero.Transaction, len(page))
	for i, rec := range page {
		out[i] = &rec.tx
	}
	writeJSON(w, http.StatusOK, out)
}
