package main

// Cards across references (issue 15): dunning requests on cards that
// decline softly a few times and then pay, and tokens shared by several
// references, so the token governor has something to protect. And what
// the audit makes of them: no token asked again after Dintero said not to
// retry it, no token declined more often than its budget allows, every
// dunning request one final result.

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/worker"
)

const (
	// blockedUses is how many references share one DO_NOT_RETRY token:
	// the first is declined by Dintero, the others by the governor.
	blockedUses = 4
	// budgetUses is how many references share one insufficient-funds
	// token: more than the 24-hour budget, so the last are refused.
	budgetUses = 13
	// maxDunningDeclines bounds the soft declines of a dunning card.
	maxDunningDeclines = 2
)

// dunningSchedule is the workers' PAYWORKER_DUNNING_SCHEDULE in a chaos
// run: short, so dunning requests end within the run, and long enough for
// maxDunningDeclines declines.
const dunningSchedule = "1s,2s*3"

// dunningWindow is how long a dunning request may keep trying (its
// Payworker-Retry-Until, from its publishing).
const dunningWindow = 30 * time.Minute

// declineBudget is the workers' 24-hour decline budget per token (the
// default of PAYWORKER_TOKEN_LIMITS).
func declineBudget() int { return worker.DefaultTokenLimits()[0].Max }

// reuseCard is what assignCards decided for one reference.
type reuseCard struct {
	card    card
	token   string
	group   string
	product string // a group's: a token is a card only with its provider
	dunning int
}

// assignCards picks, among the references paying with a good card, the
// dunning ones and the members of the shared-token groups. The budget
// groups' references are published between 60 % and 80 % of the load,
// clear of the default faults that lose Redis writes (FLUSHALL at 25 %,
// failover at 55 %): the governor's counts live in Redis, and a run whose
// faults wiped them could not show that the budget holds.
func assignCards(rng *rand.Rand, p planParams, cards []card) (map[int]reuseCard, error) {
	n := len(cards)
	var ok []int
	for _, i := range rng.Perm(n) {
		if cards[i] == cardOK {
			ok = append(ok, i)
		}
	}
	taken := map[int]bool{}
	// take returns a free reference among those published between lo and
	// hi (fractions of the load), or -1.
	take := func(lo, hi float64) int {
		for _, i := range ok {
			if !taken[i] && float64(i) >= lo*float64(n) && float64(i) < hi*float64(n) {
				taken[i] = true
				return i
			}
		}
		return -1
	}
	hex := func() string { return fmt.Sprintf("%016x", rng.Uint64()) }
	out := make(map[int]reuseCard, len(ok))
	dunning := int(float64(n)*p.DunningRate + 0.5)
	add := func(rc reuseCard, count int, lo, hi float64) error {
		for range count {
			i := take(lo, hi)
			if i < 0 {
				return fmt.Errorf("not enough references paying with a good card for %d dunning and %d shared-token references",
					dunning, p.BlockedTokens*blockedUses+p.BudgetTokens*budgetUses)
			}
			out[i] = rc
		}
		return nil
	}
	for range dunning {
		d := 1 + rng.IntN(maxDunningDeclines)
		if err := add(reuseCard{card: cardSoftDecline, token: dinterotest.SoftDeclineToken(d, hex()), dunning: d}, 1, 0, 1); err != nil {
			return nil, err
		}
	}
	for g := range p.BudgetTokens {
		rc := reuseCard{card: cardInsufficientFunds, token: dinterotest.TokenInsufficientFunds + hex(), group: fmt.Sprintf("budget-%d", g),
			product: products[(g+1)%len(products)]}
		if err := add(rc, budgetUses, 0.6, 0.8); err != nil {
			return nil, err
		}
	}
	for g := range p.BlockedTokens {
		rc := reuseCard{card: cardDoNotRetry, token: dinterotest.TokenDoNotRetry + hex(), group: fmt.Sprintf("blocked-%d", g),
			product: products[g%len(products)]}
		if err := add(rc, blockedUses, 0, 1); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// tokenReport is the token part of the audit.
type tokenReport struct {
	Dunning          int // dunning references
	DunningSucceeded int
	RetryScheduled   int // retry_scheduled events of dunning requests
	Blocked          int // results declined with token_blocked
	OverBudget       int // results declined with retry_limit_reached
	// AskedAfterBlock counts pay calls with a token sent after Dintero
	// declined it with DO_NOT_RETRY; must be 0 unless Explained.
	AskedAfterBlock int
	// BudgetExceeded counts tokens declined more often than the budget;
	// must be 0 unless Explained.
	BudgetExceeded int
	// Explained counts the above explained by a fault that lost Redis
	// writes (the governor's marks live beside the claims).
	Explained int
}

// auditTokens adds the token audit to r.
func auditTokens(in auditInput, r *report) {
	tr := &r.Tokens
	groups := map[string][]string{} // group -> references
	seen := map[string]bool{}
	for _, m := range in.Plan.Msgs {
		if m.Kind != kindOriginal {
			continue
		}
		if m.Dunning > 0 {
			tr.Dunning++
		}
		if m.Group != "" && !seen[m.Ref] {
			seen[m.Ref] = true
			groups[m.Group] = append(groups[m.Group], m.Ref)
		}
	}
	dunningRef := map[string]bool{}
	for _, m := range in.Plan.Msgs {
		if m.Dunning > 0 {
			dunningRef[m.Ref] = true
		}
	}
	for _, res := range in.Results {
		if res.DecodeErr != nil {
			continue
		}
		switch {
		case res.Result.Outcome == messages.OutcomeRetryScheduled:
			tr.RetryScheduled++
		case res.Result.Outcome == messages.OutcomeSucceeded && dunningRef[res.Result.MerchantReference] && !res.Result.Duplicate:
			tr.DunningSucceeded++
		case res.Result.Error != nil && res.Result.Error.Code == messages.CodeTokenBlocked:
			tr.Blocked++
		case res.Result.Error != nil && res.Result.Error.Code == messages.CodeRetryLimitReached:
			tr.OverBudget++
		}
	}

	byRef := map[string][]dintero.Transaction{}
	for _, tx := range in.Loss.Transactions {
		byRef[tx.MerchantReference] = append(byRef[tx.MerchantReference], tx)
	}
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	sort.Strings(names)
	for _, g := range names {
		var txs []dintero.Transaction
		for _, ref := range groups[g] {
			txs = append(txs, byRef[ref]...)
		}
		sort.SliceStable(txs, func(a, b int) bool { return txs[a].CreatedAt.Before(txs[b].CreatedAt) })
		if len(txs) == 0 {
			continue
		}
		if strings.HasPrefix(g, "blocked-") {
			auditBlocked(g, txs, in.Loss, r)
		} else {
			auditBudget(g, txs, in.Loss, r)
		}
	}
}

// auditBlocked checks that no call with a DO_NOT_RETRY token came after
// one of Dintero's declines of it was answered (window after it: a call
// already on its way then is not a retry). Each call is measured from the
// latest decline before it: a block lost with Redis is set again by the
// next decline.
func auditBlocked(g string, txs []dintero.Transaction, li lossInput, r *report) {
	var blockedAt time.Time
	var blockedRef string
	for _, tx := range txs {
		if !blockedAt.IsZero() && tx.CreatedAt.After(blockedAt.Add(li.Window)) {
			if !li.OutageFrom.IsZero() && !blockedAt.Before(li.OutageFrom) && blockedAt.Before(li.OutageUntil) {
				r.Tokens.Explained++
				r.problem("token of %s asked again for %s at %s after its DO_NOT_RETRY at %s: explained, that answer was lost in the Dintero outage",
					g, tx.MerchantReference, tx.CreatedAt.Format("15:04:05.000"), blockedAt.Format("15:04:05.000"))
			} else if e, ok := lostBetween(li.Events, blockedAt, tx.CreatedAt, li.Window); ok {
				r.Tokens.Explained++
				r.problem("token of %s asked again for %s at %s after its DO_NOT_RETRY at %s: explained, the block was lost by the %s",
					g, tx.MerchantReference, tx.CreatedAt.Format("15:04:05.000"), blockedAt.Format("15:04:05.000"), e)
			} else if w, e, ok := lateBlockLost(li, blockedRef, tx.CreatedAt); ok {
				r.Tokens.Explained++
				r.problem("token of %s asked again for %s at %s after its DO_NOT_RETRY at %s: explained, the answer was lost, the block written at %s (found by lookup) was lost by the %s",
					g, tx.MerchantReference, tx.CreatedAt.Format("15:04:05.000"), blockedAt.Format("15:04:05.000"), w.Format("15:04:05.000"), e)
			} else {
				r.Tokens.AskedAfterBlock++
				r.problem("token of %s asked again for %s at %s after Dintero's DO_NOT_RETRY at %s",
					g, tx.MerchantReference, tx.CreatedAt.Format("15:04:05.000"), blockedAt.Format("15:04:05.000"))
			}
		}
		if dintero.Declined(tx.Status) {
			blockedAt, blockedRef = tx.CreatedAt, tx.MerchantReference
		}
	}
}

// lateBlockLost reports a fault that lost the block a worker wrote for
// ref's decline before `before`, when that write came late (the pay call's
// answer was lost and a lookup found the decline): the last such write
// before `before`, and the fault.
func lateBlockLost(li lossInput, ref string, before time.Time) (time.Time, lossEvent, bool) {
	var last time.Time
	for _, w := range li.BlockWrites[ref] {
		if w.Before(before) && w.After(last) {
			last = w
		}
	}
	if last.IsZero() {
		return last, lossEvent{}, false
	}
	e, ok := lostBetween(li.Events, last, before, 0)
	return last, e, ok
}

// auditBudget checks that a token was declined at most the budget's times
// (a chaos run is shorter than the 24-hour window; no success clears the
// count of these cards).
func auditBudget(g string, txs []dintero.Transaction, li lossInput, r *report) {
	declined := 0
	for _, tx := range txs {
		if dintero.Declined(tx.Status) {
			declined++
		}
	}
	limit := declineBudget()
	if declined <= limit {
		return
	}
	// Each fault that lost the governor's counts lets up to a budget more
	// through.
	lost := 0
	for _, e := range li.Events {
		if e.Kind != lossPause && !e.At.Before(txs[0].CreatedAt) && !e.At.After(txs[len(txs)-1].CreatedAt) {
			lost++
		}
	}
	if lost > 0 && declined <= limit*(1+lost) {
		r.Tokens.Explained++
		r.problem("token of %s declined %d times, budget %d: explained, %d faults lost Redis writes meanwhile", g, declined, limit, lost)
		return
	}
	r.Tokens.BudgetExceeded++
	r.problem("token of %s declined %d times at Dintero, budget %d", g, declined, limit)
}

// lostBetween returns a fault that lost a Redis write made at from (or
// within window after it) and came before to.
func lostBetween(events []lossEvent, from, to time.Time, window time.Duration) (lossEvent, bool) {
	for _, e := range events {
		switch e.Kind {
		case lossFlush:
			if e.At.After(from) && e.At.Before(to) {
				return e, true
			}
		case lossFailover:
			if from.Add(window).After(e.Since) && e.At.Before(to) && from.Before(e.At) {
				return e, true
			}
		}
	}
	return lossEvent{}, false
}

// printTokens writes the token rows of the table.
func printTokens(row func(name string, v any, rule string), check func(name string, n int), r *report) {
	t := r.Tokens
	row("dunning requests / succeeded / retry_scheduled events", fmt.Sprintf("%d / %d / %d", t.Dunning, t.DunningSucceeded, t.RetryScheduled), "")
	row("declined by the governor: token_blocked / retry_limit_reached", fmt.Sprintf("%d / %d", t.Blocked, t.OverBudget), "Dintero not called")
	check("tokens asked again after DO_NOT_RETRY", t.AskedAfterBlock)
	check("tokens declined more often than their budget", t.BudgetExceeded)
	row("token checks explained by lost Redis writes", t.Explained, "reported (not must-be-0)")
}
