package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/payworker/payworker/cmd/internal/stack"
	"github.com/payworker/payworker/messages"
)

// sample is what one run of one scenario measured.
type sample struct {
	Scenario      string
	Requests      int
	InFlight      int
	Wall          time.Duration // first publish to last result
	ChargesPerSec float64
	P50, P99      time.Duration
	CPUPerCharge  time.Duration // worker process; 0 when not measured
	PeakRSS       int64         // worker process VmHWM, bytes; 0 when not measured
	RedisPerCharg float64       // redis round trips (commands clients sent) per charge
	ScriptsPerChg float64       // of which EVALSHA/EVAL
	RedisCmdsPerC float64       // total_commands_processed per charge, script commands included
	WorkerNATS    float64       // NATS messages in+out of the worker's connection per charge
	ServerNATS    float64       // nats-server in_msgs+out_msgs per charge
	Load1         float64       // 1-minute load average when the scenario started
	// CPU per charge of every process of the scenario, by role: worker,
	// nats-server, redis-server, sandbox, bench (this program: the load
	// generator and the result follower).
	ProcCPU  map[string]time.Duration
	Outcomes map[string]int
}

// scenario describes how to run one of a, b, c, naive, raw.
type scenario struct {
	name     string
	title    string
	latency  time.Duration
	inFlight int  // PAYWORKER_MAX_IN_FLIGHT; 0 for naive and raw
	naive    bool // the naive worker instead of payworker
	raw      bool // no worker: consume and ack alone
}

func scenarios(c config) []scenario {
	all := []scenario{
		{name: "a", title: "a: sandbox 0ms", inFlight: c.InFlightA},
		{name: "b", title: fmt.Sprintf("b: sandbox %v", c.Latency), latency: c.Latency, inFlight: c.InFlightB},
		{name: "c", title: fmt.Sprintf("c: sandbox %v", c.Latency), latency: c.Latency, inFlight: c.InFlightC},
		{name: "naive", title: fmt.Sprintf("naive worker, sandbox %v", c.Latency), latency: c.Latency, naive: true},
		{name: "raw", title: "raw JetStream consume+ack", raw: true},
	}
	var out []scenario
	for _, s := range all {
		if c.runs(s.name) {
			out = append(out, s)
		}
	}
	return out
}

// runScenario starts a fresh cluster for s, runs its load and stops it.
// A failed scenario keeps its folder (logs and data) and names it.
func runScenario(ctx context.Context, c config, bin stack.Binaries, s scenario, run int, log *slog.Logger) (_ sample, err error) {
	n := c.Requests
	if s.naive {
		n = c.NaiveRequests
	}
	dir, err := os.MkdirTemp("", "paybench-"+s.name+"-")
	if err != nil {
		return sample{}, err
	}
	o := clusterOptions{Dir: dir, Binaries: bin, Keep: c.Keep, Logger: log}
	if !s.raw {
		o.Sandbox = &stack.SandboxConfig{Latency: s.latency}
	}
	switch {
	case s.naive:
		o.Naive = true
	case !s.raw:
		o.Worker = true
		o.WorkerEnv = append([]string{
			"LOG_LEVEL=warn",
			"PAYWORKER_MAX_IN_FLIGHT=" + strconv.Itoa(s.inFlight),
			"PAYWORKER_PPROF=true",
		}, c.WorkerEnv...)
	}
	load1 := loadAvg()
	cl, err := startCluster(ctx, o)
	if err != nil {
		return sample{}, fmt.Errorf("scenario %s: %w (logs in %s)", s.name, err, dir)
	}
	defer func() {
		if err != nil {
			cl.keep = true
		}
		cl.stop()
	}()

	l, err := newLoad(fmt.Sprintf("bench%d%s", run, s.name), n)
	if err != nil {
		return sample{}, err
	}
	var smp sample
	if s.raw {
		smp, err = measureRaw(ctx, cl, l)
	} else {
		var prof string
		if s.name == c.ProfileScenario && run == 1 {
			prof = c.CPUProfile
		}
		smp, err = measure(ctx, cl, l, s, prof, c.ProfileFor, log)
	}
	if err != nil {
		return smp, fmt.Errorf("scenario %s: %w (logs in %s)", s.name, err, dir)
	}
	if ex := cl.exits(); len(ex) > 0 {
		//nolint:errorlint // Err is nil after exit status 0, which %w would print as %!w(<nil>)
		return smp, fmt.Errorf("scenario %s: %s exited unexpectedly: %v (logs in %s)", s.name, ex[0].Name, ex[0].Err, dir)
	}
	smp.Scenario, smp.Requests, smp.InFlight, smp.Load1 = s.name, n, s.inFlight, load1
	return smp, nil
}

// deadline is how long a load of n requests may take before the run is
// declared stuck.
func deadline(n int) time.Duration { return 2*time.Minute + time.Duration(n)*20*time.Millisecond }

// measure runs l through the cluster's worker (payworker or the naive one).
func measure(ctx context.Context, cl *cluster, l *load, s scenario, profPath string, profFor time.Duration, log *slog.Logger) (sample, error) {
	nc, js, err := cl.connect(maxPendingPublishes)
	if err != nil {
		return sample{}, err
	}
	defer nc.Close()
	rdb := redis.NewClient(&redis.Options{Addr: cl.redis.Addr()})
	defer rdb.Close()

	t := newTracker(len(l.refs))
	sub, err := followResults(nc, l, t)
	if err != nil {
		return sample{}, err
	}
	defer func() { _ = sub.Unsubscribe() }()

	connName, pid := "payworker", 0
	if s.naive {
		connName = naiveConnName
	} else if pid, err = cl.worker.PID(); err != nil {
		return sample{}, err
	}
	pids, err := cl.pids(pid)
	if err != nil {
		return sample{}, err
	}
	cpu0, err := cpuTimes(pids)
	if err != nil {
		return sample{}, err
	}
	r0, err := readRedis(ctx, rdb)
	if err != nil {
		return sample{}, err
	}
	w0, err := cl.connMsgs(ctx, connName)
	if err != nil {
		return sample{}, err
	}
	s0, err := cl.serverMsgs(ctx)
	if err != nil {
		return sample{}, err
	}

	profDone := make(chan error, 1)
	if profPath != "" {
		go func() { profDone <- fetchProfile(ctx, cl.worker.HealthURL(), profPath, profFor) }()
	} else {
		profDone <- nil
	}

	lctx, cancel := context.WithTimeout(ctx, deadline(len(l.refs)))
	defer cancel()
	if err := publishAll(lctx, js, messages.SubjectChargeRequest, l, t); err != nil {
		return sample{}, fmt.Errorf("publish: %w", err)
	}
	if err := waitDone(lctx, t, log); err != nil {
		return sample{}, err
	}
	cpu1, err := cpuTimes(pids)
	if err != nil {
		return sample{}, err
	}
	var rss int64
	if pid != 0 {
		if rss, err = peakRSS(pid); err != nil {
			return sample{}, err
		}
	}
	r1, err := readRedis(ctx, rdb)
	if err != nil {
		return sample{}, err
	}
	w1, err := cl.connMsgs(ctx, connName)
	if err != nil {
		return sample{}, err
	}
	s1, err := cl.serverMsgs(ctx)
	if err != nil {
		return sample{}, err
	}
	if err := <-profDone; err != nil {
		log.Warn("CPU profile", "err", err)
	}
	if profPath != "" {
		if err := fetchURL(ctx, cl.worker.HealthURL()+"/debug/pprof/allocs", profPath+".allocs"); err != nil {
			log.Warn("allocation profile", "err", err)
		}
		if err := fetchURL(ctx, cl.worker.HealthURL()+"/metrics", profPath+".metrics"); err != nil {
			log.Warn("metrics", "err", err)
		}
	}

	first, last, lat := t.span()
	n := float64(len(l.refs))
	smp := sample{
		Wall:          last.Sub(first),
		P50:           percentile(lat, 0.50),
		P99:           percentile(lat, 0.99),
		PeakRSS:       rss,
		RedisPerCharg: float64(r1.RoundTrips-r0.RoundTrips) / n,
		ScriptsPerChg: float64(r1.Scripts-r0.Scripts) / n,
		RedisCmdsPerC: float64(r1.Commands-r0.Commands-1) / n, // -1: the first INFO
		WorkerNATS:    float64(w1-w0) / n,
		ServerNATS:    float64(s1-s0) / n,
		Outcomes:      t.outcomes,
	}
	smp.ChargesPerSec = n / smp.Wall.Seconds()
	smp.ProcCPU = map[string]time.Duration{}
	for role := range pids {
		smp.ProcCPU[role] = time.Duration(float64(cpu1[role]-cpu0[role]) / n)
	}
	if pid != 0 {
		smp.CPUPerCharge = smp.ProcCPU["worker"]
	}
	return smp, nil
}

// pids returns the process ids by role; worker is left out when 0.
func (c *cluster) pids(worker int) (map[string]int, error) {
	m := map[string]int{"bench": os.Getpid()}
	if worker != 0 {
		m["worker"] = worker
	}
	var err error
	if m["nats"], err = c.nats.PID(); err != nil {
		return nil, err
	}
	if m["redis"], err = c.redis.PID(); err != nil {
		return nil, err
	}
	if c.sandbox != nil {
		if m["sandbox"], err = c.sandbox.PID(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// cpuTimes reads the CPU time so far of every process.
func cpuTimes(pids map[string]int) (map[string]time.Duration, error) {
	out := make(map[string]time.Duration, len(pids))
	for role, pid := range pids {
		d, err := cpuTime(pid)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", role, err)
		}
		out[role] = d
	}
	return out, nil
}

// waitDone waits for every result, logging progress.
func waitDone(ctx context.Context, t *tracker, log *slog.Logger) error {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-t.done:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("%d of %d results arrived: %w", t.completed(), len(t.doneAt), context.Cause(ctx))
		case <-tick.C:
			log.Debug("waiting for results", "done", t.completed(), "of", len(t.doneAt))
		}
	}
}

// fetchProfile writes the worker's CPU profile over the next d to path.
func fetchProfile(ctx context.Context, base, path string, d time.Duration) error {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	return fetchURL(ctx, base+"/debug/pprof/profile?seconds="+strconv.Itoa(secs), path)
}

// fetchURL writes the body of GET url to path.
func fetchURL(ctx context.Context, url, path string) error {
	body, err := stack.Get(ctx, url)
	if err != nil {
		return err
	}
	defer body.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil && filepath.Dir(path) != "." {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// rawStream is the stream of the raw ceiling: like PAYMENT_REQUESTS (a work
// queue on disk), on a subject of its own.
const (
	rawStream  = "BENCH_RAW"
	rawSubject = "bench.raw"
)

// measureRaw publishes l to a work-queue stream and consumes and acks it
// with one pull consumer (nats.go Consume with its defaults), concurrently:
// what JetStream alone does on this machine.
func measureRaw(ctx context.Context, cl *cluster, l *load) (sample, error) {
	nc, js, err := cl.connect(maxPendingPublishes)
	if err != nil {
		return sample{}, err
	}
	defer nc.Close()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: rawStream, Subjects: []string{rawSubject}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Duplicates: 10 * time.Minute,
	}); err != nil {
		return sample{}, err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, rawStream, jetstream.ConsumerConfig{
		Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 4096,
	})
	if err != nil {
		return sample{}, err
	}
	// A second connection consumes, as a worker would.
	cnc, cjs, err := cl.connect(1)
	if err != nil {
		return sample{}, err
	}
	defer cnc.Close()
	ccons, err := cjs.Consumer(ctx, rawStream, cons.CachedInfo().Name)
	if err != nil {
		return sample{}, err
	}
	t := newTracker(len(l.refs))
	cc, err := ccons.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		t.finished(l.index(m.Headers().Get("Nats-Msg-Id")), "acked", time.Now())
	})
	if err != nil {
		return sample{}, err
	}
	defer cc.Stop()
	s0, err := cl.serverMsgs(ctx)
	if err != nil {
		return sample{}, err
	}
	lctx, cancel := context.WithTimeout(ctx, deadline(len(l.refs)))
	defer cancel()
	if err := publishAll(lctx, js, rawSubject, l, t); err != nil {
		return sample{}, fmt.Errorf("publish: %w", err)
	}
	select {
	case <-t.done:
	case <-lctx.Done():
		return sample{}, fmt.Errorf("%d of %d consumed: %w", t.completed(), len(l.refs), context.Cause(lctx))
	}
	if err := cnc.Flush(); err != nil { // the acks have reached the server
		return sample{}, err
	}
	s1, err := cl.serverMsgs(ctx)
	if err != nil {
		return sample{}, err
	}
	first, last, lat := t.span()
	n := float64(len(l.refs))
	smp := sample{
		Wall: last.Sub(first), P50: percentile(lat, 0.50), P99: percentile(lat, 0.99),
		ServerNATS: float64(s1-s0) / n, Outcomes: t.outcomes,
	}
	smp.ChargesPerSec = n / smp.Wall.Seconds()
	return smp, nil
}

// percentile returns the p-quantile (nearest rank) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
