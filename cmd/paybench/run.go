package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/payworker/payworker/cmd/internal/stack"
)

// run builds the binaries, runs every selected scenario c.Runs times
// (interleaved: a b c naive raw, a b c ...) and prints the report.
func run(ctx context.Context, c config, stdout, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: c.LogLevel}))
	binDir := c.BinDir
	if binDir == "" {
		// A folder of its own, so that a chaos run building into the
		// default one at the same time is not disturbed.
		cache, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf("no bin dir: %w", err)
		}
		binDir = filepath.Join(cache, "payworker", "bench-bin")
	}
	bin, err := stack.BuildBinaries(ctx, stack.BuildOptions{BinDir: binDir, Logger: log})
	if err != nil {
		return err
	}
	scs := scenarios(c)
	samples := map[string][]sample{}
	for run := 1; run <= c.Runs; run++ {
		for _, s := range scs {
			t := time.Now()
			smp, err := runScenario(ctx, c, bin, s, run, log)
			if err != nil {
				return err
			}
			samples[s.name] = append(samples[s.name], smp)
			log.Info("scenario done", "run", run, "scenario", s.name, "requests", smp.Requests,
				"charges_per_sec", int(smp.ChargesPerSec), "p50", smp.P50.Round(time.Millisecond), "p99", smp.P99.Round(time.Millisecond),
				"cpu_per_charge", smp.CPUPerCharge.Round(100*time.Nanosecond), "peak_rss_mib", smp.PeakRSS>>20,
				"redis_per_charge", fmt.Sprintf("%.2f", smp.RedisPerCharg), "nats_per_charge", fmt.Sprintf("%.2f", smp.WorkerNATS),
				"outcomes", smp.Outcomes, "load1", smp.Load1, "took", time.Since(t).Round(100*time.Millisecond))
		}
	}
	figs := make([]figures, 0, len(scs))
	for _, s := range scs {
		figs = append(figs, summarize(s, samples[s.name]))
	}
	r := newReport(c, figs)
	r.print(stdout)
	if c.JSONPath != "" {
		f, err := os.Create(c.JSONPath)
		if err != nil {
			return err
		}
		if err := r.writeJSON(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nfigures written to %s\n", c.JSONPath)
	}
	return nil
}
