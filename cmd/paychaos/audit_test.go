package main

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/messages"
)

// auditFixture is a small clean run: A (good card) sent, duplicated and
// reused with another amount; B (declining card) sent once.
func auditFixture() auditInput {
	pl := plan{Refs: 2, Msgs: []planned{
		{Index: 0, Ref: "A", Kind: kindOriginal, MsgID: "A", Amount: 1000, Card: cardOK, Original: 0},
		{Index: 1, Ref: "B", Kind: kindOriginal, MsgID: "B", Amount: 2000, Card: cardDoNotRetry, Original: 1},
		{Index: 2, Ref: "A", Kind: kindDuplicate, MsgID: "A:duplicate", Amount: 1000, Card: cardOK, Original: 0},
		{Index: 3, Ref: "A", Kind: kindConflict, MsgID: "A:conflict", Amount: 1100, Card: cardOK, Original: 0},
	}}
	res := func(seq uint64, ref string, o messages.Outcome, tx string, amount int64, dup bool, code string) resultMsg {
		r := resultMsg{ReqSeq: seq, MsgID: messages.ResultMsgID(ref, o, seq), Result: messages.ChargeResult{
			MerchantReference: ref, Outcome: o, TransactionID: tx, Amount: amount, Duplicate: dup,
		}}
		if code != "" {
			r.Result.Error = &messages.ResultError{Code: code}
		}
		return r
	}
	return auditInput{
		Plan:      pl,
		Published: []pubRec{{Index: 0, Seq: 1}, {Index: 1, Seq: 2}, {Index: 2, Seq: 3}, {Index: 3, Seq: 4}},
		Results: []resultMsg{
			res(1, "A", messages.OutcomeSucceeded, "T1", 1000, false, ""),
			res(2, "B", messages.OutcomeDeclined, "TB", 2000, false, "DECLINED"),
			res(3, "A", messages.OutcomeSucceeded, "T1", 1000, true, ""),
			res(4, "A", messages.OutcomeRejected, "", 1100, false, messages.CodeConflict),
		},
		Ledger: []dinterotest.Charge{{TransactionID: "T1", MerchantReference: "A", Amount: 1000}},
	}
}

type auditCounts struct{ double, conflict, noResult, extra, disagree, wrong int }

func TestAudit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(in *auditInput)
		want   auditCounts
		detail string // a problem line must contain this
	}{
		{name: "clean", mutate: func(*auditInput) {}},
		{
			name: "charged twice",
			mutate: func(in *auditInput) {
				in.Ledger = append(in.Ledger, dinterotest.Charge{TransactionID: "T2", MerchantReference: "A", Amount: 1000})
			},
			want:   auditCounts{double: 1, disagree: 1},
			detail: "charged 2 times: A",
		},
		{
			name: "conflicting amount charged",
			mutate: func(in *auditInput) {
				in.Ledger[0].Amount = 1100
				in.Results[0].Result.Amount, in.Results[2].Result.Amount = 1100, 1100
			},
			want:   auditCounts{conflict: 1},
			detail: "conflicting amount charged: A 1100",
		},
		{
			name:   "result missing",
			mutate: func(in *auditInput) { in.Results = in.Results[:3] },
			want:   auditCounts{noResult: 1},
			detail: "no result: conflict A",
		},
		{
			name:   "two results for one request",
			mutate: func(in *auditInput) { in.Results = append(in.Results, in.Results[1]) },
			want:   auditCounts{extra: 1},
			detail: "2 results for request seq 2",
		},
		{
			name: "result for a request never published",
			mutate: func(in *auditInput) {
				r := in.Results[1]
				r.ReqSeq = 99
				in.Results = append(in.Results, r)
			},
			want:   auditCounts{extra: 1},
			detail: "answers no request",
		},
		{
			name:   "succeeded result names another transaction",
			mutate: func(in *auditInput) { in.Results[0].Result.TransactionID = "T9" },
			want:   auditCounts{disagree: 1},
			detail: "transaction T9",
		},
		{
			name:   "succeeded result with another amount",
			mutate: func(in *auditInput) { in.Results[2].Result.Amount = 999 },
			want:   auditCounts{disagree: 1},
			detail: "amount 999",
		},
		{
			name: "charge without a succeeded result",
			mutate: func(in *auditInput) {
				in.Ledger = append(in.Ledger, dinterotest.Charge{TransactionID: "TB", MerchantReference: "B", Amount: 2000})
			},
			want:   auditCounts{disagree: 1},
			detail: "ledger charge TB of B",
		},
		{
			name: "charge of an unknown reference",
			mutate: func(in *auditInput) {
				in.Ledger = append(in.Ledger, dinterotest.Charge{TransactionID: "TX", MerchantReference: "X", Amount: 5})
			},
			want:   auditCounts{disagree: 1},
			detail: "never published: X",
		},
		{
			name: "conflict answered as a duplicate",
			mutate: func(in *auditInput) {
				in.Results[3].Result = in.Results[2].Result
			},
			want:   auditCounts{wrong: 1},
			detail: "wrong outcome: conflict A",
		},
		{
			name:   "declining card succeeded",
			mutate: func(in *auditInput) { in.Results[1].Result.Outcome = messages.OutcomeSucceeded },
			want:   auditCounts{wrong: 1, disagree: 1},
			detail: "wrong outcome: original B",
		},
		{
			name: "non-final events before the final result",
			mutate: func(in *auditInput) {
				unknown := in.Results[0]
				unknown.Result.Outcome, unknown.Result.TransactionID = messages.OutcomeUnknown, ""
				in.Results = append([]resultMsg{unknown}, in.Results...)
			},
		},
		{
			name: "only a non-final event",
			mutate: func(in *auditInput) {
				in.Results[1].Result.Outcome = messages.OutcomeRetryScheduled
			},
			want:   auditCounts{noResult: 1},
			detail: "no result: original B",
		},
		{
			name:   "gave up is allowed",
			mutate: func(in *auditInput) { in.Results[1].Result.Outcome = messages.OutcomeFailed },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := auditFixture()
			tc.mutate(&in)
			r := audit(in)
			got := auditCounts{r.DoubleCharged, r.ConflictCharged, r.NoResult, r.ExtraResults, r.Disagree, r.WrongOutcome}
			if got != tc.want {
				t.Errorf("counts = %+v, want %+v; problems:\n%s", got, tc.want, strings.Join(r.Problems, "\n"))
			}
			if tc.want == (auditCounts{}) {
				if len(r.violations()) != 0 || len(r.Problems) != 0 {
					t.Errorf("violations %v, problems %v; want none", r.violations(), r.Problems)
				}
				return
			}
			if len(r.violations()) == 0 {
				t.Error("no violation reported")
			}
			if !strings.Contains(strings.Join(r.Problems, "\n"), tc.detail) {
				t.Errorf("no problem line contains %q:\n%s", tc.detail, strings.Join(r.Problems, "\n"))
			}
		})
	}
}

func TestAuditCountsAndTable(t *testing.T) {
	r := audit(auditFixture())
	if r.Published != 4 || r.DistinctRefs != 2 || r.Charges != 1 || r.Declines != 1 || r.Conflicts != 1 || r.DuplicateFlag != 1 {
		t.Errorf("report = %+v", r)
	}
	var buf bytes.Buffer
	printTable(&buf, r, runInfo{Seed: 3, Planned: 4, Rate: 10, Wall: time.Second, Faults: &faultLog{Kills: 2}}, 5)
	out := buf.String()
	for _, want := range []string{"references charged more than once", "requests with no final result", "dead letters", "wall time", "faults: worker SIGKILLs"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "VIOLATION") {
		t.Errorf("clean run printed a violation:\n%s", out)
	}
}

func TestAuditLeftInQueue(t *testing.T) {
	in := auditFixture()
	in.LeftInQueue = 2
	r := audit(in)
	if r.LeftInQueue != 2 || len(r.violations()) != 1 || r.violations()[0] != "requests left in the work queue" {
		t.Errorf("LeftInQueue %d, violations %v; want 2 and the work-queue violation", r.LeftInQueue, r.violations())
	}
}

func TestAuditChargedButFailed(t *testing.T) {
	in := auditFixture()
	in.Results[0].Result.Outcome, in.Results[0].Result.TransactionID = messages.OutcomeFailed, ""
	r := audit(in)
	if r.ChargedFailed != 1 || !slices.Contains(r.violations(), "charged references answered failed") {
		t.Errorf("ChargedFailed %d, violations %v; want 1 and the charged-failed violation", r.ChargedFailed, r.violations())
	}
	if r := audit(auditFixture()); r.ChargedFailed != 0 {
		t.Errorf("clean run: ChargedFailed %d", r.ChargedFailed)
	}
}

func TestOutageFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"-outage-at", "0.3", "-outage-for", "45s"}, true},
		{[]string{"-outage-at", "1.2"}, false},
		{[]string{"-outage-at", "0.3", "-outage-answer", "418"}, false},
		{[]string{"-outage-at", "0.3", "-outage-refuse-rate", "2"}, false},
	} {
		_, err := parseConfig(tc.args, func(string) string { return "" }, io.Discard)
		if (err == nil) != tc.ok {
			t.Errorf("parseConfig(%v) = %v, want ok %v", tc.args, err, tc.ok)
		}
	}
}
