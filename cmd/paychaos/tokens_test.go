package main

import (
	"strings"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
)

func TestPlanSharesTokensAndAsksForDunning(t *testing.T) {
	pl, err := newPlan(planParams{Seed: 3, Requests: 400, DeclineRate: 0.02, DunningRate: 0.05, BlockedTokens: 2, BudgetTokens: 1})
	if err != nil {
		t.Fatal(err)
	}
	dunning, groups := 0, map[string]map[string]bool{}
	tokenOf := map[string]string{}
	for _, m := range pl.Msgs {
		if m.Kind != kindOriginal {
			continue
		}
		if prev, ok := tokenOf[m.Ref]; ok && prev != m.Token {
			t.Fatalf("%s pays with two tokens", m.Ref)
		}
		tokenOf[m.Ref] = m.Token
		if m.Dunning > 0 {
			dunning++
			if m.Card != cardSoftDecline || !strings.HasPrefix(m.Token, dinterotest.TokenSoftDecline) || m.Dunning > maxDunningDeclines {
				t.Errorf("dunning reference %+v", m)
			}
		}
		if m.Group != "" {
			if groups[m.Group] == nil {
				groups[m.Group] = map[string]bool{}
			}
			groups[m.Group][m.Product+" "+m.Token] = true
			if !strings.Contains(string(m.Body), m.Token) {
				t.Errorf("%s: body does not carry the group's token", m.Ref)
			}
		}
	}
	if dunning != 20 {
		t.Errorf("%d dunning references, want 20", dunning)
	}
	if len(groups) != 3 {
		t.Fatalf("groups %v, want blocked-0, blocked-1, budget-0", groups)
	}
	for g, tokens := range groups {
		if len(tokens) != 1 {
			t.Errorf("group %s uses %d provider and token pairs, want one: %v", g, len(tokens), tokens)
		}
	}
	if _, err := newPlan(planParams{Seed: 3, Requests: 10, BudgetTokens: 1}); err == nil {
		t.Error("a budget group of 13 fitted in 10 references")
	}
}

func TestAuditTokens(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	tx := func(ref, status string, sec int) dintero.Transaction {
		return dintero.Transaction{MerchantReference: ref, Status: status, CreatedAt: t0.Add(time.Duration(sec) * time.Second)}
	}
	group := func(g string, refs ...string) plan {
		var pl plan
		for i, r := range refs {
			pl.Msgs = append(pl.Msgs, planned{Index: i, Ref: r, Kind: kindOriginal, Group: g})
		}
		return pl
	}
	budget := func(n int) ([]string, []dintero.Transaction) {
		var refs []string
		var txs []dintero.Transaction
		for i := range n {
			ref := "b" + string(rune('a'+i))
			refs = append(refs, ref)
			txs = append(txs, tx(ref, dintero.StatusFailed, i*10))
		}
		return refs, txs
	}
	within, _ := budget(declineBudget())
	_, withinTx := budget(declineBudget())
	over, overTx := budget(declineBudget() + 1)
	for _, tc := range []struct {
		name                    string
		pl                      plan
		txs                     []dintero.Transaction
		events                  []lossEvent
		asked, exceeded, explnd int
	}{
		{name: "blocked, asked once", pl: group("blocked-0", "a", "b"), txs: []dintero.Transaction{tx("a", dintero.StatusDeclined, 0)}},
		{name: "in flight at the block", pl: group("blocked-0", "a", "b"),
			txs: []dintero.Transaction{tx("a", dintero.StatusDeclined, 0), tx("b", dintero.StatusDeclined, 1)}},
		{name: "asked again", pl: group("blocked-0", "a", "b"),
			txs:   []dintero.Transaction{tx("a", dintero.StatusDeclined, 0), tx("b", dintero.StatusDeclined, 30)},
			asked: 1},
		{name: "asked again after a FLUSHALL", pl: group("blocked-0", "a", "b"),
			txs:    []dintero.Transaction{tx("a", dintero.StatusDeclined, 0), tx("b", dintero.StatusDeclined, 30)},
			events: []lossEvent{{Kind: lossFlush, At: t0.Add(10 * time.Second)}}, explnd: 1},
		{name: "asked again after a re-block", pl: group("blocked-0", "a", "b", "c"),
			txs:    []dintero.Transaction{tx("a", dintero.StatusDeclined, 0), tx("b", dintero.StatusDeclined, 30), tx("c", dintero.StatusDeclined, 60)},
			events: []lossEvent{{Kind: lossFlush, At: t0.Add(10 * time.Second)}}, explnd: 1, asked: 1},
		{name: "budget kept", pl: group("budget-0", within...), txs: withinTx},
		{name: "budget exceeded", pl: group("budget-0", over...), txs: overTx, exceeded: 1},
		{name: "budget exceeded after a failover", pl: group("budget-0", over...), txs: overTx,
			events: []lossEvent{{Kind: lossFailover, At: t0.Add(50 * time.Second), Since: t0.Add(45 * time.Second)}}, explnd: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &report{}
			auditTokens(auditInput{Plan: tc.pl, Loss: lossInput{Transactions: tc.txs, Events: tc.events, Window: 6 * time.Second}}, r)
			if r.Tokens.AskedAfterBlock != tc.asked || r.Tokens.BudgetExceeded != tc.exceeded || r.Tokens.Explained != tc.explnd {
				t.Errorf("asked %d, exceeded %d, explained %d; want %d, %d, %d; problems %v",
					r.Tokens.AskedAfterBlock, r.Tokens.BudgetExceeded, r.Tokens.Explained, tc.asked, tc.exceeded, tc.explnd, r.Problems)
			}
			if v := len(r.violations()); (v > 0) != (tc.asked+tc.exceeded > 0) {
				t.Errorf("violations %v", r.violations())
			}
		})
	}
}
