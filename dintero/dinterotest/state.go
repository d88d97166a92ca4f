package dinterotest

import (
	"maps"
	"slices"
	"time"

	"github.com/payworker/payworker/dintero"
)

const initialCapacity = 1024

// state is everything the sandbox remembers; Server.mu guards it.
type state struct {
	txs          []*txRecord // creation order; index == seq
	txByID       map[string]*txRecord
	txByRef      map[string][]*txRecord // merchant_reference -> creation order
	sessions     map[string]*session
	sessionOrder []*session          // creation order; index == seq
	refSessions  map[string]struct{} // references of every session created
	refSucceeded map[string]struct{} // references with an AUTHORIZED/CAPTURED transaction
	ledger       []Charge
	// softCalls counts the processed pay calls of each soft-decline
	// card token (server side only; never shown).
	softCalls map[string]int
	refusals  []Refusal // pay calls refused as duplicates
}

func newState() state {
	return state{
		txs:          make([]*txRecord, 0, initialCapacity),
		txByID:       make(map[string]*txRecord, initialCapacity),
		txByRef:      make(map[string][]*txRecord, initialCapacity),
		sessions:     make(map[string]*session, initialCapacity),
		sessionOrder: make([]*session, 0, initialCapacity),
		refSessions:  make(map[string]struct{}, initialCapacity),
		refSucceeded: make(map[string]struct{}, initialCapacity),
		ledger:       make([]Charge, 0, initialCapacity),
		softCalls:    make(map[string]int),
	}
}

// txRecord is a stored transaction. tx is never modified after it is
// stored, so it may be read (encoded) after Server.mu is released.
type txRecord struct {
	tx  dintero.Transaction
	seq int
	// tokenKind and token are the card token the transaction was paid
	// with (payment_token or recurrence_token). Server side only: shown
	// solely on GET /v1/transactions/{id} with the matching includes.
	tokenKind, token string
}

// addTx stores tx, paid with the card token of kind tokenKind, and its
// session. The caller holds Server.mu.
func (st *state) addTx(tx dintero.Transaction, sess *session, tokenKind, token string) *txRecord {
	rec := &txRecord{tx: tx, seq: len(st.txs), tokenKind: tokenKind, token: token}
	st.txs = append(st.txs, rec)
	st.txByID[tx.ID] = rec
	st.txByRef[tx.MerchantReference] = append(st.txByRef[tx.MerchantReference], rec)
	st.addSession(sess)
	if dintero.Succeeded(tx.Status) {
		st.refSucceeded[tx.MerchantReference] = struct{}{}
	}
	return rec
}

// addSession stores sess, unless it is stored already (a profile session
// the customer pays). The caller holds Server.mu.
func (st *state) addSession(sess *session) {
	if _, ok := st.sessions[sess.ID]; !ok {
		sess.seq = len(st.sessionOrder)
		st.sessionOrder = append(st.sessionOrder, sess)
	}
	st.sessions[sess.ID] = sess
	st.refSessions[sess.Order.MerchantReference] = struct{}{}
}

// session is a stored checkout session, either created by
// /v1/sessions-profile (kind "profile", waiting for the customer) or by
// /v1/sessions/pay (kind "pay", already paid). It is never modified after
// it is stored except under Server.mu.
type session struct {
	ID            string
	seq           int    // position in state.sessionOrder
	Kind          string // sessionKindProfile or sessionKindPay
	ProfileID     string
	Order         orderSummary
	ReturnURL     string
	CallbackURL   string
	Customer      customerSummary
	Metadata      map[string]any
	TransactionID string
	CreatedAt     time.Time
	// CancelledAt and CancelledBy are set by POST /v1/sessions/{id}/cancel.
	CancelledAt time.Time
	CancelledBy string
	// Tokens are the card tokens given to /v1/sessions-profile, keyed by
	// payment_product_type. Kept server side only: never encoded.
	Tokens map[string]string
}

const (
	sessionKindProfile = "profile"
	sessionKindPay     = "pay"
)

type orderSummary struct {
	Amount            int64  `json:"amount"`
	Currency          string `json:"currency"`
	MerchantReference string `json:"merchant_reference"`
	VatAmount         *int64 `json:"vat_amount,omitempty"`
}

type customerSummary struct {
	CustomerID  string `json:"customer_id,omitempty"`
	Email       string `json:"email,omitempty"`
	PhoneNumber string `json:"phone_number,omitempty"`
}

// transactionCustomer is Transaction.customer: nil when no customer field
// was given.
func (c customerSummary) transactionCustomer() *dintero.Customer {
	if c == (customerSummary{}) {
		return nil
	}
	return &dintero.Customer{CustomerID: c.CustomerID, Email: c.Email, PhoneNumber: c.PhoneNumber}
}

type sessionURLs struct {
	ReturnURL   string `json:"return_url,omitempty"`
	CallbackURL string `json:"callback_url,omitempty"`
}

// sessionView is the GET /v1/sessions/{id} body: no card tokens.
type sessionView struct {
	ID            string           `json:"id"`
	CreatedAt     time.Time        `json:"created_at"`
	ProfileID     string           `json:"profile_id,omitempty"`
	Order         orderSummary     `json:"order"`
	URL           sessionURLs      `json:"url"`
	Customer      *customerSummary `json:"customer,omitempty"`
	Metadata      map[string]any   `json:"metadata,omitempty"`
	TransactionID string           `json:"transaction_id,omitempty"`
	CancelledAt   time.Time        `json:"cancelled_at,omitzero"`
	CancelledBy   string           `json:"cancelled_by,omitempty"`
}

// What state a session is in (SessionInfo.State, and the state of an entry
// of GET /__sandbox/sessions).
const (
	// SessionOpen: waiting for the customer.
	SessionOpen = "open"
	// SessionPaid: it has a transaction (authorized or declined); sessions
	// of /v1/sessions/pay are paid when they are made.
	SessionPaid = "paid"
	// SessionCancelled: POST /v1/sessions/{id}/cancel cancelled it; it can
	// no longer be paid.
	SessionCancelled = "cancelled"
)

// state is the session's SessionOpen, SessionPaid or SessionCancelled.
func (sess *session) state() string {
	switch {
	case !sess.CancelledAt.IsZero():
		return SessionCancelled
	case sess.TransactionID != "":
		return SessionPaid
	}
	return SessionOpen
}

func (sess *session) view() sessionView {
	v := sessionView{
		ID:            sess.ID,
		CreatedAt:     sess.CreatedAt,
		ProfileID:     sess.ProfileID,
		Order:         sess.Order,
		URL:           sessionURLs{ReturnURL: sess.ReturnURL, CallbackURL: sess.CallbackURL},
		Metadata:      sess.Metadata,
		TransactionID: sess.TransactionID,
		CancelledAt:   sess.CancelledAt,
		CancelledBy:   sess.CancelledBy,
	}
	if sess.Customer != (customerSummary{}) {
		c := sess.Customer
		v.Customer = &c
	}
	return v
}

// cloneTx deep-copies tx so that callers cannot change the stored one.
func cloneTx(tx *dintero.Transaction) dintero.Transaction {
	out := *tx
	if tx.Card != nil {
		c := *tx.Card
		out.Card = &c
	}
	if tx.Customer != nil {
		c := *tx.Customer
		out.Customer = &c
	}
	out.Metadata = maps.Clone(tx.Metadata)
	out.Events = slices.Clone(tx.Events)
	for i := range out.Events {
		if e := out.Events[i].Error; e != nil {
			ec := *e
			ec.Type = slices.Clone(e.Type)
			if e.RetryPolicy != nil {
				rp := *e.RetryPolicy
				rp.RetryCodes = slices.Clone(rp.RetryCodes)
				if rp.RetryAfter != nil {
					t := *rp.RetryAfter
					rp.RetryAfter = &t
				}
				ec.RetryPolicy = &rp
			}
			out.Events[i].Error = &ec
		}
	}
	return out
}
