package ratelimit_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/ratelimit"
	"github.com/payworker/payworker/idempotency/redistest"
)

// Two limiters on one Redis (two pods) together stay under the rate, and
// payments cannot take the lookups' share.
func TestSharedRate(t *testing.T) {
	rdb := redistest.Start(t, redistest.Options{}).Client(t)
	newLimiter := func() *ratelimit.Limiter {
		l, err := ratelimit.New(rdb, ratelimit.Config{Rate: 50, Burst: 5, Share: 0.2, Key: "test"})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	pods := []*ratelimit.Limiter{newLimiter(), newLimiter()}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var pays, lookups atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := pods[i%2]
			op, n := dintero.OpPay, &pays
			if i%4 == 0 {
				op, n = dintero.OpListTransactions, &lookups
			}
			for l.Wait(ctx, op) == nil {
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	total := float64(pays.Load()+lookups.Load()) / secs
	if total > 50*1.25 || total < 50*0.6 {
		t.Errorf("%.0f calls/s through two limiters at 50/s (burst 5)", total)
	}
	// The lookups keep their 20 % (10/s) at least.
	if l := float64(lookups.Load()) / secs; l < 10*0.6 {
		t.Errorf("lookups %.0f/s, want their share of 10/s or more", l)
	}
}

// Payments alone use the whole rate: they borrow the idle share.
func TestPaymentsAloneUseTheRate(t *testing.T) {
	rdb := redistest.Start(t, redistest.Options{}).Client(t)
	l, err := ratelimit.New(rdb, ratelimit.Config{Rate: 50, Burst: 10, Share: 0.2, Key: "alone"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l.Wait(ctx, dintero.OpPay) == nil {
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if rate := float64(n.Load()) / time.Since(start).Seconds(); rate < 50*0.85 || rate > 50*1.25 {
		t.Errorf("payments alone: %.0f/s at a rate of 50/s", rate)
	}
}

func TestConfig(t *testing.T) {
	rdb := redistest.Start(t, redistest.Options{}).Client(t)
	for _, c := range []ratelimit.Config{{}, {Rate: 10, Share: 0.95}, {Rate: -1}} {
		if _, err := ratelimit.New(rdb, c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}
