package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
)

// config is the command line and the BENCH_* environment.
type config struct {
	Requests      int           // BENCH_REQUESTS: requests per scenario run
	NaiveRequests int           // BENCH_NAIVE_REQUESTS: requests of the naive run
	Runs          int           // BENCH_RUNS: runs of every scenario
	JSONPath      string        // BENCH_JSON: write the figures here
	CPUProfile    string        // BENCH_CPUPROFILE: (first) worker's CPU profile of the first run of ProfileScenario
	ProfileFor    time.Duration // length of that profile
	// ProfileScenario is the scenario profiled (a, b or c).
	ProfileScenario string
	Latency         time.Duration // sandbox latency of b, c and naive
	InFlightA       int
	InFlightB       int
	InFlightC       int
	Only            []string // scenarios to run; empty: all
	Keep            bool
	BinDir          string
	WorkerEnv       []string // extra KEY=VALUE for the payworker under test
	LogLevel        slog.Level
}

// scenarioNames in the order they run; d and f stand for their rows
// (d-limiter and d-no-limiter; f1, f2 and f3), which -only also accepts
// one by one.
var scenarioNames = []string{"a", "b", "c", "d", "e", "f", "g", "naive", "raw"}

// rowGroups are the scenarios that run as more than one row.
var rowGroups = map[string][]string{
	"d": {"d-limiter", "d-no-limiter"},
	"f": {"f1", "f2", "f3"},
}

// defaultRequests is BENCH_REQUESTS's default; the sizes of d, e, f and g
// scale with BENCH_REQUESTS / defaultRequests (see scenarios).
const defaultRequests = 50_000

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	c := config{Requests: defaultRequests, NaiveRequests: 50, Runs: 5}
	envInt := func(name string, p *int) error {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return fmt.Errorf("%s: want a positive integer, got %q", name, v)
			}
			*p = n
		}
		return nil
	}
	for _, e := range []struct {
		name string
		p    *int
	}{{"BENCH_REQUESTS", &c.Requests}, {"BENCH_NAIVE_REQUESTS", &c.NaiveRequests}, {"BENCH_RUNS", &c.Runs}} {
		if err := envInt(e.name, e.p); err != nil {
			return c, err
		}
	}
	c.JSONPath = getenv("BENCH_JSON")
	c.CPUProfile = getenv("BENCH_CPUPROFILE")

	var only, workerEnv string
	fs := flag.NewFlagSet("paybench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.Requests, "n", c.Requests, "requests per scenario run (env BENCH_REQUESTS)")
	fs.IntVar(&c.NaiveRequests, "naive-n", c.NaiveRequests, "requests of the naive worker's run (env BENCH_NAIVE_REQUESTS)")
	fs.IntVar(&c.Runs, "runs", c.Runs, "runs of every scenario; the table shows medians (env BENCH_RUNS)")
	fs.StringVar(&c.JSONPath, "json", c.JSONPath, "write the figures as JSON to this file (env BENCH_JSON)")
	fs.StringVar(&c.CPUProfile, "cpuprofile", c.CPUProfile, "write the worker's CPU profile of the first run of -profile-scenario here (env BENCH_CPUPROFILE)")
	fs.DurationVar(&c.ProfileFor, "profile-for", 5*time.Second, "length of the -cpuprofile profile")
	fs.StringVar(&c.ProfileScenario, "profile-scenario", "a", "scenario (row) whose first run -cpuprofile profiles, e.g. a, b, g or f3; the heap and goroutine profiles at the profile's end, the allocation profile and /metrics at the run's end are written beside it")
	fs.DurationVar(&c.Latency, "latency", 200*time.Millisecond, "sandbox latency of scenarios b, c and naive")
	fs.IntVar(&c.InFlightA, "in-flight-a", 256, "PAYWORKER_MAX_IN_FLIGHT of scenario a")
	fs.IntVar(&c.InFlightB, "in-flight-b", 512, "PAYWORKER_MAX_IN_FLIGHT of scenario b")
	fs.IntVar(&c.InFlightC, "in-flight-c", 1000, "PAYWORKER_MAX_IN_FLIGHT of scenario c")
	fs.StringVar(&only, "only", "", "comma-separated scenarios to run (a,b,c,d,e,f,g,naive,raw, or single rows: d-limiter,d-no-limiter,f1,f2,f3); default all")
	fs.BoolVar(&c.Keep, "keep", false, "keep the data and log folders")
	fs.StringVar(&c.BinDir, "bin-dir", "", "where built binaries are cached (default: <user cache>/payworker/bench-bin)")
	fs.StringVar(&workerEnv, "worker-env", "", "extra settings of the payworker under test, KEY=VALUE,KEY=VALUE")
	fs.TextVar(&c.LogLevel, "log-level", slog.LevelInfo, "level of paybench's own log (stderr)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	switch {
	case c.Requests <= 0 || c.NaiveRequests <= 0 || c.Runs <= 0:
		return c, fmt.Errorf("-n, -naive-n and -runs must be positive")
	case c.InFlightA <= 0 || c.InFlightB <= 0 || c.InFlightC <= 0:
		return c, fmt.Errorf("-in-flight-* must be positive")
	case c.Latency < 0:
		return c, fmt.Errorf("-latency must not be negative")
	}
	for _, s := range strings.Split(only, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !slices.Contains(scenarioNames, s) && !isRow(s) {
			return c, fmt.Errorf("-only: unknown scenario %q (want %s)", s, strings.Join(scenarioNames, ","))
		}
		c.Only = append(c.Only, s)
	}
	for _, kv := range strings.Split(workerEnv, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		if !strings.Contains(kv, "=") {
			return c, fmt.Errorf("-worker-env: want KEY=VALUE, got %q", kv)
		}
		c.WorkerEnv = append(c.WorkerEnv, kv)
	}
	return c, nil
}

// isRow reports whether name is one row of a scenario of several rows.
func isRow(name string) bool {
	for _, rows := range rowGroups {
		if slices.Contains(rows, name) {
			return true
		}
	}
	return false
}

// runs reports whether scenario (or row) name is selected: named itself,
// or its scenario is.
func (c config) runs(name string) bool {
	if len(c.Only) == 0 || slices.Contains(c.Only, name) {
		return true
	}
	for group, rows := range rowGroups {
		if slices.Contains(rows, name) && slices.Contains(c.Only, group) {
			return true
		}
	}
	return false
}
