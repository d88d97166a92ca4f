package main

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    time.Duration
		wantErr bool
	}{
		{"plain", "42 (payworker) S 1 42 42 0 -1 4194560 100 0 0 0 150 25 0 0 20 0 8 0 100 0 0", 1750 * time.Millisecond, false},
		{"name with spaces and parens", "42 (a) b (c) R 1 42 42 0 -1 0 0 0 0 0 7 3 0 0", 100 * time.Millisecond, false},
		{"no name", "42 payworker S", 0, true},
		{"short", "42 (x) S 1 2 3", 0, true},
		{"not numbers", "42 (x) S 1 42 42 0 -1 0 0 0 0 0 a b 0 0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.line))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseStatCPU = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseStatusKB(t *testing.T) {
	status := "Name:\tpayworker\nVmPeak:\t  900000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40000 kB\n"
	tests := []struct {
		key     string
		want    int64
		wantErr bool
	}{
		{"VmHWM", 50 << 20, false},
		{"VmRSS", 40000 << 10, false},
		{"VmSwap", 0, true},
		{"Name", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			got, err := parseStatusKB([]byte(status), tt.key)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseStatusKB(%s) = %d, %v; want %d, error %v", tt.key, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseRedisInfo(t *testing.T) {
	info := "# Stats\r\ntotal_connections_received:5\r\ntotal_commands_processed:130\r\n\r\n# Commandstats\r\n" +
		"cmdstat_evalsha:calls=20,usec=900,usec_per_call=45.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_eval:calls=2,usec=90,usec_per_call=45.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_hset:calls=40,usec=40,usec_per_call=1.00\r\n" +
		"cmdstat_time:calls=22,usec=10,usec_per_call=0.45\r\n" +
		"cmdstat_info:calls=3,usec=300,usec_per_call=100.00\r\n" +
		"cmdstat_setnx:calls=5,usec=5,usec_per_call=1.00\r\n" +
		"cmdstat_ping:calls=1,usec=1,usec_per_call=1.00\r\n"
	got, err := parseRedisInfo(info)
	if err != nil {
		t.Fatal(err)
	}
	want := redisCounts{Commands: 130, Scripts: 22, RoundTrips: 28} // evalsha, eval, setnx, ping
	if got != want {
		t.Errorf("parseRedisInfo = %+v, want %+v", got, want)
	}
	if _, err := parseRedisInfo("# Stats\r\n"); err == nil {
		t.Error("INFO without total_commands_processed accepted")
	}
	if _, err := parseRedisInfo("total_commands_processed:1\r\ncmdstat_get:usec=1\r\n"); err == nil {
		t.Error("commandstats without calls= accepted")
	}
}

func TestPercentileAndMedian(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		out := make([]time.Duration, len(n))
		for i, v := range n {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", ms(7), 0.99, 7 * time.Millisecond},
		{"p50 of 4", ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{"p99 of 100", ms(seq(100)...), 0.99, 99 * time.Millisecond},
		{"p100", ms(1, 2, 3), 1, 3 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
	for _, tt := range []struct {
		xs   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tt.xs); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.xs, got, tt.want)
		}
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func TestLoadIndexAndResultID(t *testing.T) {
	l, err := newLoad("bench1a", 3)
	if err != nil {
		t.Fatal(err)
	}
	for i, ref := range l.refs {
		if got := l.index(ref); got != i {
			t.Errorf("index(%q) = %d, want %d", ref, got, i)
		}
	}
	for _, ref := range []string{"bench1b-0000001", "bench1a-0000003", "bench1a-x", "other"} {
		if got := l.index(ref); got != -1 {
			t.Errorf("index(%q) = %d, want -1", ref, got)
		}
	}
	ref, outcome, ok := splitResultID("a:b-1:succeeded:42")
	if !ok || ref != "a:b-1" || outcome != "succeeded" {
		t.Errorf("splitResultID = %q, %q, %v", ref, outcome, ok)
	}
	if _, _, ok := splitResultID("nocolon"); ok {
		t.Error("splitResultID accepted an id without colons")
	}
}

func TestReportTargets(t *testing.T) {
	c, err := parseConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	figs := []figures{
		{Name: "a", ChargesPerSec: 12000, CPUMicrosPerCharg: 70},
		{Name: "b", ChargesPerSec: 2500},
		{Name: "c", ChargesPerSec: 4000, PeakRSSMiB: 120},
		{Name: "naive", ChargesPerSec: 5},
		{Name: "raw", ChargesPerSec: 40000},
	}
	r := newReport(c, figs)
	want := map[string]bool{
		"a: charges/s": true, "a: worker CPU µs/charge": false, "b: share of Little's law": true,
		"b: × naive worker": true, "c: peak RSS MiB": true,
	}
	if len(r.Targets) != len(want) {
		t.Fatalf("%d targets, want %d", len(r.Targets), len(want))
	}
	for _, tg := range r.Targets {
		if met, ok := want[tg.Name]; !ok || met != tg.Met {
			t.Errorf("target %q met = %v, want %v (known: %v)", tg.Name, tg.Met, met, ok)
		}
	}
	if got := r.Ratios["b_over_naive"]; got != 500 {
		t.Errorf("b_over_naive = %v, want 500", got)
	}
	var out bytes.Buffer
	r.print(&out)
	for _, s := range []string{"charges/s", "MISSED", "b_over_littles_law", "2560.0"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, out.String())
		}
	}
	out.Reset()
	if err := r.writeJSON(&out); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Scenarios []map[string]any `json:"scenarios"`
	}
	if err := json.Unmarshal(out.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"name", "charges_per_sec", "p50_ms", "p99_ms", "cpu_us_per_charge", "peak_rss_mib"} {
		if _, ok := back.Scenarios[0][k]; !ok {
			t.Errorf("JSON scenario lacks %q", k)
		}
	}
}

func TestParseConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(config) bool
		wantErr bool
	}{
		{"defaults", nil, nil, func(c config) bool {
			return c.Requests == 50_000 && c.Runs == 5 && c.InFlightB == 512 && len(c.Only) == 0
		}, false},
		{"env", nil, map[string]string{"BENCH_REQUESTS": "5000", "BENCH_RUNS": "1", "BENCH_JSON": "x.json"},
			func(c config) bool { return c.Requests == 5000 && c.Runs == 1 && c.JSONPath == "x.json" }, false},
		{"flag wins", []string{"-n", "7"}, map[string]string{"BENCH_REQUESTS": "5000"}, func(c config) bool { return c.Requests == 7 }, false},
		{"only", []string{"-only", "a, raw"}, nil, func(c config) bool { return c.runs("a") && c.runs("raw") && !c.runs("b") }, false},
		{"only a scenario of rows", []string{"-only", "f"}, nil, func(c config) bool { return c.runs("f1") && c.runs("f3") && !c.runs("d-limiter") }, false},
		{"only one row", []string{"-only", "d-no-limiter"}, nil, func(c config) bool { return c.runs("d-no-limiter") && !c.runs("d-limiter") }, false},
		{"bad env", nil, map[string]string{"BENCH_REQUESTS": "many"}, nil, true},
		{"bad scenario", []string{"-only", "z"}, nil, nil, true},
		{"bad worker env", []string{"-worker-env", "NOEQUALS"}, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, env(tt.env), io.Discard)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && !tt.check(c) {
				t.Errorf("config %+v", c)
			}
		})
	}
}

func TestPoissonArrivals(t *testing.T) {
	const n, rate = 100_000, 1280.0
	at := poissonArrivals(n, rate)
	if at[0] != 0 {
		t.Errorf("first arrival at %v", at[0])
	}
	var sq float64
	for i := 1; i < n; i++ {
		gap := (at[i] - at[i-1]).Seconds()
		if gap < 0 {
			t.Fatalf("arrival %d before %d", i, i-1)
		}
		sq += gap * gap
	}
	mean := at[n-1].Seconds() / (n - 1)
	// Exponential gaps: mean 1/rate and standard deviation 1/rate.
	if want := 1 / rate; mean < 0.98*want || mean > 1.02*want {
		t.Errorf("mean gap %.6fs, want %.6fs", mean, want)
	}
	if sd := math.Sqrt(sq/(n-1) - mean*mean); sd < 0.95/rate || sd > 1.05/rate {
		t.Errorf("gap standard deviation %.6fs, want about %.6fs (not evenly spaced)", sd, 1/rate)
	}
}

func TestScenarioSelectionAndSizes(t *testing.T) {
	c, err := parseConfig([]string{"-only", "d,f2,g"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]scenario{}
	var names []string
	for _, s := range scenarios(c) {
		got[s.name] = s
		names = append(names, s.name)
	}
	if strings.Join(names, ",") != "d-limiter,d-no-limiter,f2,g" {
		t.Fatalf("scenarios %v", names)
	}
	d, nd := got["d-limiter"], got["d-no-limiter"]
	if d.workers != 3 || d.rateLimit != 500 || d.latency != 50*time.Millisecond || d.requests != 20_000 ||
		strings.Join(d.env, ",") != "PAYWORKER_DINTERO_RATE=500/s" || len(nd.env) != 0 || nd.rateLimit != 500 {
		t.Errorf("d rows %+v %+v", d, nd)
	}
	if g := got["g"]; g.inFlight != 10_000 || g.latency != 5*time.Second || g.requests != 40_000 {
		t.Errorf("g %+v", g)
	}
	// The quick size scales them, with floors.
	c, err = parseConfig(nil, func(k string) string { return map[string]string{"BENCH_REQUESTS": "5000"}[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int{}
	for _, s := range scenarios(c) {
		sizes[s.name] = s.requests
		if s.name == "e" && (s.arrivals != 1280 || s.inFlight != 512) {
			t.Errorf("e %+v", s)
		}
	}
	want := map[string]int{"d-limiter": 2000, "e": 5000, "f1": 10_000, "f3": 10_000, "g": 20_000, "a": 0}
	for name, n := range want {
		if sizes[name] != n {
			t.Errorf("%s: %d requests at BENCH_REQUESTS=5000, want %d", name, sizes[name], n)
		}
	}
}

func TestReportIssue17Targets(t *testing.T) {
	c, err := parseConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	figs := []figures{
		{Name: "d-limiter", Workers: 3, GoodputPerSec: 480, Pay429Share: 0.005, Failed: 0},
		{Name: "d-no-limiter", Workers: 3, GoodputPerSec: 180, Pay429Share: 0.68, Failed: 2},
		{Name: "e", OverheadP50ms: 1.5, OverheadP99ms: 12},
		{Name: "f1", Workers: 1, ChargesPerSec: 1000},
		{Name: "f2", Workers: 2, ChargesPerSec: 1950},
		{Name: "f3", Workers: 3, ChargesPerSec: 2700},
		{Name: "g", ChargesPerSec: 1950, PeakRSSMiB: 300},
	}
	r := newReport(c, figs)
	want := map[string]bool{
		"d: goodput, share of limit": true, "d: pay calls answered 429": true, "d: failed requests": true,
		"e: overhead p50 ms": true, "e: overhead p99 ms": false,
		"f2: × one worker (f1)": true, "f3: × one worker (f1)": false,
		"g: share of Little's law": true, "g: peak RSS MiB": false,
	}
	if len(r.Targets) != len(want) {
		t.Errorf("%d targets, want %d: %+v", len(r.Targets), len(want), r.Targets)
	}
	for _, tg := range r.Targets {
		if met, ok := want[tg.Name]; !ok || met != tg.Met {
			t.Errorf("target %q met = %v, want %v (known: %v)", tg.Name, tg.Met, met, ok)
		}
	}
	if r.Scenarios[4].ScaleRatio != 1.95 || r.Scenarios[5].ScaleRatio != 2.7 || r.Scenarios[3].ScaleRatio != 0 {
		t.Errorf("scale ratios %v %v %v", r.Scenarios[3].ScaleRatio, r.Scenarios[4].ScaleRatio, r.Scenarios[5].ScaleRatio)
	}
	var out bytes.Buffer
	if err := r.writeJSON(&out); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Scenarios []map[string]any `json:"scenarios"`
	}
	if err := json.Unmarshal(out.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if v := back.Scenarios[2]["overhead_p99_ms"]; v != 12.0 {
		t.Errorf("e overhead_p99_ms = %v", v)
	}
	if v := back.Scenarios[5]["scale_ratio"]; v != 2.7 {
		t.Errorf("f3 scale_ratio = %v", v)
	}
	if _, ok := back.Scenarios[3]["scale_ratio"]; ok {
		t.Error("f1 has a scale_ratio")
	}
	out.Reset()
	r.print(&out)
	for _, s := range []string{"rate limit, overhead and scale-out", "d_no_limiter", "MISSED", "f3_over_f1"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, out.String())
		}
	}
}
