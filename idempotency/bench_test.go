package idempotency

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/payworker/payworker/idempotency/redistest"
)

var benchResult = []byte(`{"merchant_reference":"sub-42-2026-08","outcome":"succeeded","transaction_id":"T00000000.3YkJXSdSnUBXcmQSzn7uJj","amount":29900,"currency":"NOK"}`)

// BenchmarkClaimComplete measures the store's hot path against a real
// redis-server on loopback: one Claim and one Complete per operation, each a
// single EVALSHA round trip.
func BenchmarkClaimComplete(b *testing.B) {
	ctx := context.Background()
	srv := redistest.Start(b, redistest.Options{})
	s, err := New(srv.Client(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		ref := "bench-" + strconv.Itoa(i)
		c, err := s.Claim(ctx, ChargeKey(ref), "fingerprint", uint64(i))
		if err != nil || c.State != StateNew {
			b.Fatalf("Claim = %+v, %v", c, err)
		}
		if err := s.Complete(ctx, ChargeKey(ref), c.Token, uint64(i), benchResult, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClaimCompleteParallel is BenchmarkClaimComplete from GOMAXPROCS
// goroutines sharing one client.
func BenchmarkClaimCompleteParallel(b *testing.B) {
	ctx := context.Background()
	srv := redistest.Start(b, redistest.Options{})
	s, err := New(srv.Client(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var n atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			ref := "bench-" + strconv.FormatUint(i, 10)
			c, err := s.Claim(ctx, ChargeKey(ref), "fingerprint", i)
			if err != nil || c.State != StateNew {
				b.Errorf("Claim = %+v, %v", c, err)
				return
			}
			if err := s.Complete(ctx, ChargeKey(ref), c.Token, i, benchResult, false); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkClaimCompleted measures a redelivery: Claim of an already
// completed reference returning the stored result.
func BenchmarkClaimCompleted(b *testing.B) {
	ctx := context.Background()
	srv := redistest.Start(b, redistest.Options{})
	s, err := New(srv.Client(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	c, err := s.Claim(ctx, ChargeKey("done"), "fingerprint", 1)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Complete(ctx, ChargeKey("done"), c.Token, 1, benchResult, false); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		c, err := s.Claim(ctx, ChargeKey("done"), "fingerprint", 2)
		if err != nil || c.State != StateCompleted {
			b.Fatalf("Claim = %+v, %v", c, err)
		}
	}
}

// BenchmarkClaimCompleteAutoPipeline is BenchmarkClaimCompleteParallel with
// 64 goroutines per CPU, as a worker has requests in flight, and Claim and
// Complete going through a go-redis auto-pipeliner (Options.Batcher), as
// payworker runs them.
func BenchmarkClaimCompleteAutoPipeline(b *testing.B) {
	ctx := context.Background()
	srv := redistest.Start(b, redistest.Options{})
	c := srv.Client(b)
	ap, err := c.AutoPipeline()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ap.Close() })
	s, err := New(c, Options{Batcher: ap})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(64)
	var n atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			ref := "bench-" + strconv.FormatUint(i, 10)
			c, err := s.Claim(ctx, ChargeKey(ref), "fingerprint", i)
			if err != nil || c.State != StateNew {
				b.Errorf("Claim = %+v, %v", c, err)
				return
			}
			if err := s.Complete(ctx, ChargeKey(ref), c.Token, i, benchResult, false); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
