package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/payworker/payworker/cmd/internal/stack"
	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/messages"
)

// sample is what one run of one scenario measured.
type sample struct {
	Scenario      string
	Requests      int
	InFlight      int
	Workers       int
	Wall          time.Duration // first publish to last result
	ChargesPerSec float64
	P50, P99      time.Duration
	CPUPerCharge  time.Duration // worker processes together; 0 when not measured
	PeakRSS       int64         // largest worker VmHWM, bytes; 0 when not measured
	RedisPerCharg float64       // redis round trips (commands clients sent) per charge
	ScriptsPerChg float64       // of which EVALSHA/EVAL
	RedisCmdsPerC float64       // total_commands_processed per charge, script commands included
	WorkerNATS    float64       // NATS messages in+out of the workers' connections per charge
	ServerNATS    float64       // nats-server in_msgs+out_msgs per charge
	Load1         float64       // 1-minute load average when the scenario started
	// CPU per charge of every process of the scenario, by role: worker
	// (all of them), nats-server, redis-server, sandbox, bench (this
	// program: the load generator and the result follower).
	ProcCPU  map[string]time.Duration
	Outcomes map[string]int
	// Succeeded per second of Wall: the goodput.
	Goodput float64
	// The sandbox's counters over the run: pay calls, and those answered
	// 429 by its rate limit.
	PayCalls, Pay429 int64
	// OverheadP50 and OverheadP99 are quantiles of the latency payworker
	// adds (result − publish − the sandbox's time for the charge); open
	// loop scenarios only.
	OverheadP50, OverheadP99 time.Duration
}

// scenario describes how to run one row: a, b, c, d-limiter,
// d-no-limiter, e, f1, f2, f3, g, naive or raw.
type scenario struct {
	name     string
	title    string
	latency  time.Duration
	inFlight int  // PAYWORKER_MAX_IN_FLIGHT of each worker; 0 for naive and raw
	workers  int  // payworker processes; 0 means 1
	requests int  // requests per run; 0 means config.Requests
	naive    bool // the naive worker instead of payworker
	raw      bool // no worker: consume and ack alone
	// rateLimit is the sandbox's rate limit (calls per second), rateBurst
	// its burst (0: the sandbox's default); 0 means none.
	rateLimit float64
	rateBurst int
	env       []string // worker settings of this row
	// arrivals > 0 publishes open loop, Poisson arrivals at this rate per
	// second, and measures the latency payworker adds; 0 publishes
	// everything at once.
	arrivals float64
}

// The fixed settings of scenarios d to g (issue 17).
const (
	dWorkers   = 3
	dRate      = 500.0 // the sandbox's limit, and payworker's
	dBurst     = 50
	dLatency   = 50 * time.Millisecond
	dRequests  = 20_000
	dInFlight  = 256
	eRequests  = 50_000
	fInFlight  = 256
	fRequests  = 50_000
	gInFlight  = 10_000
	gLatency   = 5 * time.Second
	gRequests  = 40_000
	gMinRounds = 2 // g's quick size still fills the 10,000 slots twice
)

// dintero rate setting of payworker's own limiter (the lead's work in
// progress; the no-limiter row leaves it unset, i.e. off).
const envDinteroRate = "PAYWORKER_DINTERO_RATE"

func scenarios(c config) []scenario {
	// d, e, f and g have sizes of their own; BENCH_REQUESTS scales them
	// (5,000 of the default 50,000 is a tenth), with floors that keep
	// them meaningful.
	scale := func(full, floor int) int {
		return max(floor, int(math.Round(float64(full)*float64(c.Requests)/defaultRequests)))
	}
	dN := scale(dRequests, 1_000)
	littleB := 0.0
	if c.Latency > 0 {
		littleB = float64(c.InFlightB) / c.Latency.Seconds()
	}
	all := []scenario{
		{name: "a", title: "a: sandbox 0ms", inFlight: c.InFlightA},
		{name: "b", title: fmt.Sprintf("b: sandbox %v", c.Latency), latency: c.Latency, inFlight: c.InFlightB},
		{name: "c", title: fmt.Sprintf("c: sandbox %v", c.Latency), latency: c.Latency, inFlight: c.InFlightC},
		{name: "d-limiter", title: fmt.Sprintf("d: 3 workers, limit %g/s, %v, limiter", dRate, dLatency), latency: dLatency,
			inFlight: dInFlight, workers: dWorkers, requests: dN, rateLimit: dRate, rateBurst: dBurst,
			env: []string{envDinteroRate + "=" + strconv.FormatFloat(dRate, 'f', -1, 64) + "/s"}},
		{name: "d-no-limiter", title: fmt.Sprintf("d: 3 workers, limit %g/s, %v, no limiter", dRate, dLatency), latency: dLatency,
			inFlight: dInFlight, workers: dWorkers, requests: dN, rateLimit: dRate, rateBurst: dBurst},
		{name: "e", title: fmt.Sprintf("e: open loop %.0f/s, %v", littleB/2, c.Latency), latency: c.Latency,
			inFlight: c.InFlightB, requests: scale(eRequests, 1_000), arrivals: littleB / 2},
		{name: "f1", title: fmt.Sprintf("f: 1 worker, %v", c.Latency), latency: c.Latency, inFlight: fInFlight, workers: 1,
			requests: scale(fRequests, 10_000)},
		{name: "f2", title: fmt.Sprintf("f: 2 workers, %v", c.Latency), latency: c.Latency, inFlight: fInFlight, workers: 2,
			requests: scale(fRequests, 10_000)},
		{name: "f3", title: fmt.Sprintf("f: 3 workers, %v", c.Latency), latency: c.Latency, inFlight: fInFlight, workers: 3,
			requests: scale(fRequests, 10_000)},
		{name: "g", title: fmt.Sprintf("g: sandbox %v", gLatency), latency: gLatency, inFlight: gInFlight,
			requests: scale(gRequests, gMinRounds*gInFlight)},
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
	switch {
	case s.naive:
		n = c.NaiveRequests
	case s.requests > 0:
		n = s.requests
	}
	dir, err := os.MkdirTemp("", "paybench-"+s.name+"-")
	if err != nil {
		return sample{}, err
	}
	o := clusterOptions{Dir: dir, Binaries: bin, Keep: c.Keep, Logger: log}
	if !s.raw {
		o.Sandbox = &stack.SandboxConfig{Latency: s.latency, RateLimit: s.rateLimit, RateBurst: s.rateBurst}
	}
	switch {
	case s.naive:
		o.Naive = true
	case !s.raw:
		o.Worker = true
		o.Workers = s.workers
		o.WorkerEnv = append([]string{
			"LOG_LEVEL=warn",
			"PAYWORKER_MAX_IN_FLIGHT=" + strconv.Itoa(s.inFlight),
			"PAYWORKER_PPROF=true",
		}, s.env...)
		o.WorkerEnv = append(o.WorkerEnv, c.WorkerEnv...)
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

	l, err := newLoad(fmt.Sprintf("bench%d%s", run, strings.ReplaceAll(s.name, "-", "")), n)
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
	smp.Workers = len(cl.workers)
	return smp, nil
}

// deadline is how long a load of n requests may take before the run is
// declared stuck.
func deadline(n int) time.Duration { return 2*time.Minute + time.Duration(n)*20*time.Millisecond }

// workerPIDs returns the process ids of the cluster's payworkers.
func (c *cluster) workerPIDs() ([]int, error) {
	out := make([]int, 0, len(c.workers))
	for _, w := range c.workers {
		pid, err := w.PID()
		if err != nil {
			return nil, err
		}
		out = append(out, pid)
	}
	return out, nil
}

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

	connName := "payworker"
	var workerPIDs []int
	if s.naive {
		connName = naiveConnName
	} else if workerPIDs, err = cl.workerPIDs(); err != nil {
		return sample{}, err
	}
	pids, err := cl.pids(workerPIDs)
	if err != nil {
		return sample{}, err
	}
	sb0, err := cl.sandboxCounters(ctx)
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
		go func() {
			err := fetchProfile(ctx, cl.worker.HealthURL(), profPath, profFor)
			// Still under load: the heap and the goroutines at their peak.
			for _, p := range []string{"heap", "goroutine"} {
				if herr := fetchURL(ctx, cl.worker.HealthURL()+"/debug/pprof/"+p, profPath+"."+p); herr != nil && err == nil {
					err = herr
				}
			}
			profDone <- err
		}()
	} else {
		profDone <- nil
	}

	lctx, cancel := context.WithTimeout(ctx, deadline(len(l.refs)))
	defer cancel()
	publish := publishAll
	if s.arrivals > 0 {
		publish = func(ctx context.Context, js jetstream.JetStream, subject string, l *load, t *tracker) error {
			return publishOpenLoop(ctx, js, subject, l, t, s.arrivals)
		}
	}
	if err := publish(lctx, js, messages.SubjectChargeRequest, l, t); err != nil {
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
	for _, pid := range workerPIDs {
		r, err := peakRSS(pid)
		if err != nil {
			return sample{}, err
		}
		rss = max(rss, r)
	}
	sb1, err := cl.sandboxCounters(ctx)
	if err != nil {
		return sample{}, err
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
	smp.Goodput = float64(t.outcomes[string(messages.OutcomeSucceeded)]) / smp.Wall.Seconds()
	smp.PayCalls, smp.Pay429 = sb1.PayRequests-sb0.PayRequests, sb1.RateLimitedPay-sb0.RateLimitedPay
	smp.ProcCPU = map[string]time.Duration{}
	for role := range pids {
		// worker-1, worker-2, ... count together as "worker".
		name, _, _ := strings.Cut(role, "-")
		smp.ProcCPU[name] += time.Duration(float64(cpu1[role]-cpu0[role]) / n)
	}
	if len(workerPIDs) > 0 {
		smp.CPUPerCharge = smp.ProcCPU["worker"]
	}
	if s.arrivals > 0 {
		over, err := overheads(ctx, cl, l, t)
		if err != nil {
			return sample{}, err
		}
		smp.OverheadP50, smp.OverheadP99 = percentile(over, 0.50), percentile(over, 0.99)
	}
	return smp, nil
}

// sandboxCounters reads the sandbox's counters.
func (c *cluster) sandboxCounters(ctx context.Context) (dinterotest.Counters, error) {
	var cs dinterotest.Counters
	if c.sandbox == nil {
		return cs, nil
	}
	err := stack.GetJSON(ctx, c.sandbox.AdminURL()+"counters", &cs)
	return cs, err
}

// overheads returns, sorted, the latency payworker added to each request
// that succeeded: from its publish to its result's arrival, less the time
// the sandbox spent on its charge (the ledger's sandbox_ms).
func overheads(ctx context.Context, cl *cluster, l *load, t *tracker) ([]time.Duration, error) {
	var ledger []dinterotest.Charge
	if err := stack.GetJSON(ctx, cl.sandbox.AdminURL()+"ledger", &ledger); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]time.Duration, 0, len(ledger))
	for _, ch := range ledger {
		i := l.index(ch.MerchantReference)
		if i < 0 || t.pubAt[i].IsZero() || t.doneAt[i].IsZero() || ch.SandboxMs <= 0 {
			continue
		}
		sb := time.Duration(ch.SandboxMs * float64(time.Millisecond))
		out = append(out, t.doneAt[i].Sub(t.pubAt[i])-sb)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no charge of the load in the sandbox's ledger")
	}
	slices.Sort(out)
	return out, nil
}

// pids returns the process ids by role: bench, nats, redis, sandbox and
// worker-1, worker-2, ... for the workers given.
func (c *cluster) pids(workers []int) (map[string]int, error) {
	m := map[string]int{"bench": os.Getpid()}
	for i, pid := range workers {
		m["worker-"+strconv.Itoa(i+1)] = pid
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
