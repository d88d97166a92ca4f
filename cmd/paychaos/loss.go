package main

// Faults that lose or freeze state instead of killing a process (issue 12,
// items 1 to 3): Redis losing every record (FLUSHALL), Redis failing over
// to a replica that missed the last seconds of writes, and a worker paused
// with SIGSTOP past its lease and resumed with SIGCONT. And what the audit
// makes of them: the pay calls Dintero's fence refused, each explained
// when the fault timeline explains it, and the declined references that
// were tried again.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/payworker/payworker/cmd/internal/stack"
	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
)

// lossConfig is the command line of the state-losing faults.
type lossConfig struct {
	FlushAt      float64       // FLUSHALL at this fraction of the load time; <0: never
	FailoverAt   float64       // fail Redis over at this fraction; <0: never
	FailoverLoss time.Duration // the writes of this long before the failover are lost
	PauseAt      fractions     // SIGSTOP a random worker at each of these fractions
	PauseFor     time.Duration // how long it stays stopped; 0: 1.5 × AckWait
}

func (c *lossConfig) flags(fs *flag.FlagSet) {
	c.PauseAt = fractions{0.15, 0.85}
	fs.Float64Var(&c.FlushAt, "flush-at", 0.25, "FLUSHALL Redis at this fraction of the load time (<0: never)")
	fs.Float64Var(&c.FailoverAt, "failover-at", 0.55, "fail Redis over (restart it without the last writes of its AOF) at this fraction of the load time (<0: never)")
	fs.DurationVar(&c.FailoverLoss, "failover-loses", 3*time.Second, "how many seconds of Redis writes the failover loses")
	fs.Var(&c.PauseAt, "pause-at", "SIGSTOP a random worker at these fractions of the load time, comma-separated (\"\": never)")
	fs.DurationVar(&c.PauseFor, "pause-for", 0, "how long a paused worker stays stopped before SIGCONT (0: 1.5 × -ack-wait, past its lease)")
}

func (c *lossConfig) validate() error {
	for _, f := range append([]float64{c.FlushAt, c.FailoverAt}, c.PauseAt...) {
		if f >= 1 {
			return fmt.Errorf("-flush-at, -failover-at and -pause-at are fractions of the load time, below 1")
		}
	}
	if c.FailoverLoss < 0 || c.PauseFor < 0 {
		return fmt.Errorf("-failover-loses and -pause-for must not be negative")
	}
	return nil
}

// fractions is a comma-separated list of fractions, as a flag.
type fractions []float64

func (f *fractions) String() string {
	parts := make([]string, len(*f))
	for i, x := range *f {
		parts[i] = strconv.FormatFloat(x, 'g', -1, 64)
	}
	return strings.Join(parts, ",")
}

func (f *fractions) Set(s string) error {
	*f = nil
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		x, err := strconv.ParseFloat(part, 64)
		if err != nil || x < 0 {
			return fmt.Errorf("want fractions such as 0.15,0.85, got %q", part)
		}
		*f = append(*f, x)
	}
	return nil
}

// lossPlan is lossConfig turned into times after the start of the load.
type lossPlan struct {
	FlushAt      time.Duration // <0: never
	FailoverAt   time.Duration // <0: never
	FailoverLoss time.Duration
	PauseAt      []time.Duration
	PauseFor     time.Duration
	Seed         int64
}

func (c config) lossPlan(loadDur time.Duration) lossPlan {
	at := func(frac float64) time.Duration {
		if frac < 0 {
			return -1
		}
		return time.Duration(frac * float64(loadDur))
	}
	lp := lossPlan{FlushAt: at(c.Loss.FlushAt), FailoverAt: at(c.Loss.FailoverAt), FailoverLoss: c.Loss.FailoverLoss,
		PauseFor: c.Loss.PauseFor, Seed: c.Seed}
	if lp.PauseFor == 0 {
		lp.PauseFor = c.AckWait * 3 / 2
	}
	for _, f := range c.Loss.PauseAt {
		lp.PauseAt = append(lp.PauseAt, at(f))
	}
	return lp
}

// Kinds of lossEvent.
const (
	lossFlush    = "flush"
	lossFailover = "failover"
	lossPause    = "pause"
)

// lossEvent is one injected fault.
type lossEvent struct {
	Kind   string
	At     time.Time // FLUSHALL, the failover's restart, SIGSTOP
	Until  time.Time // pause: SIGCONT
	Since  time.Time // failover: the writes after this were lost
	Worker string    // pause
	Note   string
}

func (e lossEvent) String() string {
	const t = "15:04:05.000"
	switch e.Kind {
	case lossFlush:
		return "FLUSHALL at " + e.At.Format(t)
	case lossFailover:
		return fmt.Sprintf("failover at %s losing the writes after %s%s", e.At.Format(t), e.Since.Format(t), e.Note)
	default:
		return fmt.Sprintf("%s paused from %s to %s%s", e.Worker, e.At.Format(t), e.Until.Format(t), e.Note)
	}
}

// lossLog records what injectLoss did. Its methods are safe for
// concurrent use.
type lossLog struct {
	mu     sync.Mutex
	Events []lossEvent
	Errors []string
	paused map[string]bool // workers stopped right now, by name
}

func (l *lossLog) add(e lossEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.Events = append(l.Events, e)
}

func (l *lossLog) errorf(log *slog.Logger, msg string, args ...any) {
	log.Error(msg, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.Errors = append(l.Errors, msg)
}

// isPaused reports whether w is stopped by a pause fault: the SIGKILL
// fault leaves it alone, so that it can be resumed.
func (l *lossLog) isPaused(w *stack.Worker) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.paused[w.Name()]
}

func (l *lossLog) setPaused(w *stack.Worker, on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.paused == nil {
		l.paused = map[string]bool{}
	}
	l.paused[w.Name()] = on
}

func (l *lossLog) count(kind string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.Events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// injectLoss runs the loss plan against st from start until ctx ends.
// Every paused worker is resumed before it returns.
func injectLoss(ctx context.Context, st *stack.Stack, lp lossPlan, start time.Time, ll *lossLog, log *slog.Logger) {
	var wg sync.WaitGroup
	at := func(d time.Duration, f func()) {
		if d < 0 {
			return
		}
		wg.Go(func() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(start.Add(d))):
			}
			f()
		})
	}
	at(lp.FlushAt, func() {
		fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		log.Info("fault: FLUSHALL")
		if err := st.Redis.FlushAll(fctx); err != nil {
			ll.errorf(log, "fault: FLUSHALL", "err", err)
			return
		}
		ll.add(lossEvent{Kind: lossFlush, At: time.Now()})
	})
	if lp.FailoverAt >= 0 {
		var mark stack.AOFMark
		var markErr error
		marked := make(chan struct{})
		at(max(0, lp.FailoverAt-lp.FailoverLoss), func() {
			defer close(marked)
			mark, markErr = st.Redis.MarkAOF()
		})
		at(lp.FailoverAt, func() {
			select {
			case <-marked:
			case <-ctx.Done():
				return
			}
			if markErr != nil {
				ll.errorf(log, "fault: mark the AOF for the failover", "err", markErr)
				return
			}
			log.Info("fault: Redis failover", "loses_writes_since", mark.At.Format("15:04:05.000"))
			rewritten, err := st.Redis.Failover(mark)
			if err != nil {
				ll.errorf(log, "fault: Redis failover", "err", err)
				return
			}
			e := lossEvent{Kind: lossFailover, At: time.Now(), Since: mark.At}
			if rewritten {
				e.Note = " (the AOF was rewritten since: everything since the rewrite lost)"
			}
			ll.add(e)
		})
	}
	rng := rand.New(rand.NewPCG(uint64(lp.Seed), 0x5715))
	var rngMu sync.Mutex
	for _, d := range lp.PauseAt {
		at(d, func() {
			rngMu.Lock()
			order := rng.Perm(len(st.Workers))
			rngMu.Unlock()
			for _, i := range order {
				w := st.Workers[i]
				if ll.isPaused(w) {
					continue
				}
				ll.setPaused(w, true)
				if err := w.Signal(syscall.SIGSTOP); err != nil {
					ll.setPaused(w, false)
					continue // not running (just killed): try another
				}
				e := lossEvent{Kind: lossPause, At: time.Now(), Worker: w.Name()}
				log.Info("fault: SIGSTOP", "worker", w.Name(), "for", lp.PauseFor)
				select {
				case <-time.After(lp.PauseFor): // the pause itself
				case <-ctx.Done():
				}
				if err := w.Signal(syscall.SIGCONT); err != nil {
					e.Note = " (gone before SIGCONT)"
				}
				e.Until = time.Now()
				ll.setPaused(w, false)
				log.Info("fault: SIGCONT", "worker", w.Name())
				ll.add(e)
				return
			}
			ll.errorf(log, "fault: no running worker to pause")
		})
	}
	wg.Wait()
}

// fenceRefusal is one pay call Dintero refused as a duplicate, and why it
// was sent.
type fenceRefusal struct {
	dinterotest.Refusal
	Why       string
	Explained string // the kind of the explaining fault, "" if none
}

// explainRefusals matches each refusal with the fault that explains it.
// window is how long a call may be on its way: after SIGCONT, or after a
// fault that lost the record of a charge in flight.
//   - A worker was paused while another one charged the reference, and the
//     refused call came within window of SIGCONT: the paused worker had
//     lost its claim and sent its pay call anyway.
//   - The reference was charged before a FLUSHALL (or within window after
//     it: a charge in flight) and refused after it: its record was lost, so
//     a later delivery for it looked new.
//   - The same for a failover, for charges after its cut (whose records it
//     lost).
func explainRefusals(refusals []dinterotest.Refusal, ledger []dinterotest.Charge, events []lossEvent, window time.Duration) []fenceRefusal {
	first := map[string]time.Time{}
	for _, c := range ledger {
		if t, ok := first[c.MerchantReference]; !ok || c.CreatedAt.Before(t) {
			first[c.MerchantReference] = c.CreatedAt
		}
	}
	const t = "15:04:05.000"
	out := make([]fenceRefusal, 0, len(refusals))
	for _, r := range refusals {
		fr := fenceRefusal{Refusal: r, Why: "unexplained"}
		charged, ok := first[r.MerchantReference]
		if !ok || !charged.Before(r.At) {
			fr.Why = "unexplained: no earlier charge of the reference in the ledger"
			out = append(out, fr)
			continue
		}
		for _, e := range events {
			switch e.Kind {
			case lossPause:
				if !r.At.Before(e.Until) && r.At.Sub(e.Until) <= window && charged.After(e.At) && charged.Before(e.Until.Add(window)) {
					fr.Why = fmt.Sprintf("%s; another worker charged at %s; refused %s after SIGCONT", e, charged.Format(t), r.At.Sub(e.Until).Round(time.Millisecond))
				}
			case lossFlush, lossFailover:
				if r.At.After(e.At) && charged.Before(e.At.Add(window)) && (e.Kind == lossFlush || charged.After(e.Since)) {
					inFlight := ""
					if charged.After(e.At) {
						inFlight = ", in flight during the fault"
					}
					fr.Why = fmt.Sprintf("record lost by the %s (charged at %s%s)", e, charged.Format(t), inFlight)
				}
			}
			if fr.Why != "unexplained" {
				fr.Explained = e.Kind
				break
			}
		}
		out = append(out, fr)
	}
	return out
}

// declinesRetried returns the references with another transaction after a
// declined one: a card tried again for a reference already declined. The
// dunning references (which ask for exactly that) are left out.
func declinesRetried(txs []dintero.Transaction, dunning map[string]bool) []string {
	byRef := map[string][]dintero.Transaction{}
	for _, tx := range txs {
		if dunning[tx.MerchantReference] {
			continue
		}
		byRef[tx.MerchantReference] = append(byRef[tx.MerchantReference], tx)
	}
	var out []string
	for ref, list := range byRef {
		sort.SliceStable(list, func(a, b int) bool { return list[a].CreatedAt.Before(list[b].CreatedAt) })
		for i := range list[:len(list)-1] {
			if dintero.Declined(list[i].Status) {
				out = append(out, ref)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// lossInput is what the loss audit reads besides auditInput.
type lossInput struct {
	Refusals     []dinterotest.Refusal
	Transactions []dintero.Transaction
	Events       []lossEvent
	// Window is how long a call may be on its way after SIGCONT or after a
	// fault that lost the record of a charge in flight (explainRefusals).
	Window time.Duration
	// OutageFrom and OutageUntil bound the Dintero outage, if any: its
	// answers were lost, so what Dintero said then reached nobody.
	OutageFrom, OutageUntil time.Time
	// BlockWrites are when the workers wrote a token block, by the
	// reference whose decline it was (their "card token blocked after"
	// log lines): later than Dintero's answer when that answer was lost
	// and the decline found by a lookup.
	BlockWrites map[string][]time.Time
}

// collectLoss reads the sandbox's refusals and transactions.
func collectLoss(ctx context.Context, sandboxAdmin, dir string, li *lossInput) error {
	if err := stack.GetJSON(ctx, sandboxAdmin+"refusals", &li.Refusals); err != nil {
		return err
	}
	if err := stack.GetJSON(ctx, sandboxAdmin+"transactions", &li.Transactions); err != nil {
		return err
	}
	var err error
	li.BlockWrites, err = readBlockWrites(dir)
	return err
}

// readBlockWrites reads, from the workers' logs in dir (JSON lines), when
// each token block was written, by the reference whose decline it was.
func readBlockWrites(dir string) (map[string][]time.Time, error) {
	files, err := filepath.Glob(filepath.Join(dir, "worker-*.log"))
	if err != nil {
		return nil, err
	}
	out := map[string][]time.Time{}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
		for sc.Scan() {
			line := sc.Bytes()
			if !bytes.Contains(line, []byte(`"card token blocked after`)) {
				continue
			}
			var l struct {
				Time time.Time `json:"time"`
				Ref  string    `json:"merchant_reference"`
			}
			if json.Unmarshal(line, &l) == nil && l.Ref != "" {
				out[l.Ref] = append(out[l.Ref], l.Time)
			}
		}
		err = sc.Err()
		_ = f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return out, nil
}

// auditLoss adds the loss audit to r: the declined references tried again
// (a violation) and the fence's refusals, explained.
func auditLoss(in auditInput, r *report) {
	li := in.Loss
	dunning := map[string]bool{}
	for _, m := range in.Plan.Msgs {
		if m.Dunning > 0 {
			dunning[m.Ref] = true
		}
	}
	for _, ref := range declinesRetried(li.Transactions, dunning) {
		r.RetriedDeclines++
		r.problem("declined reference tried again at Dintero: %s", ref)
	}
	// A declined transaction fences its reference as a charge does.
	tried := slices.Clone(in.Ledger)
	for _, tx := range li.Transactions {
		if dintero.Declined(tx.Status) {
			tried = append(tried, dinterotest.Charge{TransactionID: tx.ID, MerchantReference: tx.MerchantReference, CreatedAt: tx.CreatedAt})
		}
	}
	r.Fence = explainRefusals(li.Refusals, tried, li.Events, li.Window)
}

// printLoss writes the loss rows of the table.
func printLoss(row func(name string, v any, rule string), r *report, ll *lossLog) {
	if ll != nil {
		row("faults: FLUSHALL / failovers / workers paused", fmt.Sprintf("%d / %d / %d", ll.count(lossFlush), ll.count(lossFailover), ll.count(lossPause)),
			strings.Join(ll.Errors, "; "))
	}
	by := map[string]int{}
	for _, f := range r.Fence {
		by[f.Explained]++
	}
	row("pay calls refused by Dintero's fence", len(r.Fence), fmt.Sprintf("reported (not must-be-0): paused worker %d, lost record %d, unexplained %d",
		by[lossPause], by[lossFlush]+by[lossFailover], by[""]))
}

// printFence lists the refusals with their explanations and the faults.
func printFence(w io.Writer, r *report, ll *lossLog, maxLines int) {
	if ll != nil && len(ll.Events) > 0 {
		fmt.Fprintln(w, "state-losing faults:")
		for _, e := range ll.Events {
			fmt.Fprintln(w, "  "+e.String())
		}
	}
	if len(r.Fence) == 0 {
		return
	}
	fmt.Fprintf(w, "pay calls refused by Dintero's fence (%d):\n", len(r.Fence))
	for i, f := range r.Fence {
		if i == maxLines {
			fmt.Fprintf(w, "  ... %d more\n", len(r.Fence)-maxLines)
			break
		}
		fmt.Fprintf(w, "  %s at %s: %s\n", f.MerchantReference, f.At.Format("15:04:05.000"), f.Why)
	}
}
