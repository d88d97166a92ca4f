package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Targets of issue 5 (a, b, c) and issue 17 (d, e, f, g).
const (
	targetAChargesPerSec = 10_000.0
	targetACPUMicros     = 60.0
	targetBLittle        = 0.95
	targetBOverNaive     = 400.0
	targetCPeakRSSMiB    = 150.0
	targetDGoodputShare  = 0.95 // of the rate limit
	targetD429Share      = 0.01 // of the pay calls
	targetEOverheadP50   = 2.0  // ms
	targetEOverheadP99   = 10.0 // ms
	targetF2Ratio        = 1.9
	targetF3Ratio        = 2.8
	targetGLittle        = 0.95
	targetGPeakRSSMiB    = 256.0
)

// figures are the medians of one scenario's runs, as written to JSON.
type figures struct {
	Name              string    `json:"name"`
	Title             string    `json:"title"`
	Requests          int       `json:"requests"`
	InFlight          int       `json:"in_flight,omitempty"`
	Runs              int       `json:"runs"`
	ChargesPerSec     float64   `json:"charges_per_sec"`
	P50ms             float64   `json:"p50_ms"`
	P99ms             float64   `json:"p99_ms"`
	CPUMicrosPerCharg float64   `json:"cpu_us_per_charge"`
	PeakRSSMiB        float64   `json:"peak_rss_mib"`
	RedisPerCharge    float64   `json:"redis_round_trips_per_charge"`
	ScriptsPerCharge  float64   `json:"redis_scripts_per_charge"`
	RedisCmds         float64   `json:"redis_commands_per_charge"`
	WorkerNATS        float64   `json:"worker_nats_msgs_per_charge"`
	ServerNATS        float64   `json:"server_nats_msgs_per_charge"`
	Load1             []float64 `json:"load1"`
	// CPUByProcess is the median CPU µs per charge of every process.
	CPUByProcess     map[string]float64 `json:"cpu_us_per_charge_by_process,omitempty"`
	AllChargesPerSec []float64          `json:"charges_per_sec_runs"`
	// Workers is how many payworker processes ran (d, f: more than one).
	Workers int `json:"workers,omitempty"`
	// GoodputPerSec is succeeded results per second.
	GoodputPerSec float64 `json:"goodput_per_sec"`
	// PayCallsPerCharge is the sandbox's pay calls per request: more than
	// 1 when calls were refused (429) and repeated.
	PayCallsPerCharge float64 `json:"pay_calls_per_charge,omitempty"`
	// Pay429Share is the share of the pay calls answered 429 by the
	// sandbox's rate limit.
	Pay429Share float64 `json:"pay_429_share"`
	// Failed is the most `failed` results of any run.
	Failed int `json:"failed"`
	// OverheadP50ms and OverheadP99ms (open loop, e) are the latency
	// payworker adds: result time − publish time − the sandbox's own time
	// for the request.
	OverheadP50ms float64 `json:"overhead_p50_ms,omitempty"`
	OverheadP99ms float64 `json:"overhead_p99_ms,omitempty"`
	// ScaleRatio (f2, f3) is the throughput over f1's, one worker's.
	ScaleRatio float64 `json:"scale_ratio,omitempty"`
}

type target struct {
	Name string  `json:"name"`
	Want string  `json:"want"`
	Got  float64 `json:"got"`
	Met  bool    `json:"met"`
}

// report is everything the benchmark prints, and its JSON.
type report struct {
	When      time.Time          `json:"when"`
	CPUs      int                `json:"cpus"`
	Requests  int                `json:"requests"`
	Runs      int                `json:"runs"`
	Scenarios []figures          `json:"scenarios"`
	Baselines map[string]float64 `json:"baselines"`
	Ratios    map[string]float64 `json:"ratios"`
	Targets   []target           `json:"targets"`
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianOf(ss []sample, f func(sample) float64) float64 {
	xs := make([]float64, len(ss))
	for i, s := range ss {
		xs[i] = f(s)
	}
	return median(xs)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// summarize turns the samples of one scenario into its median figures.
func summarize(s scenario, ss []sample) figures {
	f := figures{Name: s.name, Title: s.title, Runs: len(ss), InFlight: s.inFlight}
	if len(ss) == 0 {
		return f
	}
	f.Requests = ss[0].Requests
	f.ChargesPerSec = medianOf(ss, func(x sample) float64 { return x.ChargesPerSec })
	f.P50ms = medianOf(ss, func(x sample) float64 { return ms(x.P50) })
	f.P99ms = medianOf(ss, func(x sample) float64 { return ms(x.P99) })
	f.CPUMicrosPerCharg = medianOf(ss, func(x sample) float64 { return float64(x.CPUPerCharge) / float64(time.Microsecond) })
	f.PeakRSSMiB = medianOf(ss, func(x sample) float64 { return float64(x.PeakRSS) / (1 << 20) })
	f.RedisPerCharge = medianOf(ss, func(x sample) float64 { return x.RedisPerCharg })
	f.ScriptsPerCharge = medianOf(ss, func(x sample) float64 { return x.ScriptsPerChg })
	f.RedisCmds = medianOf(ss, func(x sample) float64 { return x.RedisCmdsPerC })
	f.WorkerNATS = medianOf(ss, func(x sample) float64 { return x.WorkerNATS })
	f.ServerNATS = medianOf(ss, func(x sample) float64 { return x.ServerNATS })
	for role := range ss[0].ProcCPU {
		if f.CPUByProcess == nil {
			f.CPUByProcess = map[string]float64{}
		}
		f.CPUByProcess[role] = medianOf(ss, func(x sample) float64 { return float64(x.ProcCPU[role]) / float64(time.Microsecond) })
	}
	for _, x := range ss {
		f.Load1 = append(f.Load1, x.Load1)
		f.AllChargesPerSec = append(f.AllChargesPerSec, math.Round(x.ChargesPerSec))
		f.Failed = max(f.Failed, x.Outcomes[failedOutcome])
	}
	f.Workers = ss[0].Workers
	f.GoodputPerSec = medianOf(ss, func(x sample) float64 { return x.Goodput })
	f.PayCallsPerCharge = medianOf(ss, func(x sample) float64 { return float64(x.PayCalls) / float64(max(x.Requests, 1)) })
	f.Pay429Share = medianOf(ss, func(x sample) float64 {
		if x.PayCalls == 0 {
			return 0
		}
		return float64(x.Pay429) / float64(x.PayCalls)
	})
	f.OverheadP50ms = medianOf(ss, func(x sample) float64 { return ms(x.OverheadP50) })
	f.OverheadP99ms = medianOf(ss, func(x sample) float64 { return ms(x.OverheadP99) })
	return f
}

// failedOutcome is the outcome whose count d's target wants at 0.
const failedOutcome = "failed"

// newReport computes the baselines, ratios and targets from the figures.
func newReport(c config, figs []figures) *report {
	r := &report{When: time.Now().UTC(), CPUs: runtime.NumCPU(), Requests: c.Requests, Runs: c.Runs,
		Scenarios: figs, Baselines: map[string]float64{}, Ratios: map[string]float64{}}
	by := map[string]figures{}
	for _, f := range figs {
		by[f.Name] = f
	}
	a, hasA := by["a"]
	b, hasB := by["b"]
	cc, hasC := by["c"]
	naive, hasNaive := by["naive"]
	raw, hasRaw := by["raw"]
	little := func(inFlight int) float64 {
		if c.Latency <= 0 {
			return 0
		}
		return float64(inFlight) / c.Latency.Seconds()
	}
	if hasB {
		r.Baselines["littles_law_b"] = little(c.InFlightB)
	}
	if hasC {
		r.Baselines["littles_law_c"] = little(c.InFlightC)
	}
	if hasNaive {
		r.Baselines["naive_charges_per_sec"] = naive.ChargesPerSec
	}
	if hasRaw {
		r.Baselines["raw_jetstream_per_sec"] = raw.ChargesPerSec
	}
	ratio := func(name string, x, y float64) {
		if y > 0 {
			r.Ratios[name] = x / y
		}
	}
	if hasA && hasRaw {
		ratio("a_over_raw", a.ChargesPerSec, raw.ChargesPerSec)
	}
	if hasB {
		ratio("b_over_littles_law", b.ChargesPerSec, little(c.InFlightB))
	}
	if hasB && hasNaive {
		ratio("b_over_naive", b.ChargesPerSec, naive.ChargesPerSec)
	}
	if hasC {
		ratio("c_over_littles_law", cc.ChargesPerSec, little(c.InFlightC))
	}
	if hasA {
		r.Targets = append(r.Targets,
			target{Name: "a: charges/s", Want: "≥ 10000", Got: a.ChargesPerSec, Met: a.ChargesPerSec >= targetAChargesPerSec},
			target{Name: "a: worker CPU µs/charge", Want: "≤ 60", Got: a.CPUMicrosPerCharg, Met: a.CPUMicrosPerCharg <= targetACPUMicros})
	}
	if v, ok := r.Ratios["b_over_littles_law"]; ok {
		r.Targets = append(r.Targets, target{Name: "b: share of Little's law", Want: "≥ 0.95", Got: v, Met: v >= targetBLittle})
	}
	if v, ok := r.Ratios["b_over_naive"]; ok {
		r.Targets = append(r.Targets, target{Name: "b: × naive worker", Want: "≥ 400", Got: v, Met: v >= targetBOverNaive})
	}
	if hasC {
		r.Targets = append(r.Targets, target{Name: "c: peak RSS MiB", Want: "≤ 150", Got: cc.PeakRSSMiB, Met: cc.PeakRSSMiB > 0 && cc.PeakRSSMiB <= targetCPeakRSSMiB})
	}
	r.issue17(c, by)
	return r
}

// issue17 adds the baselines, ratios and targets of d, e, f and g, and
// the scale ratios of the f rows.
func (r *report) issue17(c config, by map[string]figures) {
	if _, ok := by["d-limiter"]; ok {
		r.Baselines["d_rate_limit"] = dRate
	} else if _, ok := by["d-no-limiter"]; ok {
		r.Baselines["d_rate_limit"] = dRate
	}
	for _, name := range []string{"d-limiter", "d-no-limiter"} {
		if d, ok := by[name]; ok {
			r.Ratios[strings.ReplaceAll(name, "-", "_")+"_goodput_over_limit"] = d.GoodputPerSec / dRate
		}
	}
	if d, ok := by["d-limiter"]; ok {
		share := d.GoodputPerSec / dRate
		r.Targets = append(r.Targets,
			target{Name: "d: goodput, share of limit", Want: "≥ 0.95", Got: share, Met: share >= targetDGoodputShare},
			target{Name: "d: pay calls answered 429", Want: "≤ 0.01", Got: d.Pay429Share, Met: d.Pay429Share <= targetD429Share},
			target{Name: "d: failed requests", Want: "= 0", Got: float64(d.Failed), Met: d.Failed == 0})
	}
	if e, ok := by["e"]; ok {
		if c.Latency > 0 {
			r.Baselines["e_arrivals_per_sec"] = float64(c.InFlightB) / c.Latency.Seconds() / 2
		}
		r.Targets = append(r.Targets,
			target{Name: "e: overhead p50 ms", Want: "≤ 2", Got: e.OverheadP50ms, Met: e.OverheadP50ms > 0 && e.OverheadP50ms <= targetEOverheadP50},
			target{Name: "e: overhead p99 ms", Want: "≤ 10", Got: e.OverheadP99ms, Met: e.OverheadP99ms > 0 && e.OverheadP99ms <= targetEOverheadP99})
	}
	if f1, ok := by["f1"]; ok && f1.ChargesPerSec > 0 {
		for i := range r.Scenarios {
			f := &r.Scenarios[i]
			want, ok := map[string]float64{"f2": targetF2Ratio, "f3": targetF3Ratio}[f.Name]
			if !ok {
				continue
			}
			f.ScaleRatio = f.ChargesPerSec / f1.ChargesPerSec
			r.Ratios[f.Name+"_over_f1"] = f.ScaleRatio
			r.Targets = append(r.Targets, target{Name: f.Name + ": × one worker (f1)", Want: fmt.Sprintf("≥ %.1f", want),
				Got: f.ScaleRatio, Met: f.ScaleRatio >= want})
		}
	}
	for _, name := range []string{"f1", "f2", "f3"} {
		if f, ok := by[name]; ok && c.Latency > 0 {
			r.Baselines["littles_law_"+name] = float64(fInFlight*max(f.Workers, 1)) / c.Latency.Seconds()
		}
	}
	if g, ok := by["g"]; ok {
		little := float64(gInFlight) / gLatency.Seconds()
		r.Baselines["littles_law_g"] = little
		r.Ratios["g_over_littles_law"] = g.ChargesPerSec / little
		r.Targets = append(r.Targets,
			target{Name: "g: share of Little's law", Want: "≥ 0.95", Got: g.ChargesPerSec / little, Met: g.ChargesPerSec/little >= targetGLittle},
			target{Name: "g: peak RSS MiB", Want: "≤ 256", Got: g.PeakRSSMiB, Met: g.PeakRSSMiB > 0 && g.PeakRSSMiB <= targetGPeakRSSMiB})
	}
}

// print writes the table, the baselines, the ratios and the targets.
func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\npaybench: %d requests per run (naive: see its row), medians of %d run(s), %d CPUs\n\n", r.Requests, r.Runs, r.CPUs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tin flight\trequests\tcharges/s\tp50 ms\tp99 ms\tCPU µs/charge\tpeak RSS MiB\tredis RTs/charge\tNATS msgs/charge\tload1\t")
	dash := func(v float64, format string) string {
		if v == 0 {
			return "-"
		}
		return fmt.Sprintf(format, v)
	}
	for _, f := range r.Scenarios {
		loads := make([]string, len(f.Load1))
		for i, l := range f.Load1 {
			loads[i] = fmt.Sprintf("%.1f", l)
		}
		inFlight := "-"
		switch {
		case f.InFlight > 0 && f.Workers > 1:
			inFlight = fmt.Sprintf("%d×%d", f.Workers, f.InFlight)
		case f.InFlight > 0:
			inFlight = fmt.Sprint(f.InFlight)
		case f.Name == "naive":
			inFlight = "1"
		}
		nats := f.WorkerNATS
		if f.Name == "raw" {
			nats = f.ServerNATS
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.1f\t%.1f\t%s\t%s\t%s\t%s\t%s\t\n",
			f.Title, inFlight, f.Requests, f.ChargesPerSec, f.P50ms, f.P99ms,
			dash(f.CPUMicrosPerCharg, "%.1f"), dash(f.PeakRSSMiB, "%.1f"), dash(f.RedisPerCharge, "%.2f"),
			dash(nats, "%.2f"), strings.Join(loads, " "))
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "\nCPU µs per charge by process (medians; 2 CPUs = 200 µs per charge at 10,000/s for everything):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	roles := []string{"worker", "nats", "redis", "sandbox", "bench"}
	fmt.Fprintln(tw, "scenario\t"+strings.Join(roles, "\t")+"\ttotal\tcores busy\t")
	for _, f := range r.Scenarios {
		if f.CPUByProcess == nil || f.Name == "naive" { // 50 charges: the servers' idle work dominates
			continue
		}
		var total float64
		fmt.Fprintf(tw, "%s\t", f.Title)
		for _, role := range roles {
			v, ok := f.CPUByProcess[role]
			total += v
			if !ok {
				fmt.Fprint(tw, "-\t")
				continue
			}
			fmt.Fprintf(tw, "%.1f\t", v)
		}
		fmt.Fprintf(tw, "%.1f\t%.2f\t\n", total, total*f.ChargesPerSec/1e6)
	}
	_ = tw.Flush()
	r.printIssue17(w)
	fmt.Fprintln(w, "\n(redis RTs: commands the clients sent, from INFO commandstats without the commands scripts run inside;")
	fmt.Fprintln(w, " NATS msgs/charge: in+out of the worker's connection, from /connz; for raw: the whole server, from /varz.)")
	if len(r.Baselines) > 0 {
		fmt.Fprintln(w, "\nbaselines:")
		for _, k := range sortedKeys(r.Baselines) {
			fmt.Fprintf(w, "  %-34s %10.1f /s\n", k, r.Baselines[k])
		}
	}
	if len(r.Ratios) > 0 {
		fmt.Fprintln(w, "\nratios:")
		for _, k := range sortedKeys(r.Ratios) {
			fmt.Fprintf(w, "  %-34s %10.3f\n", k, r.Ratios[k])
		}
	}
	if len(r.Targets) > 0 {
		fmt.Fprintln(w, "\ntargets:")
		for _, t := range r.Targets {
			verdict := "MET"
			if !t.Met {
				verdict = "MISSED"
			}
			fmt.Fprintf(w, "  %-34s %10.3f  (want %s)  %s\n", t.Name, t.Got, t.Want, verdict)
		}
	}
}

// printIssue17 writes the figures of d, e, f and g that the main table
// has no columns for.
func (r *report) printIssue17(w io.Writer) {
	var rows []figures
	for _, f := range r.Scenarios {
		if strings.ContainsAny(f.Name[:1], "defg") {
			rows = append(rows, f)
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, "\nrate limit, overhead and scale-out (medians; failed: the most of any run):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tworkers\tgoodput/s\tpay calls/charge\t429 share\tfailed\toverhead p50 ms\toverhead p99 ms\tscale ratio\t")
	dash := func(v float64, format string) string {
		if v == 0 {
			return "-"
		}
		return fmt.Sprintf(format, v)
	}
	for _, f := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.3f\t%.4f\t%d\t%s\t%s\t%s\t\n", f.Title, max(f.Workers, 1), f.GoodputPerSec,
			f.PayCallsPerCharge, f.Pay429Share, f.Failed, dash(f.OverheadP50ms, "%.2f"), dash(f.OverheadP99ms, "%.2f"),
			dash(f.ScaleRatio, "%.2f"))
	}
	_ = tw.Flush()
}

func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func sortedKeys(m map[string]float64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
