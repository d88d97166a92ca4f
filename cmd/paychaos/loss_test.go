package main

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
)

func TestExplainRefusals(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	events := []lossEvent{
		{Kind: lossPause, Worker: "worker-2", At: at(10), Until: at(19)},
		{Kind: lossFlush, At: at(30)},
		{Kind: lossFailover, At: at(60), Since: at(57)},
	}
	ledger := []dinterotest.Charge{
		{MerchantReference: "paused", CreatedAt: at(17)},
		{MerchantReference: "flushed", CreatedAt: at(25)},
		{MerchantReference: "failed-over", CreatedAt: at(58)},
		{MerchantReference: "kept-by-failover", CreatedAt: at(50)},
		{MerchantReference: "late", CreatedAt: at(40)},
		{MerchantReference: "in-flight", CreatedAt: at(61)},
	}
	refusals := []dinterotest.Refusal{
		{MerchantReference: "paused", At: at(20)},
		{MerchantReference: "flushed", At: at(35)},
		{MerchantReference: "failed-over", At: at(62)},
		{MerchantReference: "kept-by-failover", At: at(62)},
		{MerchantReference: "late", At: at(45)},
		{MerchantReference: "never-charged", At: at(45)},
		{MerchantReference: "in-flight", At: at(63)},
	}
	got := explainRefusals(refusals, ledger, events, 6*time.Second)
	want := map[string]string{"paused": lossPause, "flushed": lossFlush, "failed-over": lossFailover,
		"kept-by-failover": "", "late": "", "never-charged": "", "in-flight": lossFailover}
	for _, f := range got {
		if f.Explained != want[f.MerchantReference] {
			t.Errorf("%s: explained by %q (%s), want %q", f.MerchantReference, f.Explained, f.Why, want[f.MerchantReference])
		}
		if f.Explained == "" && !strings.HasPrefix(f.Why, "unexplained") {
			t.Errorf("%s: why %q", f.MerchantReference, f.Why)
		}
	}
	if len(got) != len(refusals) {
		t.Errorf("%d explanations for %d refusals", len(got), len(refusals))
	}
}

func TestDeclinesRetried(t *testing.T) {
	t0 := time.Now()
	tx := func(ref, status string, s int) dintero.Transaction {
		return dintero.Transaction{MerchantReference: ref, Status: status, CreatedAt: t0.Add(time.Duration(s) * time.Second)}
	}
	got := declinesRetried([]dintero.Transaction{
		tx("once", dintero.StatusDeclined, 1),
		tx("again", dintero.StatusFailed, 2), tx("again", dintero.StatusFailed, 3),
		tx("then-ok", dintero.StatusAuthorized, 5), tx("then-ok", dintero.StatusDeclined, 4),
		tx("ok", dintero.StatusAuthorized, 1),
		tx("dunning", dintero.StatusFailed, 1), tx("dunning", dintero.StatusAuthorized, 2),
	}, map[string]bool{"dunning": true})
	if !slices.Equal(got, []string{"again", "then-ok"}) {
		t.Errorf("declinesRetried = %v, want [again then-ok] (a dunning reference may be tried again)", got)
	}
}

func TestLossFlags(t *testing.T) {
	c, err := parseConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Loss.FlushAt != 0.25 || c.Loss.FailoverAt != 0.55 || !slices.Equal(c.Loss.PauseAt, fractions{0.15, 0.85}) {
		t.Errorf("defaults %+v", c.Loss)
	}
	lp := c.lossPlan(100 * time.Second)
	if lp.FlushAt != 25*time.Second || lp.PauseFor != 9*time.Second || len(lp.PauseAt) != 2 || lp.PauseAt[1] != 85*time.Second {
		t.Errorf("plan %+v", lp)
	}
	c, err = parseConfig([]string{"-pause-at", "", "-flush-at", "-1", "-failover-at", "0.5"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if lp := c.lossPlan(time.Minute); len(lp.PauseAt) != 0 || lp.FlushAt >= 0 || lp.FailoverAt != 30*time.Second {
		t.Errorf("plan %+v", lp)
	}
	for _, bad := range [][]string{{"-pause-at", "0.5,x"}, {"-flush-at", "1"}, {"-pause-at", "1.2"}} {
		if _, err := parseConfig(bad, func(string) string { return "" }, io.Discard); err == nil {
			t.Errorf("parseConfig(%q) succeeded", bad)
		}
	}
}

func TestAuditLossRows(t *testing.T) {
	in := auditFixture()
	in.Loss.Transactions = []dintero.Transaction{
		{MerchantReference: "B", Status: dintero.StatusDeclined, CreatedAt: time.Now()},
		{MerchantReference: "B", Status: dintero.StatusDeclined, CreatedAt: time.Now().Add(time.Second)},
	}
	in.Loss.Refusals = []dinterotest.Refusal{{MerchantReference: "A", At: time.Now()}}
	r := audit(in)
	if r.RetriedDeclines != 1 || !slices.Contains(r.violations(), "declined references tried again") {
		t.Errorf("RetriedDeclines %d, violations %v", r.RetriedDeclines, r.violations())
	}
	ll := &lossLog{}
	ll.add(lossEvent{Kind: lossFlush, At: time.Now()})
	var buf bytes.Buffer
	printTable(&buf, r, runInfo{Faults: &faultLog{}, Loss: ll}, 5)
	out := buf.String()
	for _, want := range []string{"declined references tried again at Dintero", "pay calls refused by Dintero's fence", "reported (not must-be-0)",
		"faults: FLUSHALL / failovers / workers paused", "1 / 0 / 0", "state-losing faults:", "A at "} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// A DO_NOT_RETRY whose answer was lost is blocked late, when a lookup
// finds it; a failover that loses that late write explains the next ask,
// one that came before it does not.
func TestAuditBlockedLateBlockLost(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	txs := []dintero.Transaction{
		{MerchantReference: "first", Status: "DECLINED", CreatedAt: at(10)},
		{MerchantReference: "second", Status: "DECLINED", CreatedAt: at(60)},
	}
	for _, tc := range []struct {
		name      string
		written   time.Time
		explained bool
	}{
		{"block written after the failover's cutoff", at(36), true},
		{"block written before it", at(11), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			li := lossInput{Window: 2 * time.Second,
				Events:      []lossEvent{{Kind: lossFailover, At: at(40), Since: at(35)}},
				BlockWrites: map[string][]time.Time{"first": {tc.written}}}
			var r report
			auditBlocked("blocked-0", txs, li, &r)
			if got := r.Tokens.Explained == 1 && r.Tokens.AskedAfterBlock == 0; got != tc.explained {
				t.Fatalf("explained %d, asked after block %d; want explained %v", r.Tokens.Explained, r.Tokens.AskedAfterBlock, tc.explained)
			}
		})
	}
}
