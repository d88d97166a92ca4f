package service

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/payworker/payworker/cmd/internal/redisconn"
	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/idempotency/redistest"
	"github.com/payworker/payworker/messages/publish"
)

// TestRunRefusesAnEvictingRedis: a Redis that may evict an idempotency
// record (maxmemory-policy other than noeviction) stops payworker with one
// line saying so, unless PAYWORKER_ALLOW_EVICTION=true.
func TestRunRefusesAnEvictingRedis(t *testing.T) {
	p := startParts(t, dinterotest.Faults{})
	evicting := redistest.Start(t, redistest.Options{Args: []string{"--maxmemory-policy", "allkeys-lru"}})
	env := p.env()
	env["REDIS_URL"] = evicting.URL()
	cfg, err := LoadConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = Run(ctx, cfg, NewLogger(os.Stderr, "warn", "json"))
	if !errors.Is(err, redisconn.ErrEvictingPolicy) || !strings.Contains(err.Error(), "allkeys-lru") {
		t.Fatalf("Run = %v, want the eviction-policy error naming allkeys-lru", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run ran until the test's deadline instead of stopping")
	}

	env["PAYWORKER_ALLOW_EVICTION"] = "true"
	if cfg, err = LoadConfig(nil, func(k string) string { return env[k] }, io.Discard); err != nil {
		t.Fatal(err)
	}
	runFor(t, cfg, 2*time.Second)
}

// runFor runs payworker for d and fails the test if it stops before.
func runFor(t *testing.T, cfg *Config, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, NewLogger(os.Stderr, "warn", "json")) }()
	select {
	case err := <-done:
		cancel()
		t.Fatalf("Run stopped early: %v", err)
	case <-time.After(d):
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v after cancel", err)
	}
}

// TestRunOnSentinel: REDIS_URL in Sentinel form, with the password from
// REDIS_PASSWORD_FILE; a charge is processed and its record is on the
// primary Sentinel names.
func TestRunOnSentinel(t *testing.T) {
	p := startParts(t, dinterotest.Faults{})
	sen := redistest.StartSentinel(t, redistest.SentinelOptions{Password: "s3cr3t-redis"})
	pwFile := t.TempDir() + "/redis-password"
	if err := os.WriteFile(pwFile, []byte("s3cr3t-redis\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := p.env()
	env["REDIS_URL"] = sen.URL()
	env["REDIS_PASSWORD_FILE"] = pwFile
	cfg, err := LoadConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, NewLogger(os.Stderr, "warn", "json")) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	body := `{"session":{"customer":{"tokens":{"payex.creditcard":{"payment_token":"sandbox-ok-1"}}},
"order":{"amount":100,"currency":"NOK","merchant_reference":"sentinel-1"}},
"payment":{"payment_product_type":"payex.creditcard","operation":"unscheduled_purchase"}}`
	if _, err := publish.ChargeBody(context.Background(), p.js, []byte(body), "sentinel-1"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "the charge at Dintero", func() bool { return len(p.sandbox.Ledger()) == 1 })
	rdb := sen.Client(t)
	waitUntil(t, 10*time.Second, "the charge's completed record on the Sentinel primary", func() bool {
		keys, err := rdb.Keys(context.Background(), "payworker:idem:*sentinel-1*").Result()
		if err != nil || len(keys) == 0 {
			return false
		}
		state, err := rdb.HGet(context.Background(), keys[0], "state").Result()
		return err == nil && state == "completed"
	})
}
