package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"

	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/messages"
)

// kind says why a message is in the plan.
type kind int

const (
	kindOriginal  kind = iota // the first request of a reference
	kindDuplicate             // the same body again, another Nats-Msg-Id
	kindConflict              // the same reference, another amount
)

func (k kind) String() string {
	switch k {
	case kindOriginal:
		return "original"
	case kindDuplicate:
		return "duplicate"
	default:
		return "conflict"
	}
}

// card is the kind of test card a reference pays with.
type card int

const (
	cardOK                card = iota // sandbox-ok-: authorized
	cardInsufficientFunds             // declined, RETRY_AFTER_DELAY
	cardDoNotRetry                    // declined, DO_NOT_RETRY
	cardSoftDecline                   // declined N times with RETRY_AFTER_DELAY, then authorized (dunning)
)

func (c card) declines() bool { return c != cardOK && c != cardSoftDecline }

// planned is one message to publish.
type planned struct {
	Index    int    // position in plan.Msgs
	Ref      string // merchant_reference
	Kind     kind
	MsgID    string // Nats-Msg-Id
	Body     []byte
	Amount   int64
	Product  string
	Op       string
	Card     card
	Token    string // the card token the reference pays with
	Dunning  int    // a dunning request on a card declining this many times first; 0: not dunning
	Group    string // the shared-token group the reference is in (tokens.go); "": its own token
	Original int    // index of the reference's original message (itself for originals)
}

// plan is the whole load, in publishing order. It depends only on its
// parameters, so a seed replays the same load.
type plan struct {
	Msgs []planned
	Refs int // distinct references (= originals)
}

// planParams are the knobs of newPlan.
type planParams struct {
	Seed         int64
	Requests     int     // originals
	DupRate      float64 // fraction of references sent a second time
	ConflictRate float64 // fraction of references reused with another amount
	DeclineRate  float64 // fraction of references paying with a declining card
	DunningRate  float64 // fraction of references asking for dunning, on a soft-declining card
	// BlockedTokens and BudgetTokens are the shared-token groups
	// (tokens.go): DO_NOT_RETRY tokens each used by blockedUses references,
	// insufficient-funds tokens each used by budgetUses.
	BlockedTokens int
	BudgetTokens  int
	// MaxDelay is how many messages after its original an extra message
	// is placed, at most (uniform in [1, MaxDelay]).
	MaxDelay int
}

var (
	products   = []string{messages.ProductPayExCreditcard, messages.ProductBamboraCreditcard, messages.ProductDinteroPSPCreditcard}
	operations = []string{messages.OperationRecurringPurchase, messages.OperationUnscheduledPurchase}
)

// conflictDelta is added to the amount of a conflicting request.
const conflictDelta = 100

func newPlan(p planParams) (plan, error) {
	if p.Requests <= 0 {
		return plan{}, fmt.Errorf("requests must be positive, got %d", p.Requests)
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 200
	}
	rng := rand.New(rand.NewPCG(uint64(p.Seed), 0x9e3779b97f4a7c15))
	n := p.Requests
	count := func(rate float64) int { return min(n, int(float64(n)*rate+0.5)) }

	// Exact counts, spread at random: a permutation picks who is what.
	cards := make([]card, n)
	for i, j := range rng.Perm(n)[:count(p.DeclineRate)] {
		cards[j] = cardInsufficientFunds + card(i%2)
	}
	reuse, err := assignCards(rng, p, cards)
	if err != nil {
		return plan{}, err
	}
	extra := make([]kind, n) // kindOriginal: none
	perm := rng.Perm(n)
	nd, nc := count(p.DupRate), count(p.ConflictRate)
	if nd+nc > n {
		return plan{}, fmt.Errorf("duplicate and conflict rates add up to more than all requests")
	}
	for _, j := range perm[:nd] {
		extra[j] = kindDuplicate
	}
	for _, j := range perm[nd : nd+nc] {
		extra[j] = kindConflict
	}

	type slot struct {
		pos float64
		m   planned
	}
	slots := make([]slot, 0, n+nd+nc)
	for i := range n {
		ref := fmt.Sprintf("chaos-%d-%06d", p.Seed, i)
		m := planned{
			Ref:     ref,
			Kind:    kindOriginal,
			MsgID:   ref,
			Amount:  100 + rng.Int64N(99_900),
			Product: products[rng.IntN(len(products))],
			Op:      operations[rng.IntN(len(operations))],
			Card:    cards[i],
		}
		token := tokenFor(m.Card, rng)
		if r, ok := reuse[i]; ok {
			m.Card, m.Group, token, m.Dunning = r.card, r.group, r.token, r.dunning
			if r.product != "" {
				m.Product = r.product
			}
		}
		m.Token = token
		body, err := chargeBody(m, m.Amount, token)
		if err != nil {
			return plan{}, err
		}
		m.Body = body
		slots = append(slots, slot{pos: float64(i), m: m})
		if extra[i] == kindOriginal {
			continue
		}
		x := m
		x.Kind = extra[i]
		x.MsgID = ref + ":" + x.Kind.String()
		if x.Kind == kindConflict {
			x.Amount = m.Amount + conflictDelta
			if x.Body, err = chargeBody(x, x.Amount, token); err != nil {
				return plan{}, err
			}
		}
		// +0.5 keeps extras after their original and off the integer slots.
		slots = append(slots, slot{pos: float64(i+1+rng.IntN(p.MaxDelay)) - 0.5, m: x})
	}
	sort.SliceStable(slots, func(a, b int) bool { return slots[a].pos < slots[b].pos })

	pl := plan{Msgs: make([]planned, len(slots)), Refs: n}
	orig := make(map[string]int, n)
	for i, s := range slots {
		m := s.m
		m.Index = i
		if m.Kind == kindOriginal {
			orig[m.Ref] = i
		}
		m.Original = orig[m.Ref] // originals come first: pos i < i+0.5
		pl.Msgs[i] = m
	}
	return pl, nil
}

func tokenFor(c card, rng *rand.Rand) string {
	prefix := dinterotest.TokenAuthorized
	switch c {
	case cardInsufficientFunds:
		prefix = dinterotest.TokenInsufficientFunds
	case cardDoNotRetry:
		prefix = dinterotest.TokenDoNotRetry
	}
	return fmt.Sprintf("%s%016x", prefix, rng.Uint64())
}

// chargeBody builds the POST /v1/sessions/pay body of m with the given
// amount: one order line, 25 % VAT included.
func chargeBody(m planned, amount int64, token string) ([]byte, error) {
	vat := amount / 5
	qty, rate := 1.0, 25.0
	tokens := messages.CardTokens{PaymentToken: token}
	if m.Product == messages.ProductPayExCreditcard && m.Op == messages.OperationRecurringPurchase {
		tokens = messages.CardTokens{RecurrenceToken: token}
	}
	req := messages.ChargeRequest{
		Session: messages.PaySession{
			Customer: &messages.Customer{
				CustomerID: "cust-" + m.Ref,
				Email:      "chaos@example.com",
				Tokens:     map[string]messages.CardTokens{m.Product: tokens},
			},
			Order: messages.Order{
				Amount:            amount,
				Currency:          "NOK",
				VATAmount:         &vat,
				MerchantReference: m.Ref,
				Items: []messages.OrderItem{{
					ID: "item-1", LineID: "1", Description: "chaos order line",
					Quantity: &qty, Amount: amount, VATAmount: &vat, VAT: &rate,
				}},
			},
		},
		Payment: messages.Payment{PaymentProductType: m.Product, Operation: m.Op},
	}
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("plan %s: %w", m.Ref, err)
	}
	body, err := json.Marshal(&req)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", m.Ref, err)
	}
	return body, nil
}
