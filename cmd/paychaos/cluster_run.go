package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/cmd/internal/stack"
	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/worker"
)

// runCluster is run on a clustered stack: three nats-server processes with
// R3 streams, Redis primary + replica + three Sentinels, the sandbox and the
// workers. Besides the worker SIGKILLs it SIGKILLs the node leading the
// requests stream, the Redis primary, the node leading the consumer and the
// node leading the results stream, one after the other, each coming back
// after a few seconds. The audit is the same as run's, plus the rows of
// the cluster faults and of the second charges Dintero's strict toggle
// refused.
func runCluster(ctx context.Context, stopSignals func(), c config, stdout, stderr io.Writer) (ok bool, err error) {
	cc := c.Cluster
	pl, err := newPlan(c.planParams())
	if err != nil {
		return false, err
	}
	dir := c.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "paychaos-cluster-"); err != nil {
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
		stopSignals()
		log.Warn("interrupted: stopping every process (Ctrl-C again to abandon)")
	})()

	loadDur := time.Duration(float64(len(pl.Msgs)) / c.Rate * float64(time.Second))
	log.Info("plan", "mode", "cluster", "seed", c.Seed, "references", pl.Refs, "messages", len(pl.Msgs), "rate", c.Rate, "load_time", loadDur.Round(time.Second), "dir", dir)

	bin, err := stack.BuildBinaries(ctx, stack.BuildOptions{BinDir: c.BinDir, Logger: log})
	if err != nil {
		if c.Dir == "" {
			_ = os.RemoveAll(dir)
		}
		return false, err
	}
	st, err := stack.StartCluster(ctx, stack.ClusterOptions{
		Binaries:    bin,
		Dir:         dir,
		NATSNodes:   cc.NATSNodes,
		Replicas:    cc.Replicas,
		Workers:     c.Workers,
		Sandbox:     c.sandboxConfig(),
		Setup:       worker.Config{MaxInFlight: c.MaxInFlight, AckWait: c.AckWait},
		SkipSetup:   cc.SkipSetup,
		RedisDirect: cc.RedisDirect,
		WorkerEnv:   c.workerEnv(),
		Logger:      log,
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

	pub := newPublisher(js, pl, tr, c.Rate, log)
	at := func(frac float64) time.Duration {
		if frac < 0 {
			return -1
		}
		return time.Duration(frac * float64(loadDur))
	}
	cfp := clusterFaultPlan{
		KillEvery:        c.KillEvery,
		RequestsLeaderAt: at(cc.RequestsLeaderAt),
		RedisPrimaryAt:   at(cc.RedisPrimaryAt),
		ConsumerLeaderAt: at(cc.ConsumerLeaderAt),
		ResultsLeaderAt:  at(cc.ResultsLeaderAt),
		NodeDown:         cc.NodeDown,
		RedisDown:        cc.RedisDown,
		Consumer:         "payworker",
		Seed:             c.Seed,
		StopAfterDur:     loadDur,
	}
	if cc.RedisDirect && cfp.RedisPrimaryAt >= 0 {
		log.Warn("-redis-direct: the Redis primary is not killed (the workers would be left on a replica)")
		cfp.RedisPrimaryAt = -1
	}
	loadStart := time.Now()
	stalls := watchStalls(ctx, js, tr, pub, cfp.Consumer, cc.StallAfter, log)
	var fl *clusterFaultLog
	var faultWG sync.WaitGroup
	faultWG.Go(func() { fl = injectClusterFaults(ctx, st, js, cfp, log) })
	err = pub.runSchedule(ctx)
	loadTime := time.Since(loadStart)
	faultWG.Wait()
	if err != nil {
		return false, fmt.Errorf("load: %w", err)
	}
	log.Info("load published", "messages", len(pub.published()), "took", loadTime.Round(time.Millisecond), "held_conflicts", pub.heldBack())

	wall, drained := waitResults(ctx, pub, tr, c.DrainTimeout, loadStart, log, func() []uint64 { return nil })
	stallLog := stalls()
	if ctx.Err() != nil {
		return false, context.Cause(ctx)
	}
	if !drained {
		log.Error("gave up waiting for results", "after", c.DrainTimeout, "missing", tr.missing(pub.seqs()), "held_conflicts", pub.heldBack())
	}

	actx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	in, counters, err := collectCluster(actx, st, js, pl, pub)
	if err != nil {
		return false, fmt.Errorf("audit: %w", err)
	}
	in.Loss.Window = 2*c.DinteroTimeout + 2*time.Second
	if err := collectLoss(actx, st.Sandbox.AdminURL(), dir, &in.Loss); err != nil {
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
	fl.mu.Lock()
	wf := &faultLog{Kills: fl.WorkerKills, KillErrors: fl.WorkerKillErrors, RedisRestarts: fl.RedisFailovers, NATSRestarts: len(fl.NodeKills), Errors: fl.Errors}
	fl.mu.Unlock()
	printTable(stdout, rep, runInfo{
		Seed: c.Seed, Planned: len(pl.Msgs), Rate: c.Rate, LoadTime: loadTime, Wall: wall,
		Faults: wf, Exits: exits, PublishRetr: retries, Counters: counters,
		Latencies: tr.latencies(in.Published), Slowest: describeSlow(pl, tr.slowest(in.Published, 5)),
	}, c.MaxProblems)
	printClusterRows(stdout, fl, counters, stallLog, cc)
	ok = len(rep.violations()) == 0 && len(exits) == 0 && len(wf.Errors) == 0
	if ok {
		fmt.Fprintln(stdout, "\nPASS")
	} else {
		fmt.Fprintln(stdout, "\nFAIL")
	}
	return ok, nil
}

// printClusterRows adds the clustered run's own rows below the audit table.
func printClusterRows(w io.Writer, fl *clusterFaultLog, counters *dinterotest.Counters, stalls []stall, cc clusterConfig) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	fmt.Fprintln(w, "\ncluster")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name string, v any, note string) { fmt.Fprintf(tw, "%s\t%v\t%s\n", name, v, note) }
	row("nats nodes / stream and consumer replicas", fmt.Sprintf("%d / %d", cc.NATSNodes, cc.Replicas), "")
	for _, k := range fl.NodeKills {
		row("nats SIGKILL: "+k.Role, k.Node, fmt.Sprintf("new leader %s after %v; down %v; healthy again after %v", k.NewLeader, k.Election.Round(time.Millisecond), k.Down.Round(time.Millisecond), k.Rejoin.Round(time.Millisecond)))
	}
	for _, f := range fl.Redis {
		row("redis SIGKILL: primary", f.Old, fmt.Sprintf("Sentinel promoted %s after %v; old primary back as its replica after %v", f.New, f.Failover.Round(time.Millisecond), f.Rejoin.Round(time.Millisecond)))
	}
	if counters != nil {
		row("second charges refused by Dintero (strict toggle)", counters.DuplicatesRefused, "the fence behind a lost Redis record; counted, not a violation")
	}
	row("stalls (no result for "+cc.StallAfter.String()+" while some were missing)", len(stalls), "")
	_ = tw.Flush()
	for _, s := range stalls {
		fmt.Fprintf(w, "  stall at %s: %d missing; consumer %s\n", s.At.Format("15:04:05.000"), s.Missing, s.Consumer)
	}
}

// collectCluster is collect for the clustered stack.
func collectCluster(ctx context.Context, st *stack.ClusterStack, js jetstream.JetStream, pl plan, pub *publisher) (auditInput, *dinterotest.Counters, error) {
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

// stall is a time when results stopped arriving while some were missing.
type stall struct {
	At       time.Time
	Missing  int
	Consumer string // the consumer's state then
}

// watchStalls watches the load and the drain: when no new result arrives
// for after while results are missing, it records the consumer's state
// (pending, waiting pulls, ack pending, leader) once per silence. The
// returned function stops the watch and returns what it saw.
func watchStalls(ctx context.Context, js jetstream.JetStream, tr *tracker, pub *publisher, consumer string, after time.Duration, log *slog.Logger) func() []stall {
	ctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	var out []stall
	var wg sync.WaitGroup
	wg.Go(func() {
		lastGot, lastChange := -1, time.Now()
		reported := false
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			seqs := pub.seqs()
			missing := tr.missing(seqs)
			if got := len(seqs) - missing; got != lastGot {
				lastGot, lastChange, reported = got, time.Now(), false
				continue
			}
			if missing == 0 || reported || time.Since(lastChange) < after {
				continue
			}
			reported = true
			s := stall{At: time.Now(), Missing: missing, Consumer: consumerState(ctx, js, consumer)}
			log.Warn("stall: no result for a while", "missing", missing, "silent_for", time.Since(lastChange).Round(time.Second), "consumer", s.Consumer)
			mu.Lock()
			out = append(out, s)
			mu.Unlock()
		}
	})
	return func() []stall {
		cancel()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return out
	}
}

func consumerState(ctx context.Context, js jetstream.JetStream, consumer string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cons, err := js.Consumer(ctx, messages.StreamRequests, consumer)
	if err != nil {
		return "info: " + err.Error()
	}
	ci := cons.CachedInfo()
	leader := ""
	if ci.Cluster != nil {
		leader = ci.Cluster.Leader
	}
	return fmt.Sprintf("pending %d, waiting pulls %d, ack pending %d, redelivered %d, leader %s", ci.NumPending, ci.NumWaiting, ci.NumAckPending, ci.NumRedelivered, leader)
}
