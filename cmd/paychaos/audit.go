package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/messages"
)

// auditInput is everything the audit looks at.
type auditInput struct {
	Plan        plan
	Published   []pubRec
	Results     []resultMsg
	Ledger      []dinterotest.Charge
	DeadLetters int
	HeldBack    int // conflicts never sent: their original never finished
	LeftInQueue int // requests still in the work queue (never acked)
	Loss        lossInput
	Sessions    sessionInput
}

// report is the outcome of the audit. Fields marked "must be 0" are
// violations.
type report struct {
	Published       int // requests accepted by the stream
	DistinctRefs    int
	Charges         int                      // ledger entries
	DoubleCharged   int                      // references charged more than once; must be 0
	ConflictCharged int                      // conflicting requests charged; must be 0
	NoResult        int                      // published requests without a result; must be 0
	ExtraResults    int                      // results beyond one per request; must be 0
	Disagree        int                      // results that disagree with the ledger; must be 0
	WrongOutcome    int                      // outcome not the one the card and kind call for; must be 0
	Outcomes        map[messages.Outcome]int // final results by outcome
	Interim         map[messages.Outcome]int // non-final events by outcome
	DuplicateFlag   int                      // results marked duplicate
	Declines        int                      // declined results
	GaveUp          int                      // failed results
	Conflicts       int                      // rejected results with code conflict
	DeadLetters     int
	HeldBack        int // conflicts not sent (their original had no result)
	LeftInQueue     int // requests never acked; must be 0
	RetriedDeclines int // declined references tried again at Dintero; must be 0
	ChargedFailed   int // references Dintero charged whose result says failed; must be 0
	Fence           []fenceRefusal
	Sessions        sessionReport
	Tokens          tokenReport
	Problems        []string
}

func (r *report) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// violations returns the names of the checks that failed.
func (r *report) violations() []string {
	var v []string
	for _, c := range []struct {
		name string
		n    int
	}{
		{"references charged more than once", r.DoubleCharged},
		{"conflicting requests charged", r.ConflictCharged},
		{"requests with no final result", r.NoResult},
		{"extra results", r.ExtraResults},
		{"results that disagree with the ledger", r.Disagree},
		{"wrong outcomes", r.WrongOutcome},
		{"conflicts never sent", r.HeldBack},
		{"requests left in the work queue", r.LeftInQueue},
		{"declined references tried again", r.RetriedDeclines},
		{"charged references answered failed", r.ChargedFailed},
		{"session requests with no final result", r.Sessions.NoResult},
		{"session requests with more than one result", r.Sessions.Extra},
		{"references with more than one live Dintero session", r.Sessions.MultiSession},
		{"session requests answered with a cancelled session", r.Sessions.AnsweredCancelled},
		{"session requests answered failed while Dintero held a session", r.Sessions.FailedButHeld},
		{"tokens asked again after DO_NOT_RETRY", r.Tokens.AskedAfterBlock},
		{"tokens declined more often than their budget", r.Tokens.BudgetExceeded},
	} {
		if c.n != 0 {
			v = append(v, c.name)
		}
	}
	return v
}

func audit(in auditInput) *report {
	r := &report{Outcomes: map[messages.Outcome]int{}, Interim: map[messages.Outcome]int{}, DeadLetters: in.DeadLetters, HeldBack: in.HeldBack, LeftInQueue: in.LeftInQueue}
	r.Published = len(in.Published)

	// Requests: what was sent, per sequence and per reference.
	bySeq := make(map[uint64]planned, len(in.Published))
	pubPerRef := map[string]int{}
	for _, p := range in.Published {
		m := in.Plan.Msgs[p.Index]
		bySeq[p.Seq] = m
		pubPerRef[m.Ref]++
	}
	r.DistinctRefs = len(pubPerRef)

	// Results: one final result per request, after any number of
	// non-final events.
	resPerSeq := map[uint64][]resultMsg{}
	resPerRef := map[string][]resultMsg{}
	for _, res := range in.Results {
		if res.DecodeErr != nil {
			r.Disagree++
			r.problem("result %q (stream seq %d) does not decode: %v", res.MsgID, res.StreamSeq, res.DecodeErr)
			continue
		}
		ref := res.Result.MerchantReference
		if _, ok := bySeq[res.ReqSeq]; !ok {
			r.ExtraResults++
			r.problem("result %q (stream seq %d) answers no request we published", res.MsgID, res.StreamSeq)
			continue
		}
		if want := bySeq[res.ReqSeq].Ref; ref != want {
			r.Disagree++
			r.problem("result %q names reference %q, request seq %d was for %q", res.MsgID, ref, res.ReqSeq, want)
			continue
		}
		if !res.Result.Outcome.Final() {
			r.Interim[res.Result.Outcome]++
			continue
		}
		resPerSeq[res.ReqSeq] = append(resPerSeq[res.ReqSeq], res)
		resPerRef[ref] = append(resPerRef[ref], res)
		r.Outcomes[res.Result.Outcome]++
		if res.Result.Duplicate {
			r.DuplicateFlag++
		}
		switch res.Result.Outcome {
		case messages.OutcomeDeclined:
			r.Declines++
		case messages.OutcomeFailed:
			r.GaveUp++
		case messages.OutcomeRejected:
			if res.Result.Error != nil && res.Result.Error.Code == messages.CodeConflict {
				r.Conflicts++
			}
		}
	}
	seqs := make([]uint64, 0, len(bySeq))
	for s := range bySeq {
		seqs = append(seqs, s)
	}
	sort.Slice(seqs, func(a, b int) bool { return seqs[a] < seqs[b] })
	for _, s := range seqs {
		m := bySeq[s]
		switch got := resPerSeq[s]; {
		case len(got) == 0:
			r.NoResult++
			r.problem("no result: %s %s (msg id %s, request seq %d)", m.Kind, m.Ref, m.MsgID, s)
		case len(got) > 1:
			r.ExtraResults += len(got) - 1
			ids := make([]string, len(got))
			for i, g := range got {
				ids[i] = fmt.Sprintf("%s(dup=%v)", g.MsgID, g.Result.Duplicate)
			}
			r.problem("%d results for request seq %d (%s %s): %s", len(got), s, m.Kind, m.Ref, strings.Join(ids, ", "))
		}
	}
	// The per-reference count, as a cross-check of the per-request one.
	for ref, n := range pubPerRef {
		if got := len(resPerRef[ref]); got < n && !hasMissingProblem(r, ref) {
			r.NoResult += n - got
			r.problem("reference %s: %d requests published, %d results", ref, n, got)
		}
	}

	// Ledger.
	r.Charges = len(in.Ledger)
	ledger := map[string][]dinterotest.Charge{}
	for _, c := range in.Ledger {
		ledger[c.MerchantReference] = append(ledger[c.MerchantReference], c)
	}
	planByRef := map[string]planned{}
	conflictAmount := map[string]int64{}
	for _, m := range in.Plan.Msgs {
		switch m.Kind {
		case kindOriginal:
			planByRef[m.Ref] = m
		case kindConflict:
			conflictAmount[m.Ref] = m.Amount
		}
	}
	refs := make([]string, 0, len(ledger))
	for ref := range ledger {
		refs = append(refs, ref)
	}
	sort.Strings(refs)
	for _, ref := range refs {
		cs := ledger[ref]
		if len(cs) > 1 {
			r.DoubleCharged++
			r.problem("charged %d times: %s: %s", len(cs), ref, describeCharges(cs))
		}
		for _, c := range cs {
			if a, ok := conflictAmount[ref]; ok && c.Amount == a {
				r.ConflictCharged++
				r.problem("conflicting amount charged: %s %d (transaction %s)", ref, c.Amount, c.TransactionID)
			}
			if _, ok := planByRef[ref]; !ok {
				r.Disagree++
				r.problem("ledger charge for a reference never published: %s (transaction %s)", ref, c.TransactionID)
				continue
			}
			if !hasSucceeded(resPerRef[ref], c.TransactionID) {
				r.Disagree++
				r.problem("ledger charge %s of %s (amount %d) has no succeeded result naming it; results: %s", c.TransactionID, ref, c.Amount, describeResults(resPerRef[ref]))
			}
		}
	}
	for _, ref := range sortedKeys(resPerRef) {
		for _, res := range resPerRef[ref] {
			if res.Result.Outcome != messages.OutcomeSucceeded {
				continue
			}
			if !inLedger(ledger[ref], res.Result.TransactionID, res.Result.Amount) {
				r.Disagree++
				r.problem("succeeded result %q (transaction %s, amount %d) matches no ledger charge of %s: %s", res.MsgID, res.Result.TransactionID, res.Result.Amount, ref, describeCharges(ledger[ref]))
			}
		}
	}

	// Outcomes: what each message should have ended as.
	for _, s := range seqs {
		m := bySeq[s]
		got := resPerSeq[s]
		if len(got) == 0 {
			continue
		}
		res := got[0].Result
		orig := planByRef[m.Ref]
		var origOutcome messages.Outcome
		if o := resPerSeq[seqOfIndex(in.Published, m.Original)]; len(o) > 0 {
			origOutcome = o[0].Result.Outcome
		}
		if ok, want := expectedOutcome(m, orig.Card, res, origOutcome); !ok {
			r.WrongOutcome++
			r.problem("wrong outcome: %s %s (request seq %d): got %s%s, want %s", m.Kind, m.Ref, s, res.Outcome, errCode(res), want)
		}
	}
	for _, ref := range chargedButFailed(in) {
		r.ChargedFailed++
		r.problem("Dintero charged %s, and its result says failed", ref)
	}
	auditLoss(in, r)
	auditTokens(in, r)
	auditSessions(in.Sessions, r)
	return r
}

// expectedOutcome says whether res is right for message m, paid with card
// c, whose reference's original ended as origOutcome ("" if unknown).
// failed (gave up) is always allowed: it is the worker's documented answer
// to an outage that outlasts its retries.
func expectedOutcome(m planned, c card, res messages.ChargeResult, origOutcome messages.Outcome) (bool, string) {
	if res.Outcome == messages.OutcomeFailed {
		return true, ""
	}
	cardOutcome := messages.OutcomeSucceeded // a dunning card's too: it pays in the end
	if c.declines() {
		cardOutcome = messages.OutcomeDeclined
	}
	switch m.Kind {
	case kindConflict:
		if origOutcome == messages.OutcomeFailed || origOutcome == "" {
			return true, "" // nothing to compare with: the reference is open again
		}
		isConflict := res.Outcome == messages.OutcomeRejected && res.Error != nil && res.Error.Code == messages.CodeConflict
		return isConflict, "rejected (conflict)"
	default:
		return res.Outcome == cardOutcome, string(cardOutcome)
	}
}

func errCode(res messages.ChargeResult) string {
	if res.Error == nil {
		return ""
	}
	return " (" + res.Error.Code + ")"
}

func seqOfIndex(pubs []pubRec, index int) uint64 {
	for _, p := range pubs {
		if p.Index == index {
			return p.Seq
		}
	}
	return 0
}

func hasMissingProblem(r *report, ref string) bool {
	for _, p := range r.Problems {
		if strings.HasPrefix(p, "no result:") && strings.Contains(p, " "+ref+" ") {
			return true
		}
	}
	return false
}

func hasSucceeded(rs []resultMsg, txID string) bool {
	for _, r := range rs {
		if r.Result.Outcome == messages.OutcomeSucceeded && r.Result.TransactionID == txID {
			return true
		}
	}
	return false
}

func inLedger(cs []dinterotest.Charge, txID string, amount int64) bool {
	for _, c := range cs {
		if c.TransactionID == txID && c.Amount == amount {
			return true
		}
	}
	return false
}

func describeCharges(cs []dinterotest.Charge) string {
	if len(cs) == 0 {
		return "none"
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%s amount=%d at %s", c.TransactionID, c.Amount, c.CreatedAt.Format("15:04:05.000"))
	}
	return strings.Join(parts, "; ")
}

func describeResults(rs []resultMsg) string {
	if len(rs) == 0 {
		return "none"
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%s tx=%q dup=%v", r.MsgID, r.Result.TransactionID, r.Result.Duplicate)
	}
	return strings.Join(parts, "; ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// runInfo is what the table shows besides the audit.
type runInfo struct {
	Seed        int64
	Planned     int
	Rate        float64
	LoadTime    time.Duration // first publish to last publish
	Wall        time.Duration // first publish to last result (or give-up)
	Faults      *faultLog
	Exits       []string // unexpected process exits
	PublishRetr int
	Counters    *dinterotest.Counters
	Latencies   []time.Duration // publish to first result, sorted
	Slowest     []string        // the slowest requests, described
	Loss        *lossLog
	Outage      *outageLog
}

// printTable writes the report as a table. maxProblems limits the details.
func printTable(w io.Writer, r *report, ri runInfo, maxProblems int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name string, v any, rule string) { fmt.Fprintf(tw, "%s\t%v\t%s\n", name, v, rule) }
	check := func(name string, n int) {
		verdict := "ok (must be 0)"
		if n != 0 {
			verdict = "VIOLATION (must be 0)"
		}
		row(name, n, verdict)
	}
	fmt.Fprintln(tw, "check\tvalue\t")
	fmt.Fprintln(tw, "-----\t-----\t")
	row("seed", ri.Seed, "")
	row("messages planned", ri.Planned, fmt.Sprintf("at %.0f/s", ri.Rate))
	row("requests published", r.Published, fmt.Sprintf("%d publish retries", ri.PublishRetr))
	row("distinct references", r.DistinctRefs, "")
	row("charges in the ledger", r.Charges, "")
	check("references charged more than once", r.DoubleCharged)
	check("conflicting requests charged", r.ConflictCharged)
	check("requests with no final result", r.NoResult)
	check("extra results (more than one per request)", r.ExtraResults)
	check("results that disagree with the ledger", r.Disagree)
	check("wrong outcomes", r.WrongOutcome)
	check("conflicts never sent (original unfinished)", r.HeldBack)
	check("requests left in the work queue (never acked)", r.LeftInQueue)
	check("declined references tried again at Dintero", r.RetriedDeclines)
	check("charged references answered failed", r.ChargedFailed)
	printSessions(row, check, r)
	printTokens(row, check, r)
	check("unexpected process exits", len(ri.Exits))
	row("results succeeded / declined / failed / rejected",
		fmt.Sprintf("%d / %d / %d / %d", r.Outcomes[messages.OutcomeSucceeded], r.Outcomes[messages.OutcomeDeclined], r.Outcomes[messages.OutcomeFailed], r.Outcomes[messages.OutcomeRejected]), "")
	row("non-final events unknown / needs_review / retry_scheduled",
		fmt.Sprintf("%d / %d / %d", r.Interim[messages.OutcomeUnknown], r.Interim[messages.OutcomeNeedsReview], r.Interim[messages.OutcomeRetryScheduled]), "")
	row("declines", r.Declines, "")
	row("conflicts rejected", r.Conflicts, "")
	row("results marked duplicate", r.DuplicateFlag, "")
	row("gave up (failed)", r.GaveUp, "")
	row("dead letters", r.DeadLetters, "")
	if f := ri.Faults; f != nil {
		row("faults: worker SIGKILLs", f.Kills, fmt.Sprintf("%d kill errors", f.KillErrors))
		row("faults: redis / nats restarts", fmt.Sprintf("%d / %d", f.RedisRestarts, f.NATSRestarts), strings.Join(f.Errors, "; "))
	}
	if c := ri.Counters; c != nil {
		row("sandbox: pay calls / 5xx / 429 / hung", fmt.Sprintf("%d / %d / %d / %d", c.PayRequests, c.FaultErrors, c.FaultRateLimits, c.FaultTimeoutsAfterCharge), "")
		row("sandbox: duplicates refused / lookups", fmt.Sprintf("%d / %d", c.DuplicatesRefused, c.TransactionLists), "")
		row("sandbox: sessions created / cancelled / looked up", fmt.Sprintf("%d / %d / %d", c.SessionsCreated, c.SessionsCancelled, c.SessionLists), "")
	}
	printLoss(row, r, ri.Loss)
	printOutage(row, ri.Outage, ri.Counters)
	if n := len(ri.Latencies); n > 0 {
		row("publish to result p50 / p99 / max", fmt.Sprintf("%v / %v / %v",
			percentile(ri.Latencies, 50).Round(time.Millisecond), percentile(ri.Latencies, 99).Round(time.Millisecond), ri.Latencies[n-1].Round(time.Millisecond)), "")
	}
	row("load time", ri.LoadTime.Round(time.Millisecond), "")
	row("wall time", ri.Wall.Round(time.Millisecond), "first publish to last result")
	_ = tw.Flush()
	if len(ri.Slowest) > 0 {
		fmt.Fprintln(w, "slowest requests (publish to result):")
		for _, s := range ri.Slowest {
			fmt.Fprintln(w, "  "+s)
		}
	}
	for _, e := range ri.Exits {
		fmt.Fprintln(w, "  exit:", e)
	}
	printFence(w, r, ri.Loss, maxProblems)
	printCancelledSessions(w, r, maxProblems)
	if len(r.Problems) > 0 {
		fmt.Fprintf(w, "\n%d problems", len(r.Problems))
		if len(r.Problems) > maxProblems {
			fmt.Fprintf(w, " (first %d)", maxProblems)
		}
		fmt.Fprintln(w, ":")
		for i, p := range r.Problems {
			if i == maxProblems {
				break
			}
			fmt.Fprintln(w, "  "+p)
		}
	}
}
