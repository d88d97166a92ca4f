package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/payworker/payworker/cmd/internal/stack"
)

// config is the command line.
type config struct {
	Requests     int
	Seed         int64
	Rate         float64 // messages per second; 0: Requests/100, at least 10
	DupRate      float64
	ConflictRate float64
	DeclineRate  float64
	Sessions     float64 // session references, as a fraction of Requests (sessions.go)
	Workers      int

	KillEvery    time.Duration
	RedisAt      float64 // fraction of the load time; <0: no restart
	RedisDown    time.Duration
	NATSAt       float64
	NATSDown     time.Duration
	NATSKill     bool
	DrainTimeout time.Duration

	AckWait         time.Duration
	DinteroTimeout  time.Duration
	ResolveSchedule string
	Dunning         float64
	BlockedTokens   int
	BudgetTokens    int
	MaxDeliver      int
	MaxInFlight     int
	WorkerLogLevel  string

	Latency, Jitter    time.Duration
	ErrorRate          float64
	RateLimitRate      float64
	RetryAfter         time.Duration
	TimeoutChargeRate  float64
	HangLimit          time.Duration
	Dir, BinDir        string
	Keep               bool
	MaxProblems        int
	LogLevel           slog.Level
	ExtraWorkerEnvList string

	Loss    lossConfig    // FLUSHALL, failover, SIGSTOP (loss.go)
	Outage  outageConfig  // a long Dintero outage (outage.go)
	Cluster clusterConfig // -cluster and its flags, in cluster_config.go
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	c := config{Requests: 10_000}
	if v := getenv("CHAOS_REQUESTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return c, fmt.Errorf("CHAOS_REQUESTS: want a positive integer, got %q", v)
		}
		c.Requests = n
	}
	fs := flag.NewFlagSet("paychaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.Requests, "n", c.Requests, "distinct requests (references) to publish (env CHAOS_REQUESTS)")
	fs.Int64Var(&c.Seed, "seed", 1, "seed of the load generator and the fault schedule")
	fs.Float64Var(&c.Rate, "rate", 0, "messages published per second (0: n/100, at least 10)")
	fs.Float64Var(&c.DupRate, "dup-rate", 0.05, "fraction of requests published a second time, same body")
	fs.Float64Var(&c.ConflictRate, "conflict-rate", 0.01, "fraction of references reused with another amount")
	fs.Float64Var(&c.DeclineRate, "decline-rate", 0.02, "fraction of requests paying with a declining card")
	fs.Float64Var(&c.Dunning, "dunning", 0.02, "fraction of references asking for dunning (Payworker-Retry-Until), on cards declining softly once or twice before they pay")
	fs.IntVar(&c.BlockedTokens, "blocked-tokens", 3, "DO_NOT_RETRY tokens shared by 4 references each: only the first may reach Dintero")
	fs.IntVar(&c.BudgetTokens, "budget-tokens", 1, "insufficient-funds tokens shared by 13 references each: at most 10 may reach Dintero")
	fs.Float64Var(&c.Sessions, "sessions", 0.02, "customer-initiated session references, as a fraction of -n, each requested twice")
	fs.IntVar(&c.Workers, "workers", 3, "payworker processes")
	fs.DurationVar(&c.KillEvery, "kill-every", 2*time.Second, "SIGKILL a random worker this often during the load (0: never)")
	fs.Float64Var(&c.RedisAt, "redis-restart-at", 0.4, "restart redis-server at this fraction of the load time (<0: never)")
	fs.DurationVar(&c.RedisDown, "redis-down", 2*time.Second, "how long redis-server stays down")
	fs.Float64Var(&c.NATSAt, "nats-restart-at", 0.7, "restart nats-server at this fraction of the load time (<0: never)")
	fs.DurationVar(&c.NATSDown, "nats-down", 2*time.Second, "how long nats-server stays down")
	fs.BoolVar(&c.NATSKill, "nats-kill", false, "SIGKILL nats-server instead of shutting it down cleanly")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 5*time.Minute, "how long to wait for the last results after the load")
	fs.DurationVar(&c.AckWait, "ack-wait", 6*time.Second, "PAYWORKER_ACK_WAIT of the workers (also the claim lease)")
	fs.DurationVar(&c.DinteroTimeout, "dintero-timeout", 2*time.Second, "DINTERO_TIMEOUT of the workers")
	fs.StringVar(&c.ResolveSchedule, "resolve-schedule", "1s,2s,4s*8", "PAYWORKER_RESOLVE_SCHEDULE of the workers: the lookups of a parked charge, short so the run ends")
	fs.IntVar(&c.MaxDeliver, "max-deliver", 0, "PAYWORKER_MAX_DELIVER of the workers (0: the worker's default)")
	fs.IntVar(&c.MaxInFlight, "max-in-flight", 64, "PAYWORKER_MAX_IN_FLIGHT of the workers")
	fs.StringVar(&c.WorkerLogLevel, "worker-log-level", "info", "LOG_LEVEL of the workers")
	fs.DurationVar(&c.Latency, "latency", 100*time.Millisecond, "sandbox latency")
	fs.DurationVar(&c.Jitter, "latency-jitter", 200*time.Millisecond, "sandbox latency jitter")
	fs.Float64Var(&c.ErrorRate, "error-rate", 0.05, "sandbox fraction of 500/503 answers")
	fs.Float64Var(&c.RateLimitRate, "rate-limit-rate", 0.03, "sandbox fraction of 429 answers")
	fs.DurationVar(&c.RetryAfter, "retry-after", time.Second, "sandbox Retry-After of 429 answers")
	fs.Float64Var(&c.TimeoutChargeRate, "timeout-after-charge-rate", 0.02, "sandbox fraction of charges recorded but not answered")
	fs.DurationVar(&c.HangLimit, "hang-limit", 4*time.Second, "sandbox: longest hang of an unanswered charge")
	fs.StringVar(&c.Dir, "dir", "", "folder for data and logs (default: a new temporary folder)")
	fs.StringVar(&c.BinDir, "bin-dir", "", "where built binaries are cached (default: <user cache>/payworker/bin)")
	fs.BoolVar(&c.Keep, "keep", false, "keep the folder even when every check passes")
	fs.IntVar(&c.MaxProblems, "max-problems", 40, "problem details printed")
	fs.TextVar(&c.LogLevel, "log-level", slog.LevelInfo, "level of paychaos' own log (stderr and events.log)")
	fs.StringVar(&c.ExtraWorkerEnvList, "worker-env", "", "extra worker settings, KEY=VALUE,KEY=VALUE")
	c.Loss.flags(fs)
	c.Outage.flags(fs)
	c.Cluster.register(fs)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	switch {
	case c.Requests <= 0:
		return c, fmt.Errorf("-n must be positive")
	case c.Rate < 0:
		return c, fmt.Errorf("-rate must not be negative")
	case c.Workers <= 0:
		return c, fmt.Errorf("-workers must be positive")
	case c.DupRate < 0 || c.ConflictRate < 0 || c.DeclineRate < 0 || c.DupRate+c.ConflictRate > 1 || c.DeclineRate > 1:
		return c, fmt.Errorf("-dup-rate, -conflict-rate and -decline-rate must be fractions (dup + conflict at most 1)")
	case c.Dunning < 0 || c.Dunning > 1 || c.BlockedTokens < 0 || c.BudgetTokens < 0:
		return c, fmt.Errorf("-dunning must be a fraction, -blocked-tokens and -budget-tokens not negative")
	case c.Sessions < 0 || c.Sessions > 1:
		return c, fmt.Errorf("-sessions must be a fraction of -n")
	case c.RedisAt >= 1 || c.NATSAt >= 1:
		return c, fmt.Errorf("-redis-restart-at and -nats-restart-at are fractions of the load time, below 1")
	}
	if err := c.Loss.validate(); err != nil {
		return c, err
	}
	if err := c.Outage.validate(); err != nil {
		return c, err
	}
	if err := c.Cluster.validate(); err != nil {
		return c, err
	}
	if c.Rate == 0 {
		c.Rate = max(10, float64(c.Requests)/100)
	}
	return c, nil
}

// planParams returns the knobs of the load.
func (c config) planParams() planParams {
	return planParams{Seed: c.Seed, Requests: c.Requests, DupRate: c.DupRate, ConflictRate: c.ConflictRate, DeclineRate: c.DeclineRate,
		DunningRate: c.Dunning, BlockedTokens: c.BlockedTokens, BudgetTokens: c.BudgetTokens}
}

// sandboxConfig returns the sandbox's faults and settings.
func (c config) sandboxConfig() stack.SandboxConfig {
	return stack.SandboxConfig{
		Latency: c.Latency, LatencyJitter: c.Jitter,
		ErrorRate: c.ErrorRate, RateLimitRate: c.RateLimitRate, RetryAfter: c.RetryAfter,
		TimeoutAfterChargeRate: c.TimeoutChargeRate, HangLimit: c.HangLimit,
		Seed: c.Seed,
		// Soft declines ask to be retried soon, so dunning ends within the
		// run.
		RetryAfterDelay: time.Second,
	}
}

// workerEnv returns the settings every worker gets.
func (c config) workerEnv() []string {
	env := []string{
		"PAYWORKER_ACK_WAIT=" + c.AckWait.String(),
		"DINTERO_TIMEOUT=" + c.DinteroTimeout.String(),
		"PAYWORKER_MAX_IN_FLIGHT=" + strconv.Itoa(c.MaxInFlight),
		// The worker wants its grace at least DINTERO_TIMEOUT+5s, so a call
		// in flight at SIGTERM can finish.
		"PAYWORKER_SHUTDOWN_GRACE=" + (c.DinteroTimeout + 5*time.Second).String(),
		"PAYWORKER_RESOLVE_SCHEDULE=" + c.ResolveSchedule,
		"PAYWORKER_DUNNING_SCHEDULE=" + dunningSchedule,
		"LOG_LEVEL=" + c.WorkerLogLevel,
	}
	if c.MaxDeliver > 0 {
		env = append(env, "PAYWORKER_MAX_DELIVER="+strconv.Itoa(c.MaxDeliver))
	}
	for _, kv := range strings.Split(c.ExtraWorkerEnvList, ",") {
		if kv = strings.TrimSpace(kv); kv != "" {
			env = append(env, kv)
		}
	}
	return env
}
