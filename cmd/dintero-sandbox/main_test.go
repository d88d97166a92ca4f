package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero/dinterotest"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, c config)
		wantErr bool
	}{
		{name: "defaults", check: func(t *testing.T, c config) {
			if c.addr != "127.0.0.1:8099" || c.opts.AccountID != dinterotest.DefaultAccountID ||
				c.opts.ClientID != dinterotest.DefaultClientID || c.opts.ClientSecret != dinterotest.DefaultClientSecret ||
				c.opts.TokenTTL != time.Hour || c.opts.Faults != (dinterotest.Faults{RetryAfter: time.Second}) || c.logLevel != slog.LevelInfo {
				t.Errorf("%+v", c)
			}
		}},
		{name: "flags", args: []string{"-addr", ":0", "-account", "P87654321", "-client-id", "id", "-client-secret", "s",
			"-token-ttl", "5m", "-latency", "10ms", "-latency-jitter", "5ms", "-error-rate", "0.1", "-rate-limit-rate", "0.2",
			"-retry-after", "3s", "-timeout-after-charge-rate", "0.3", "-reset-rate", "0.4", "-seed", "9", "-log-level", "debug"},
			check: func(t *testing.T, c config) {
				want := dinterotest.Faults{Latency: 10 * time.Millisecond, LatencyJitter: 5 * time.Millisecond, ErrorRate: 0.1,
					RateLimitRate: 0.2, RetryAfter: 3 * time.Second, TimeoutAfterChargeRate: 0.3, ResetRate: 0.4}
				if c.addr != ":0" || c.opts.AccountID != "P87654321" || c.opts.ClientID != "id" || c.opts.ClientSecret != "s" ||
					c.opts.TokenTTL != 5*time.Minute || c.opts.Seed != 9 || c.opts.Faults != want || c.logLevel != slog.LevelDebug {
					t.Errorf("%+v", c)
				}
			}},
		{name: "env", env: map[string]string{"DINTERO_SANDBOX_ADDR": "127.0.0.1:1", "DINTERO_SANDBOX_ERROR_RATE": "0.5",
			"DINTERO_SANDBOX_TIMEOUT_AFTER_CHARGE_RATE": "1"},
			check: func(t *testing.T, c config) {
				if c.addr != "127.0.0.1:1" || c.opts.Faults.ErrorRate != 0.5 || c.opts.Faults.TimeoutAfterChargeRate != 1 {
					t.Errorf("%+v", c)
				}
			}},
		{name: "flag beats env", args: []string{"-error-rate", "0.25"}, env: map[string]string{"DINTERO_SANDBOX_ERROR_RATE": "0.5"},
			check: func(t *testing.T, c config) {
				if c.opts.Faults.ErrorRate != 0.25 {
					t.Errorf("error rate %v", c.opts.Faults.ErrorRate)
				}
			}},
		{name: "retry-after delay", args: []string{"-retry-after-delay", "5s"}, check: func(t *testing.T, c config) {
			if c.opts.RetryAfterDelay != 5*time.Second {
				t.Errorf("retry-after delay %v", c.opts.RetryAfterDelay)
			}
		}},
		{name: "retry-after delay default", check: func(t *testing.T, c config) {
			if c.opts.RetryAfterDelay != 24*time.Hour {
				t.Errorf("retry-after delay %v", c.opts.RetryAfterDelay)
			}
		}},
		{name: "zero retry-after delay", args: []string{"-retry-after-delay", "0s"}, wantErr: true},
		{name: "rate limit", args: []string{"-rate-limit", "500/s", "-rate-burst", "50"}, check: func(t *testing.T, c config) {
			if c.opts.Faults.RateLimit != 500 || c.opts.Faults.RateBurst != 50 {
				t.Errorf("%+v", c.opts.Faults)
			}
		}},
		{name: "rate limit from env", env: map[string]string{"DINTERO_SANDBOX_RATE_LIMIT": "12.5"}, check: func(t *testing.T, c config) {
			if c.opts.Faults.RateLimit != 12.5 || c.opts.Faults.RateBurst != 0 {
				t.Errorf("%+v", c.opts.Faults)
			}
		}},
		{name: "bad rate limit", args: []string{"-rate-limit", "fast"}, wantErr: true},
		{name: "negative rate limit", args: []string{"-rate-limit", "-1"}, wantErr: true},
		{name: "outage", args: []string{"-outage", "2m", "-outage-answer", "504", "-outage-refuse-rate", "0.5"}, check: func(t *testing.T, c config) {
			if c.opts.Outage != (dinterotest.Outage{Duration: 2 * time.Minute, Answer: "504", RefuseRate: 0.5}) {
				t.Errorf("%+v", c.opts.Outage)
			}
		}},
		{name: "outage default answer", env: map[string]string{"DINTERO_SANDBOX_OUTAGE": "30s"}, check: func(t *testing.T, c config) {
			if c.opts.Outage != (dinterotest.Outage{Duration: 30 * time.Second, Answer: dinterotest.OutageHang}) {
				t.Errorf("%+v", c.opts.Outage)
			}
		}},
		{name: "bad outage answer", args: []string{"-outage", "1m", "-outage-answer", "500"}, wantErr: true},
		{name: "bad outage refuse rate", args: []string{"-outage-refuse-rate", "2"}, wantErr: true},
		{name: "rate above 1", args: []string{"-reset-rate", "1.5"}, wantErr: true},
		{name: "bad env", env: map[string]string{"DINTERO_SANDBOX_LATENCY": "soon"}, wantErr: true},
		{name: "bad duration", args: []string{"-latency", "soon"}, wantErr: true},
		{name: "zero ttl", args: []string{"-token-ttl", "0s"}, wantErr: true},
		{name: "stray argument", args: []string{"serve"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, func(string) string { return "" }, pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var base string
	var banner strings.Builder
	for sc.Scan() {
		line := sc.Text()
		banner.WriteString(line + "\n")
		if b, ok := strings.CutPrefix(line, "dintero-sandbox listening on "); ok {
			base = b
		}
		if strings.HasPrefix(line, "faults:") {
			break
		}
	}
	for _, want := range []string{dinterotest.DefaultClientSecret, dinterotest.TokenExpiredCard, dinterotest.TokenSoftDecline,
		dinterotest.TokenDeclinedNoPolicy, dinterotest.BrandMastercard, dinterotest.AdminPrefix + "ledger"} {
		if !strings.Contains(banner.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, banner.String())
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	resp, err := http.Get(base + dinterotest.AdminPrefix + "counters")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("counters: %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
}

func TestCallbackSecretFlag(t *testing.T) {
	c, err := parseConfig([]string{"-callback-secret", "s3"}, func(string) string { return "" }, io.Discard)
	if err != nil || string(c.opts.CallbackSecret) != "s3" {
		t.Fatalf("flag: %q %v", c.opts.CallbackSecret, err)
	}
	c, err = parseConfig(nil, func(k string) string {
		if k == "DINTERO_SANDBOX_CALLBACK_SECRET" {
			return "from-env"
		}
		return ""
	}, io.Discard)
	if err != nil || string(c.opts.CallbackSecret) != "from-env" {
		t.Fatalf("env: %q %v", c.opts.CallbackSecret, err)
	}
}
