package dinterotest

import (
	"errors"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/payworker/payworker/dintero"
)

// Errors of PaySession; the pay page shows them to the customer.
var (
	// ErrSessionNotFound: no session has that id.
	ErrSessionNotFound = errors.New("dinterotest: session not found")
	// ErrSessionPaid: the session already has a transaction (a session is
	// paid at most once, declined attempts included; sessions of
	// /v1/sessions/pay are paid when they are made).
	ErrSessionPaid = errors.New("dinterotest: session already paid")
	// ErrSessionCancelled: the session was cancelled
	// (POST /v1/sessions/{id}/cancel) and can no longer be paid.
	ErrSessionCancelled = errors.New("dinterotest: session cancelled")
	// ErrNoSavedCard: the session was created without a payment_token, and
	// the sandbox pays only saved cards.
	ErrNoSavedCard = errors.New("dinterotest: session has no saved card")
	// ErrInvalidCVC: the CVC is not 3 or 4 digits.
	ErrInvalidCVC = errors.New("dinterotest: CVC must be 3 or 4 digits")
	// ErrUnknownCard: the saved payment_token has no test card prefix;
	// nothing is recorded (as /v1/sessions/pay answers 400
	// INVALID_PAYMENT_TOKEN).
	ErrUnknownCard = errors.New("dinterotest: the saved card token is not a sandbox test card")
)

// PaySession does what the customer does on the session's page
// (GET /v1/view/{session_id}): confirm the saved card with cvc (3 or 4
// digits). The session's payment_token (the first in payment_product_type
// order when there are several) picks the outcome as for /v1/sessions/pay:
// AUTHORIZED for sandbox-ok-, FAILED or DECLINED for the decline cards.
// The transaction (payment_product_type from the token's key, no
// payment_operation, the session's metadata plus "session:profile_id") is
// stored, becomes the session's transaction_id, and when authorized is
// added to the Ledger. Then the session's callback_url, if any, is called
// in the background: for an authorized payment always, for a failed one
// only when callback_url has report_error=true (see the package
// documentation).
//
// A failed payment is returned with a nil error: check tx.Status. Errors:
// ErrInvalidCVC, ErrSessionNotFound, ErrSessionCancelled, ErrSessionPaid,
// ErrNoSavedCard, ErrUnknownCard; nothing is recorded then.
func (s *Server) PaySession(sessionID, cvc string) (dintero.Transaction, error) {
	tx, _, err := s.paySession(sessionID, cvc)
	return tx, err
}

// paySession is PaySession, also returning the session's return_url.
func (s *Server) paySession(sessionID, cvc string) (dintero.Transaction, string, error) {
	if !validCVC(cvc) {
		return dintero.Transaction{}, "", ErrInvalidCVC
	}
	now := time.Now().UTC()
	reqID := newRequestID()

	s.mu.Lock()
	sess, ok := s.st.sessions[sessionID]
	switch {
	case !ok:
		s.mu.Unlock()
		return dintero.Transaction{}, "", ErrSessionNotFound
	case !sess.CancelledAt.IsZero():
		s.mu.Unlock()
		return dintero.Transaction{}, "", ErrSessionCancelled
	case sess.TransactionID != "":
		s.mu.Unlock()
		return dintero.Transaction{}, "", ErrSessionPaid
	case len(sess.Tokens) == 0:
		s.mu.Unlock()
		return dintero.Transaction{}, "", ErrNoSavedCard
	}
	product := slices.Sorted(maps.Keys(sess.Tokens))[0]
	token := sess.Tokens[product]
	c, ok := parseCard(token)
	if !ok {
		s.mu.Unlock()
		s.c.invalidRequests.Add(1)
		return dintero.Transaction{}, "", ErrUnknownCard
	}
	out := s.st.outcomeOf(c, token)
	family, _ := paymentProduct(product)
	metadata := maps.Clone(sess.Metadata)
	if metadata == nil {
		metadata = make(map[string]any, 1)
	}
	metadata["session:profile_id"] = sess.ProfileID
	tx := dintero.Transaction{
		ID:                 s.newID(),
		SessionID:          sess.ID,
		MerchantReference:  sess.Order.MerchantReference,
		Status:             out.status,
		Amount:             sess.Order.Amount,
		Currency:           sess.Order.Currency,
		PaymentProduct:     family,
		PaymentProductType: product,
		Customer:           sess.Customer.transactionCustomer(),
		Card:               &dintero.Card{Brand: c.brand.name, MaskedPAN: c.brand.citPAN, ExpiryDate: out.cardExpiry, Type: "credit", Country: "NO"},
		Metadata:           metadata,
		CreatedAt:          now,
		UpdatedAt:          now,
		Events:             []dintero.TransactionEvent{authorizeEvent(out, sess.Order.Amount, now, reqID, s.opts.RetryAfterDelay)},
	}
	rec := s.st.addTx(tx, sess, tokenPayment, token)
	sess.TransactionID = tx.ID
	succeeded := dintero.Succeeded(tx.Status)
	if succeeded {
		s.st.ledger = append(s.st.ledger, Charge{
			TransactionID: tx.ID, SessionID: sess.ID, MerchantReference: tx.MerchantReference,
			Amount: tx.Amount, Currency: tx.Currency, PaymentProductType: product,
			Operation: ledgerOperationCIT, Status: tx.Status, CreatedAt: now,
		})
	}
	d := s.callbackFor(sess, &rec.tx)
	returnURL := sess.ReturnURL
	s.mu.Unlock()

	s.c.sessionsPaid.Add(1)
	if succeeded {
		s.c.authorized.Add(1)
	} else {
		s.c.declined.Add(1)
	}
	if d != nil {
		s.sendCallback(d)
	}
	return cloneTx(&rec.tx), returnURL, nil
}

// ledgerOperationCIT is Charge.Operation for a customer-initiated payment.
const ledgerOperationCIT = "customer_initiated"

func validCVC(cvc string) bool {
	if len(cvc) < 3 || len(cvc) > 4 {
		return false
	}
	for i := range len(cvc) {
		if cvc[i] < '0' || cvc[i] > '9' {
			return false
		}
	}
	return true
}

// viewPage is what the pay page shows. It never holds a card token.
type viewPage struct {
	SessionID     string
	Reference     string
	Amount        string
	Currency      string
	Card          string // "" when the session has no saved card
	Product       string
	TransactionID string
	Status        string
	Error         string
	Found         bool
	Cancelled     bool
}

var viewTemplate = template.Must(template.New("view").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Dintero sandbox checkout</title>
</head>
<body>
<h1>Dintero sandbox checkout</h1>
{{if not .Found}}<p id="error" role="alert">{{.Error}}</p>
{{else}}<dl>
<dt>Merchant reference</dt><dd id="merchant-reference">{{.Reference}}</dd>
<dt>Amount</dt><dd id="amount">{{.Amount}} {{.Currency}}</dd>
{{if .Card}}<dt>Card</dt><dd id="card">{{.Card}} ({{.Product}})</dd>
{{end}}</dl>
{{if .Error}}<p id="error" role="alert">{{.Error}}</p>
{{end}}{{if .Cancelled}}<p id="cancelled">This session has been cancelled; it cannot be paid.</p>
{{else if .TransactionID}}<p id="paid">This session is already paid: transaction {{.TransactionID}}, {{.Status}}.</p>
{{else if not .Card}}<p id="no-card">No saved card: this sandbox pays only sessions created with a payment_token.</p>
{{else}}<form method="post" action="/v1/view/{{.SessionID}}/pay">
<label for="cvc">CVC</label>
<input id="cvc" name="cvc" type="text" inputmode="numeric" autocomplete="cc-csc" pattern="[0-9]{3,4}" minlength="3" maxlength="4" required>
<button id="pay" type="submit">Pay {{.Amount}} {{.Currency}}</button>
</form>
{{end}}{{end}}</body>
</html>
`))

// page describes session id for the pay page.
func (s *Server) page(id string) viewPage {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.st.sessions[id]
	if !ok {
		return viewPage{Error: "Session not found."}
	}
	p := viewPage{
		SessionID:     sess.ID,
		Reference:     sess.Order.MerchantReference,
		Amount:        formatMinor(sess.Order.Amount),
		Currency:      sess.Order.Currency,
		TransactionID: sess.TransactionID,
		Found:         true,
		Cancelled:     !sess.CancelledAt.IsZero(),
	}
	if rec, ok := s.st.txByID[sess.TransactionID]; ok {
		p.Status = rec.tx.Status
	}
	if len(sess.Tokens) > 0 {
		p.Product = slices.Sorted(maps.Keys(sess.Tokens))[0]
		last4 := brandVisa.lastFour
		if c, ok := parseCard(sess.Tokens[p.Product]); ok {
			last4 = c.brand.lastFour
		}
		p.Card = "•••• " + last4
	}
	return p
}

// formatMinor writes minor units with two decimals: 29990 is "299.90".
func formatMinor(n int64) string {
	return fmt.Sprintf("%d.%02d", n/100, n%100)
}

func writePage(w http.ResponseWriter, status int, p viewPage) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = viewTemplate.Execute(w, p)
}

// handleView serves GET /v1/view/{session_id}, the customer's page.
func (s *Server) handleView(w http.ResponseWriter, id string) {
	p := s.page(id)
	status := http.StatusOK
	if !p.Found {
		status = http.StatusNotFound
	}
	writePage(w, status, p)
}

// handleViewPay serves POST /v1/view/{session_id}/pay, the page's form:
// it pays the session with the form's cvc and redirects (303) to the
// session's return_url with transaction_id and merchant_reference, plus
// error=authorization when the payment failed. A refused attempt shows the
// page again with the reason.
func (s *Server) handleViewPay(w http.ResponseWriter, r *http.Request, id string) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	cvc := ""
	if err := r.ParseForm(); err == nil {
		cvc = r.PostForm.Get("cvc")
	}
	tx, returnURL, err := s.paySession(id, cvc)
	if err != nil {
		p := s.page(id)
		status := http.StatusConflict
		switch {
		case errors.Is(err, ErrSessionNotFound):
			status = http.StatusNotFound
		case errors.Is(err, ErrInvalidCVC):
			status = http.StatusBadRequest
			p.Error = "The CVC must be 3 or 4 digits."
		case errors.Is(err, ErrSessionPaid):
			p.Error = "This session is already paid."
		case errors.Is(err, ErrSessionCancelled):
			p.Error = "This session has been cancelled."
		case errors.Is(err, ErrNoSavedCard):
			p.Error = "No saved card on this session."
		case errors.Is(err, ErrUnknownCard):
			status = http.StatusUnprocessableEntity
			p.Error = "The saved card is not a sandbox test card; nothing was charged."
		}
		writePage(w, status, p)
		return
	}
	q := url.Values{}
	q.Set("transaction_id", tx.ID)
	q.Set("merchant_reference", tx.MerchantReference)
	if !dintero.Succeeded(tx.Status) {
		q.Set("error", callbackErrorAuthorization)
	}
	u, perr := url.Parse(returnURL)
	if perr != nil {
		// The payment is made; without a usable return_url say so here.
		p := s.page(id)
		p.Error = "Paid, but the session's return_url is not a URL: transaction " + tx.ID + " " + tx.Status + "."
		writePage(w, http.StatusOK, p)
		return
	}
	u.RawQuery = joinQuery(u.RawQuery, q.Encode())
	w.Header().Set("Location", u.String())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusSeeOther)
	_, _ = fmt.Fprintf(w, "<!doctype html><p>Paid: %s. <a href=\"%s\">Back to the shop</a>.</p>\n",
		template.HTMLEscapeString(tx.Status), template.HTMLEscapeString(u.String()))
}

// adminSession is one entry of GET /__sandbox/sessions: the session as
// GET /v1/sessions/{id} shows it, its kind, its state (SessionOpen,
// SessionPaid, SessionCancelled), and the payment product types it holds a
// saved card for (never the tokens).
type adminSession struct {
	sessionView
	Kind       string   `json:"kind"`
	State      string   `json:"state"`
	SavedCards []string `json:"saved_cards,omitempty"`
}

// SessionInfo is a session as Sessions reports it.
type SessionInfo struct {
	ID                string
	Kind              string // "profile" (/v1/sessions-profile) or "pay" (/v1/sessions/pay)
	MerchantReference string
	TransactionID     string
	State             string // SessionOpen, SessionPaid or SessionCancelled
	CreatedAt         time.Time
	CancelledAt       time.Time
}

// Sessions returns every session, oldest first, as GET /__sandbox/sessions
// lists them.
func (s *Server) Sessions() []SessionInfo {
	list := s.sessionList()
	out := make([]SessionInfo, len(list))
	for i, a := range list {
		out[i] = SessionInfo{ID: a.ID, Kind: a.Kind, MerchantReference: a.Order.MerchantReference,
			TransactionID: a.TransactionID, State: a.State, CreatedAt: a.CreatedAt, CancelledAt: a.CancelledAt}
	}
	return out
}

// sessionList returns every session, oldest first.
func (s *Server) sessionList() []adminSession {
	s.mu.Lock()
	out := make([]adminSession, 0, len(s.st.sessions))
	for _, sess := range s.st.sessions {
		out = append(out, adminSession{
			sessionView: sess.view(),
			Kind:        sess.Kind,
			State:       sess.state(),
			SavedCards:  slices.Sorted(maps.Keys(sess.Tokens)),
		})
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b adminSession) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// serveAdminSessions serves GET /__sandbox/sessions.
func (s *Server) serveAdminSessions(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "method not allowed", nil)
		return
	}
	writeJSON(w, http.StatusOK, s.sessionList())
}

// viewRoute maps /v1/view/{id} and /v1/view/{id}/pay to their endpoint,
// session id and method.
func viewRoute(p string) (endpoint, string, string) {
	rest, ok := strings.CutPrefix(p, "/v1/view/")
	if !ok || rest == "" {
		return epNone, "", ""
	}
	if id, ok := strings.CutSuffix(rest, "/pay"); ok && id != "" && !strings.Contains(id, "/") {
		return epViewPay, id, http.MethodPost
	}
	if !strings.Contains(rest, "/") {
		return epView, rest, http.MethodGet
	}
	return epNone, "", ""
}
