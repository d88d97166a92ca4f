package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/messages"
)

func TestNewPlan(t *testing.T) {
	params := planParams{Seed: 7, Requests: 1000, DupRate: 0.05, ConflictRate: 0.01, DeclineRate: 0.02}
	pl, err := newPlan(params)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("deterministic", func(t *testing.T) {
		again, err := newPlan(params)
		if err != nil {
			t.Fatal(err)
		}
		if len(again.Msgs) != len(pl.Msgs) {
			t.Fatalf("second plan has %d messages, first %d", len(again.Msgs), len(pl.Msgs))
		}
		for i := range pl.Msgs {
			if !bytes.Equal(pl.Msgs[i].Body, again.Msgs[i].Body) || pl.Msgs[i].MsgID != again.Msgs[i].MsgID {
				t.Fatalf("message %d differs between two plans of the same seed", i)
			}
		}
		other, err := newPlan(planParams{Seed: 8, Requests: 1000, DupRate: 0.05, ConflictRate: 0.01, DeclineRate: 0.02})
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(other.Msgs[0].Body, pl.Msgs[0].Body) {
			t.Error("seeds 7 and 8 produced the same first message")
		}
	})

	t.Run("counts", func(t *testing.T) {
		kinds := map[kind]int{}
		declining := 0
		products := map[string]int{}
		ops := map[string]int{}
		for _, m := range pl.Msgs {
			kinds[m.Kind]++
			if m.Kind == kindOriginal {
				if m.Card.declines() {
					declining++
				}
				products[m.Product]++
				ops[m.Op]++
			}
		}
		want := map[kind]int{kindOriginal: 1000, kindDuplicate: 50, kindConflict: 10}
		for k, n := range want {
			if kinds[k] != n {
				t.Errorf("%s messages = %d, want %d", k, kinds[k], n)
			}
		}
		if declining != 20 {
			t.Errorf("declining references = %d, want 20", declining)
		}
		if pl.Refs != 1000 {
			t.Errorf("Refs = %d, want 1000", pl.Refs)
		}
		if len(products) != 3 || len(ops) != 2 {
			t.Errorf("products %v, operations %v: want all 3 and both", products, ops)
		}
	})

	t.Run("messages", func(t *testing.T) {
		ids := map[string]bool{}
		for i, m := range pl.Msgs {
			if m.Index != i {
				t.Fatalf("message %d has Index %d", i, m.Index)
			}
			if ids[m.MsgID] {
				t.Fatalf("Nats-Msg-Id %q used twice", m.MsgID)
			}
			ids[m.MsgID] = true
			req, err := messages.DecodeChargeRequest(m.Body)
			if err != nil {
				t.Fatalf("%s %s: body does not validate: %v", m.Kind, m.Ref, err)
			}
			if req.Session.Order.MerchantReference != m.Ref || req.Session.Order.Amount != m.Amount {
				t.Errorf("%s: body has ref %q amount %d, plan says %q %d", m.MsgID, req.Session.Order.MerchantReference, req.Session.Order.Amount, m.Ref, m.Amount)
			}
			tok := req.Session.Customer.Tokens[m.Product]
			token := tok.PaymentToken
			if m.Product == messages.ProductPayExCreditcard && m.Op == messages.OperationRecurringPurchase {
				token = tok.RecurrenceToken
			}
			prefix := dinterotest.TokenAuthorized
			if m.Card.declines() {
				prefix = "sandbox-" // either declining card
			}
			if !strings.HasPrefix(token, prefix) || (m.Card.declines() == strings.HasPrefix(token, dinterotest.TokenAuthorized)) {
				t.Errorf("%s: token of card %d has the wrong kind", m.MsgID, m.Card)
			}
			orig := pl.Msgs[m.Original]
			if orig.Kind != kindOriginal || orig.Ref != m.Ref || m.Original > i {
				t.Errorf("%s: Original %d is not an earlier original of %s", m.MsgID, m.Original, m.Ref)
			}
			switch m.Kind {
			case kindDuplicate:
				if !bytes.Equal(m.Body, orig.Body) {
					t.Errorf("%s: duplicate body differs from the original", m.MsgID)
				}
			case kindConflict:
				if m.Amount != orig.Amount+conflictDelta {
					t.Errorf("%s: conflict amount %d, original %d", m.MsgID, m.Amount, orig.Amount)
				}
			}
		}
	})
}

func TestNewPlanErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    planParams
	}{
		{"no requests", planParams{Requests: 0}},
		{"rates over one", planParams{Requests: 10, DupRate: 0.6, ConflictRate: 0.6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := newPlan(tc.p); err == nil {
				t.Error("newPlan succeeded, want an error")
			}
		})
	}
}

func TestParseResultMsgID(t *testing.T) {
	for _, tc := range []struct {
		id, ref, outcome string
		seq              uint64
		ok               bool
	}{
		{"order-1:succeeded:42", "order-1", "succeeded", 42, true},
		{"a:b:declined:7", "a:b", "declined", 7, true},
		{"seq-9:rejected:9", "seq-9", "rejected", 9, true},
		{"r:retry_scheduled:7-3", "r", "retry_scheduled", 7, true}, // a dunning attempt's event
		{"order-1:succeeded:x", "", "", 0, false},
		{"order-1", "", "", 0, false},
		{"succeeded:42", "", "", 0, false},
	} {
		t.Run(tc.id, func(t *testing.T) {
			ref, outcome, seq, ok := parseResultMsgID(tc.id)
			if ref != tc.ref || outcome != tc.outcome || seq != tc.seq || ok != tc.ok {
				t.Errorf("parseResultMsgID(%q) = %q, %q, %d, %v; want %q, %q, %d, %v", tc.id, ref, outcome, seq, ok, tc.ref, tc.outcome, tc.seq, tc.ok)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	ds := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 5}, {99, 10}, {100, 10}, {1, 1}} {
		if got := percentile(ds, tc.p); got != tc.want {
			t.Errorf("percentile(1..10, %v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
}
