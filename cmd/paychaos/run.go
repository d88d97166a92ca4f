package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/cmd/internal/stack"
	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/messages"
)

// run does one chaos run. It reports whether every check passed; err is
// for a run that could not be done (build, start, interrupt).
func run(ctx context.Context, stopSignals func(), c config, stdout, stderr io.Writer) (ok bool, err error) {
	pl, err := newPlan(c.planParams())
	if err != nil {
		return false, err
	}
	dir := c.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "paychaos-"); err != nil {
			return false, err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	events, err := os.Create(filepath.Join(dir, "events.log"))
	if err != nil {
		return false, err
	}
	defer events.Close()
	log := slog.New(slog.NewMultiHandler(
		slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: c.LogLevel}),
		slog.NewJSONHandler(events, &slog.HandlerOptions{Level: slog.LevelDebug}),
	))
	defer context.AfterFunc(ctx, func() {
		stopSignals() // a second Ctrl-C ends the program; children die with it
		log.Warn("interrupted: stopping every process (Ctrl-C again to abandon)")
	})()

	loadDur := time.Duration(float64(len(pl.Msgs)) / c.Rate * float64(time.Second))
	log.Info("plan", "seed", c.Seed, "references", pl.Refs, "messages", len(pl.Msgs), "rate", c.Rate, "load_time", loadDur.Round(time.Second), "dir", dir)

	bin, err := stack.BuildBinaries(ctx, stack.BuildOptions{BinDir: c.BinDir, Logger: log})
	if err != nil {
		if c.Dir == "" {
			_ = os.RemoveAll(dir) // nothing in it but events.log
		}
		return false, err
	}
	st, err := stack.Start(ctx, stack.Options{
		Binaries:  bin,
		Dir:       dir,
		Workers:   c.Workers,
		Sandbox:   c.sandboxConfig(),
		WorkerEnv: c.workerEnv(),
		Logger:    log,
	})
	if err != nil {
		return false, fmt.Errorf("%w (logs in %s)", err, dir)
	}
	defer func() {
		if serr := st.Stop(); serr != nil {
			log.Warn("stop", "err", serr)
		}
		if ok && err == nil && !c.Keep {
			if rerr := st.RemoveDir(); rerr != nil {
				log.Warn("remove folder", "err", rerr)
			}
			return
		}
		fmt.Fprintf(stderr, "paychaos: data and logs kept in %s\n", dir)
	}()

	nc, js, err := st.NATS.Connect()
	if err != nil {
		return false, err
	}
	defer nc.Close()

	tr := newTracker()
	followCtx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	var followWG sync.WaitGroup
	followWG.Go(func() {
		if err := tr.follow(followCtx, js); err != nil {
			log.Error("following results", "err", err)
		}
	})
	defer followWG.Wait()
	defer stopFollow()

	// The load and the faults, side by side.
	pub := newPublisher(js, pl, tr, c.Rate, log)
	smsgs, err := newSessionPlan(c.Seed, int(float64(c.Requests)*c.Sessions+0.5), loadDur)
	if err != nil {
		return false, err
	}
	sl := &sessionLoad{js: js, msgs: smsgs, log: log}
	at := func(frac float64) time.Duration {
		if frac < 0 {
			return -1
		}
		return time.Duration(frac * float64(loadDur))
	}
	ll := &lossLog{}
	fp := faultPlan{
		KillEvery: c.KillEvery,
		RedisAt:   at(c.RedisAt), RedisDown: c.RedisDown,
		NATSAt: at(c.NATSAt), NATSDown: c.NATSDown, NATSKill: c.NATSKill,
		Seed: c.Seed, StopAfterDur: loadDur, Spare: ll.isPaused,
	}
	loadStart := time.Now()
	var fl *faultLog
	var faultWG sync.WaitGroup
	faultWG.Go(func() { fl = injectFaults(ctx, st, fp, log) })
	faultWG.Go(func() { injectLoss(ctx, st, c.lossPlan(loadDur), loadStart, ll, log) })
	var ol *outageLog
	faultWG.Go(func() { ol = startOutage(ctx, st.Sandbox.AdminURL(), c.Outage, at(c.Outage.At), loadStart, log) })
	var sessErr error
	faultWG.Go(func() { sessErr = sl.run(ctx, loadStart) })
	err = pub.runSchedule(ctx)
	loadTime := time.Since(loadStart)
	faultWG.Wait()
	if err == nil {
		err = sessErr
	}
	if err != nil {
		return false, fmt.Errorf("load: %w", err)
	}
	log.Info("load published", "messages", len(pub.published()), "took", loadTime.Round(time.Millisecond), "held_conflicts", pub.heldBack())

	// Drain: the held conflicts go out as their originals finish; then
	// wait for a result for every request.
	wall, drained := waitResults(ctx, pub, tr, c.DrainTimeout, loadStart, log, sl.seqs)
	if ctx.Err() != nil {
		return false, context.Cause(ctx)
	}
	if !drained {
		log.Error("gave up waiting for results", "after", c.DrainTimeout, "missing", tr.missing(append(pub.seqs(), sl.seqs()...)), "held_conflicts", pub.heldBack())
	}

	// Audit.
	actx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	in, counters, err := collect(actx, st, js, pl, pub)
	if err != nil {
		return false, fmt.Errorf("audit: %w", err)
	}
	in.Loss = lossInput{Events: slices.Clone(ll.Events), Window: 2*c.DinteroTimeout + 2*time.Second,
		OutageFrom: ol.From, OutageUntil: ol.Until}
	if err := collectLoss(actx, st.Sandbox.AdminURL(), dir, &in.Loss); err != nil {
		return false, fmt.Errorf("audit: %w", err)
	}
	in.Sessions.Published = sl.published()
	if err := collectSessions(actx, st, &in.Sessions); err != nil {
		return false, fmt.Errorf("audit: %w", err)
	}
	rep := audit(in)
	var exits []string
	for _, e := range st.Exits() {
		exits = append(exits, fmt.Sprintf("%s pid %d at %s: %v", e.Name, e.PID, e.At.Format("15:04:05.000"), e.Err))
	}
	retries := 0
	for _, p := range in.Published {
		retries += p.Retries
	}
	printTable(stdout, rep, runInfo{
		Seed: c.Seed, Planned: len(pl.Msgs), Rate: c.Rate, LoadTime: loadTime, Wall: wall,
		Faults: fl, Exits: exits, PublishRetr: retries, Counters: counters,
		Latencies: tr.latencies(in.Published), Slowest: describeSlow(pl, tr.slowest(in.Published, 5)),
		Loss: ll, Outage: ol,
	}, c.MaxProblems)
	ok = len(rep.violations()) == 0 && len(exits) == 0 && len(fl.Errors) == 0 && len(ll.Errors) == 0 && ol.Err == nil
	if ok {
		fmt.Fprintln(stdout, "\nPASS")
	} else {
		fmt.Fprintln(stdout, "\nFAIL")
	}
	return ok, nil
}

// waitResults waits until every published request (and every request of
// more, the session requests) has a result and no conflict is held back,
// or timeout passes. It returns the time from start to the last result and
// whether everything arrived.
func waitResults(ctx context.Context, pub *publisher, tr *tracker, timeout time.Duration, start time.Time, log *slog.Logger, more func() []uint64) (time.Duration, bool) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := pub.drainHeld(ctx); err != nil && ctx.Err() == nil {
			log.Error("publishing held conflicts", "err", err)
		}
	})
	defer wg.Wait()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastLog := time.Now()
	for {
		missing, held := tr.missing(append(pub.seqs(), more()...)), pub.heldBack()
		if missing == 0 && held == 0 {
			return time.Since(start), true
		}
		if time.Since(lastLog) >= 5*time.Second {
			log.Info("waiting for results", "missing", missing, "held_conflicts", held)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return time.Since(start), false
		case <-tick.C:
		}
	}
}

// collect reads the results stream, the dead letters and the sandbox's
// ledger and counters.
func collect(ctx context.Context, st *stack.Stack, js jetstream.JetStream, pl plan, pub *publisher) (auditInput, *dinterotest.Counters, error) {
	in := auditInput{Plan: pl, Published: pub.published(), HeldBack: pub.heldBack()}
	left, err := waitQueueEmpty(ctx, js, 30*time.Second)
	if err != nil {
		return in, nil, err
	}
	in.LeftInQueue = left
	msgs, err := readAll(ctx, js, messages.StreamResults)
	if err != nil {
		return in, nil, err
	}
	for _, m := range msgs {
		if isSessionResult(m.Subject()) {
			in.Sessions.Results = append(in.Sessions.Results, decodeSessionResult(m))
			continue
		}
		in.Results = append(in.Results, decodeResult(m))
	}
	dl, err := js.Stream(ctx, messages.StreamDeadLetters)
	if err != nil {
		return in, nil, err
	}
	info, err := dl.Info(ctx)
	if err != nil {
		return in, nil, err
	}
	in.DeadLetters = int(info.State.Msgs)
	if err := stack.GetJSON(ctx, st.Sandbox.AdminURL()+"ledger", &in.Ledger); err != nil {
		return in, nil, err
	}
	var counters dinterotest.Counters
	if err := stack.GetJSON(ctx, st.Sandbox.AdminURL()+"counters", &counters); err != nil {
		return in, nil, err
	}
	return in, &counters, nil
}

// waitQueueEmpty waits until the work queue holds no request (every one was
// acked) or timeout passes, and returns how many are left.
func waitQueueEmpty(ctx context.Context, js jetstream.JetStream, timeout time.Duration) (int, error) {
	s, err := js.Stream(ctx, messages.StreamRequests)
	if err != nil {
		return 0, err
	}
	deadline := time.Now().Add(timeout)
	for {
		info, err := s.Info(ctx)
		if err != nil {
			return 0, err
		}
		if info.State.Msgs == 0 || time.Now().After(deadline) {
			return int(info.State.Msgs), nil
		}
		select {
		case <-ctx.Done():
			return 0, context.Cause(ctx)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func describeSlow(pl plan, ss []slow) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		m := pl.Msgs[s.Pub.Index]
		out[i] = fmt.Sprintf("%v  %s %s (request seq %d, published %s)", s.Took.Round(time.Millisecond), m.Kind, m.Ref, s.Pub.Seq, s.Pub.At.Format("15:04:05.000"))
	}
	return out
}
