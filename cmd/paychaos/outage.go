package main

// A long Dintero outage (issue 14): for longer than the whole delivery
// backoff, Dintero charges what reaches it but every answer is lost, and
// every lookup fails. The requests in flight can only be parked and
// resolved once Dintero answers again; none that Dintero charged may end
// failed.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/messages"
)

// outageConfig is the command line of the outage.
type outageConfig struct {
	At         float64       // start at this fraction of the load time; <0: never
	For        time.Duration // how long it lasts
	Answer     string        // hang, 502 or 504
	RefuseRate float64       // fraction of calls refused before anything is done
}

func (c *outageConfig) flags(fs *flag.FlagSet) {
	fs.Float64Var(&c.At, "outage-at", -1, "start a Dintero outage (charges made, answers lost, lookups failing) at this fraction of the load time (<0: never)")
	fs.DurationVar(&c.For, "outage-for", 60*time.Second, "how long the Dintero outage lasts")
	fs.StringVar(&c.Answer, "outage-answer", dinterotest.OutageHang, "what a call processed during the outage gets: hang, 502 or 504")
	fs.Float64Var(&c.RefuseRate, "outage-refuse-rate", 0.3, "fraction of calls during the outage refused (503) before anything is done: never charged")
}

func (c *outageConfig) validate() error {
	if c.At >= 1 {
		return fmt.Errorf("-outage-at is a fraction of the load time, below 1")
	}
	o := dinterotest.Outage{Duration: c.For, Answer: c.Answer, RefuseRate: c.RefuseRate}
	return o.Validate()
}

// outageLog is what startOutage did.
type outageLog struct {
	From, Until time.Time // zero: no outage
	Err         error
}

// startOutage starts the outage at its time after start, through the
// sandbox's admin endpoint, and returns when it is over (or ctx ends).
func startOutage(ctx context.Context, sandboxAdmin string, c outageConfig, at time.Duration, start time.Time, log *slog.Logger) *outageLog {
	ol := &outageLog{}
	if at < 0 {
		return ol
	}
	select {
	case <-ctx.Done():
		return ol
	case <-time.After(time.Until(start.Add(at))):
	}
	body, _ := json.Marshal(map[string]any{"duration": c.For.String(), "answer": c.Answer, "refuse_rate": c.RefuseRate})
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, sandboxAdmin+"outage", bytes.NewReader(body))
	if err != nil {
		ol.Err = err
		return ol
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ol.Err = fmt.Errorf("start the outage: %w", err)
		log.Error("fault: Dintero outage", "err", err)
		return ol
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		ol.Err = fmt.Errorf("start the outage: sandbox answered %s", resp.Status)
		log.Error("fault: Dintero outage", "err", ol.Err)
		return ol
	}
	ol.From = time.Now()
	ol.Until = ol.From.Add(c.For)
	log.Info("fault: Dintero outage", "for", c.For, "answer", c.Answer, "refuse_rate", c.RefuseRate)
	select {
	case <-ctx.Done():
	case <-time.After(c.For):
		log.Info("fault: Dintero outage over")
	}
	return ol
}

// chargedButFailed returns the references whose failed result was
// published while Dintero held a charge for them: the lie issue 14 forbids
// ("failed" means Dintero holds no charge for the reference). A charge made
// after the failed result, by another request the failure re-opened the
// reference for, is no lie (that request has its own result).
func chargedButFailed(in auditInput) []string {
	first := map[string]time.Time{}
	for _, c := range in.Ledger {
		if t, ok := first[c.MerchantReference]; !ok || c.CreatedAt.Before(t) {
			first[c.MerchantReference] = c.CreatedAt
		}
	}
	var out []string
	seen := map[string]bool{}
	for _, res := range in.Results {
		ref := res.Result.MerchantReference
		charged, ok := first[ref]
		if res.DecodeErr != nil || res.Result.Outcome != messages.OutcomeFailed || !ok || seen[ref] {
			continue
		}
		if res.At.IsZero() || charged.Before(res.At) {
			seen[ref] = true
			out = append(out, ref)
		}
	}
	return out
}

// printOutage writes the outage's rows.
func printOutage(row func(name string, v any, rule string), ol *outageLog, counters *dinterotest.Counters) {
	if ol == nil || ol.From.IsZero() {
		return
	}
	const t = "15:04:05.000"
	row("faults: Dintero outage", fmt.Sprintf("%s to %s", ol.From.Format(t), ol.Until.Format(t)), "charges made, answers lost, lookups failing")
	if counters != nil {
		row("sandbox: outage answers lost / refused / lookups failed",
			fmt.Sprintf("%d / %d / %d", counters.OutageAnswersLost, counters.OutageRefused, counters.OutageLookupsFailed), "")
	}
}
