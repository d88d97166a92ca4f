package dinterotest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/payworker/payworker/dintero"
)

// Payment product types and operations /v1/sessions/pay accepts.
const (
	productPayex      = "payex.creditcard"
	productBambora    = "bambora.creditcard"
	productDinteroPSP = "dintero_psp.creditcard"

	opRecurring   = "recurring_purchase"
	opUnscheduled = "unscheduled_purchase"

	tokenPayment    = "payment_token"
	tokenRecurrence = "recurrence_token"
)

// paymentProduct maps a payment_product_type to Transaction.payment_product.
func paymentProduct(productType string) (string, bool) {
	switch productType {
	case productPayex:
		return "payex", true
	case productBambora:
		return "bambora", true
	case productDinteroPSP:
		return "dintero_psp", true
	}
	return "", false
}

// fieldError is one entry of Error.errors.
type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

type orderIn struct {
	Amount            json.RawMessage `json:"amount"`
	Currency          *string         `json:"currency"`
	MerchantReference *string         `json:"merchant_reference"`
	VatAmount         json.RawMessage `json:"vat_amount"`
	Items             []struct {
		Amount    json.RawMessage `json:"amount"`
		VatAmount json.RawMessage `json:"vat_amount"`
	} `json:"items"`
}

type customerIn struct {
	CustomerID  string                     `json:"customer_id"`
	Email       string                     `json:"email"`
	PhoneNumber string                     `json:"phone_number"`
	Tokens      map[string]json.RawMessage `json:"tokens"`
}

func (c *customerIn) summary() customerSummary {
	if c == nil {
		return customerSummary{}
	}
	return customerSummary{CustomerID: c.CustomerID, Email: c.Email, PhoneNumber: c.PhoneNumber}
}

type payRequest struct {
	Session *struct {
		URL *struct {
			CallbackURL string `json:"callback_url"`
		} `json:"url"`
		Customer      *customerIn `json:"customer"`
		Order         *orderIn    `json:"order"`
		Configuration *struct {
			AutoCapture bool `json:"auto_capture"`
		} `json:"configuration"`
		Metadata map[string]any `json:"metadata"`
	} `json:"session"`
	Payment *struct {
		PaymentProductType *string `json:"payment_product_type"`
		Operation          *string `json:"operation"`
	} `json:"payment"`
}

// validator collects field errors.
type validator struct{ errs []any }

func (v *validator) add(field, msg string) { v.errs = append(v.errs, fieldError{field, msg}) }

// intField parses a JSON integer literal. Strings, fractions ("299.5") and
// exponents are rejected. present is false for a missing or null field.
func intField(raw json.RawMessage) (n int64, present, ok bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, false, false
	}
	if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return 0, true, false
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	return n, true, err == nil
}

// order validates a SessionOrder at prefix and returns its summary.
func (v *validator) order(prefix string, o *orderIn) orderSummary {
	var sum orderSummary
	if o == nil {
		v.add(prefix, "required")
		return sum
	}
	switch n, present, ok := intField(o.Amount); {
	case !present:
		v.add(prefix+".amount", "required")
	case !ok:
		v.add(prefix+".amount", "must be an integer in minor units")
	case n <= 0:
		v.add(prefix+".amount", "must be greater than 0")
	default:
		sum.Amount = n
	}
	switch {
	case o.Currency == nil:
		v.add(prefix+".currency", "required")
	case !isCurrency(*o.Currency):
		v.add(prefix+".currency", "must be a 3-letter ISO 4217 code in upper case")
	default:
		sum.Currency = *o.Currency
	}
	switch {
	case o.MerchantReference == nil || *o.MerchantReference == "":
		v.add(prefix+".merchant_reference", "required and non-empty")
	default:
		sum.MerchantReference = *o.MerchantReference
	}
	if n, present, ok := intField(o.VatAmount); present {
		if ok {
			sum.VatAmount = &n
		} else {
			v.add(prefix+".vat_amount", "must be an integer in minor units")
		}
	}
	for i, it := range o.Items {
		p := prefix + ".items[" + strconv.Itoa(i) + "]"
		if _, present, ok := intField(it.Amount); !present {
			v.add(p+".amount", "required")
		} else if !ok {
			v.add(p+".amount", "must be an integer in minor units")
		}
		if _, present, ok := intField(it.VatAmount); present && !ok {
			v.add(p+".vat_amount", "must be an integer in minor units")
		}
	}
	return sum
}

func isCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := range 3 {
		if c[i] < 'A' || c[i] > 'Z' {
			return false
		}
	}
	return true
}

// cardTokens decodes one customer.tokens entry. Values are never put in
// an error message.
func (v *validator) cardTokens(field string, raw json.RawMessage) map[string]string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		v.add(field, "must be an object")
		return nil
	}
	out := make(map[string]string, 2)
	for _, kind := range []string{tokenPayment, tokenRecurrence} {
		r, ok := m[kind]
		if !ok || string(r) == "null" {
			continue
		}
		var tok string
		if err := json.Unmarshal(r, &tok); err != nil || tok == "" {
			v.add(field+"."+kind, "must be a non-empty string")
			continue
		}
		out[kind] = tok
	}
	return out
}

// nestedTokenKeys are the first halves of the dotted token keys: a client
// that nests {"payex": {"creditcard": ...}} gets a pointed error.
func isNestedTokenKey(k string) bool {
	return k == "payex" || k == "bambora" || k == "dintero_psp"
}

// payToken picks the token /v1/sessions/pay charges, and its kind
// (payment_token or recurrence_token), enforcing which token kinds each
// provider and operation accept.
func (v *validator) payToken(c *customerIn, product, op string) (kind, token string) {
	const field = "session.customer.tokens"
	if c == nil || c.Tokens == nil {
		v.add(field, "required: an object keyed by payment_product_type")
		return "", ""
	}
	for k := range c.Tokens {
		if isNestedTokenKey(k) {
			v.add(field+"."+k, `token keys are literal dotted strings such as "payex.creditcard", not nested objects`)
		}
	}
	raw, ok := c.Tokens[product]
	if !ok {
		v.add(field, `missing the key "`+product+`" (the payment_product_type)`)
		return "", ""
	}
	f := field + `["` + product + `"]`
	toks := v.cardTokens(f, raw)
	if toks == nil {
		return "", ""
	}
	pay, rec := toks[tokenPayment], toks[tokenRecurrence]
	if product != productPayex {
		if rec != "" {
			v.add(f+"."+tokenRecurrence, product+" supports only payment_token")
			return "", ""
		}
		if pay == "" {
			v.add(f+"."+tokenPayment, "required")
		}
		return tokenPayment, pay
	}
	switch op {
	case opRecurring:
		if rec != "" {
			return tokenRecurrence, rec
		}
		if pay == "" {
			v.add(f, "recurring_purchase needs recurrence_token or payment_token")
		}
		return tokenPayment, pay
	default:
		if pay == "" {
			v.add(f+"."+tokenPayment, "unscheduled_purchase needs payment_token")
		}
		return tokenPayment, pay
	}
}

// featureToggles parses Dintero-Feature-Toggles (CSV, header may repeat).
func featureToggles(r *http.Request) (strict, strictSuccess bool) {
	for _, hv := range r.Header.Values("Dintero-Feature-Toggles") {
		for t := range strings.SplitSeq(hv, ",") {
			switch strings.TrimSpace(t) {
			case dintero.ToggleStrictMerchantReference:
				strict = true
			case dintero.ToggleStrictSuccessMerchantReference:
				strictSuccess = true
			}
		}
	}
	return strict, strictSuccess
}

// payError writes a 400 Error body with SessionPayResult.success false.
func (s *Server) payError(w http.ResponseWriter, code, msg string, errs []any) {
	success := false
	writeJSON(w, http.StatusBadRequest, dintero.ErrorBody{
		Error:   dintero.ErrorDetail{Code: code, Message: msg, Errors: errs},
		Success: &success,
	})
}

// HeaderSandboxTime is the header of a /v1/sessions/pay answer (HTTP 200)
// that holds the time the sandbox spent on the call, in milliseconds with
// microsecond precision ("200.125"): from its arrival to the answer,
// injected latency included. Charge.SandboxMs holds the same figure.
const HeaderSandboxTime = "Sandbox-Time-Ms"

// handlePay serves POST /v1/sessions/pay, which arrived at arrived.
func (s *Server) handlePay(w http.ResponseWriter, r *http.Request, reqID string, arrived time.Time) {
	b, err := readBody(w, r)
	var req payRequest
	if err == nil {
		err = decodeJSON(b, &req)
	}
	if err != nil {
		s.c.invalidRequests.Add(1)
		s.payError(w, "INVALID_REQUEST", decodeErrorMessage(err), nil)
		return
	}

	var v validator
	var (
		sum           orderSummary
		product, op   string
		tokenKind     string
		token         string
		callbackURL   string
		autoCapture   bool
		metadata      map[string]any
		customer      customerSummary
		productFamily string
	)
	if req.Payment == nil {
		v.add("payment", "required")
	} else {
		switch pt := req.Payment.PaymentProductType; {
		case pt == nil:
			v.add("payment.payment_product_type", "required")
		default:
			if fam, ok := paymentProduct(*pt); ok {
				product, productFamily = *pt, fam
			} else {
				v.add("payment.payment_product_type", "must be one of payex.creditcard, bambora.creditcard, dintero_psp.creditcard")
			}
		}
		switch o := req.Payment.Operation; {
		case o == nil:
			v.add("payment.operation", "required")
		case *o == opRecurring || *o == opUnscheduled:
			op = *o
		default:
			v.add("payment.operation", "must be recurring_purchase or unscheduled_purchase")
		}
	}
	if req.Session == nil {
		v.add("session", "required")
	} else {
		sess := req.Session
		sum = v.order("session.order", sess.Order)
		if product != "" && op != "" {
			tokenKind, token = v.payToken(sess.Customer, product, op)
		}
		if sess.URL != nil {
			callbackURL = sess.URL.CallbackURL
		}
		if sess.Configuration != nil {
			autoCapture = sess.Configuration.AutoCapture
		}
		metadata = sess.Metadata
		customer = sess.Customer.summary()
	}
	if len(v.errs) > 0 {
		s.c.invalidRequests.Add(1)
		s.payError(w, "INVALID_REQUEST", "invalid session pay request", v.errs)
		return
	}
	c, ok := parseCard(token)
	if !ok {
		s.c.invalidRequests.Add(1)
		s.payError(w, "INVALID_PAYMENT_TOKEN", "the card token is unknown to the sandbox; use a test card prefix (see "+AdminPrefix+")", nil)
		return
	}

	now := time.Now().UTC()
	sessionID, txID := s.newID(), s.newID()
	sess := &session{
		ID: sessionID, Kind: sessionKindPay, Order: sum, CallbackURL: callbackURL,
		Customer: customer, Metadata: metadata, TransactionID: txID, CreatedAt: now,
	}

	strict, strictSuccess := featureToggles(r)
	s.mu.Lock()
	_, anySession := s.st.refSessions[sum.MerchantReference]
	_, anySuccess := s.st.refSucceeded[sum.MerchantReference]
	if dup := (strict && anySession) || (strictSuccess && anySuccess); dup {
		toggle := dintero.ToggleStrictMerchantReference
		msg := "a session with this merchant_reference exists (" + dintero.ToggleStrictMerchantReference + ")"
		if strictSuccess && anySuccess {
			toggle = dintero.ToggleStrictSuccessMerchantReference
			msg = "a successful transaction with this merchant_reference exists (" + dintero.ToggleStrictSuccessMerchantReference + ")"
		}
		s.st.refusals = append(s.st.refusals, Refusal{MerchantReference: sum.MerchantReference, Toggle: toggle, RequestID: reqID, At: now})
		s.mu.Unlock()
		s.c.duplicatesRefused.Add(1)
		s.payError(w, "DUPLICATE_MERCHANT_REFERENCE", msg, nil)
		return
	}
	out := s.st.outcomeOf(c, token)
	tx := dintero.Transaction{
		ID:                 txID,
		SessionID:          sessionID,
		MerchantReference:  sum.MerchantReference,
		Status:             out.status,
		Amount:             sum.Amount,
		Currency:           sum.Currency,
		PaymentProduct:     productFamily,
		PaymentProductType: product,
		PaymentOperation:   op,
		Customer:           customer.transactionCustomer(),
		Card:               &dintero.Card{Brand: c.brand.name, MaskedPAN: c.brand.mitPAN, ExpiryDate: out.cardExpiry, Type: "credit", Country: "NO"},
		Metadata:           metadata,
		CreatedAt:          now,
		UpdatedAt:          now,
		Events:             []dintero.TransactionEvent{authorizeEvent(out, sum.Amount, now, reqID, s.opts.RetryAfterDelay)},
	}
	if autoCapture && out.errType == "" {
		tx.Status = dintero.StatusCaptured
		tx.Events = append(tx.Events, dintero.TransactionEvent{
			Event: "CAPTURE", TransactionStatus: dintero.StatusCaptured, Amount: sum.Amount,
			Success: true, CreatedAt: now, RequestID: reqID,
		})
	}
	succeeded := dintero.Succeeded(tx.Status)
	rec := s.st.addTx(tx, sess, tokenKind, token)
	ledgerAt := -1
	if succeeded {
		ledgerAt = len(s.st.ledger)
		s.st.ledger = append(s.st.ledger, Charge{
			TransactionID: txID, SessionID: sessionID, MerchantReference: sum.MerchantReference,
			Amount: sum.Amount, Currency: sum.Currency, PaymentProductType: product,
			Operation: op, Status: tx.Status, CreatedAt: now,
		})
	}
	s.mu.Unlock()
	if succeeded {
		s.c.authorized.Add(1)
	} else {
		s.c.declined.Add(1)
	}

	if s.chance(s.faults.Load().TimeoutAfterChargeRate) {
		s.c.faultTimeoutsAfterCharge.Add(1)
		s.hangAfterCharge(r)
	}
	resp := rec.tx // shallow copy; the stored record is immutable
	resp.Success = &succeeded
	status, b := encodeJSON(http.StatusOK, resp)
	spent := float64(time.Since(arrived).Microseconds()) / 1e3
	if ledgerAt >= 0 {
		s.mu.Lock()
		// Reset may have replaced the ledger meanwhile.
		if ledgerAt < len(s.st.ledger) && s.st.ledger[ledgerAt].TransactionID == txID {
			s.st.ledger[ledgerAt].SandboxMs = spent
		}
		s.mu.Unlock()
	}
	w.Header().Set(HeaderSandboxTime, strconv.FormatFloat(spent, 'f', 3, 64))
	writeBody(w, status, b)
}
