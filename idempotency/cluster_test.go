package idempotency_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/idempotency/redistest"
)

// TestStoreOnRedisCluster runs the store's life cycle (claim, extend,
// complete, release, re-claim, deliveries) through the exported API against
// a real three-master Redis Cluster, directly and through the cluster's
// auto-pipeliner as payworker runs it. A script that touched keys of more
// than one slot would fail here with CROSSSLOT; the references are many so
// that every master serves some.
func TestStoreOnRedisCluster(t *testing.T) {
	cl := redistest.StartCluster(t, redistest.ClusterOptions{})
	rdb := cl.Client(t)
	ap, err := rdb.AutoPipeline()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ap.Close() })

	for _, tc := range []struct {
		name    string
		batcher redis.Scripter
	}{{"cluster", nil}, {"cluster+autopipeline", ap}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			prefix := "t:" + tc.name + ":"
			s, err := idempotency.New(rdb, idempotency.Options{Prefix: prefix, Lease: 200 * time.Millisecond, Retention: time.Hour, Batcher: tc.batcher})
			if err != nil {
				t.Fatal(err)
			}
			const n = 60
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- lifeCycle(ctx, s, fmt.Sprintf("order-%d", i), uint64(i+1))
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}

			// The records are spread over every master.
			var mu sync.Mutex
			perMaster := map[string]int{}
			err = rdb.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
				keys, err := m.Keys(ctx, prefix+"*").Result()
				mu.Lock()
				perMaster[m.Options().Addr] = len(keys)
				mu.Unlock()
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(perMaster) != 3 {
				t.Fatalf("keys per master: %v", perMaster)
			}
			for addr, k := range perMaster {
				if k == 0 {
					t.Errorf("master %s holds no record: %v", addr, perMaster)
				}
			}
		})
	}
}

// lifeCycle takes one reference through every script: claim (new), a
// second claim (in progress), extend, release, re-claim after the release
// (recovered), complete, a claim of the completed record, a conflicting
// claim, and a delivery mark.
func lifeCycle(ctx context.Context, s *idempotency.Store, ref string, seq uint64) error {
	c, err := s.Claim(ctx, ref, "fp", seq)
	if err != nil || c.State != idempotency.StateNew {
		return fmt.Errorf("%s: first Claim = %v, %v", ref, c.State, err)
	}
	if c2, err := s.Claim(ctx, ref, "fp", seq); err != nil || c2.State != idempotency.StateInProgress {
		return fmt.Errorf("%s: second Claim = %v, %v", ref, c2.State, err)
	}
	if err := s.Extend(ctx, ref, c.Token); err != nil {
		return fmt.Errorf("%s: Extend: %w", ref, err)
	}
	if err := s.Release(ctx, ref, c.Token, true); err != nil {
		return fmt.Errorf("%s: Release: %w", ref, err)
	}
	r, err := s.Claim(ctx, ref, "fp", seq)
	if err != nil || r.State != idempotency.StateRecovered {
		return fmt.Errorf("%s: Claim after a maybe-sent release = %v, %v; want recovered", ref, r.State, err)
	}
	result := []byte(`{"outcome":"succeeded","merchant_reference":"` + ref + `"}`)
	if err := s.Complete(ctx, ref, r.Token, seq, result, false); err != nil {
		return fmt.Errorf("%s: Complete: %w", ref, err)
	}
	done, err := s.Claim(ctx, ref, "fp", seq+1000)
	if err != nil || done.State != idempotency.StateCompleted || string(done.Result) != string(result) || done.Sequence != seq {
		return fmt.Errorf("%s: Claim after Complete = %+v, %v", ref, done, err)
	}
	if cf, err := s.Claim(ctx, ref, "other-fp", seq); err != nil || cf.State != idempotency.StateConflict {
		return fmt.Errorf("%s: conflicting Claim = %v, %v", ref, cf.State, err)
	}
	rec, err := s.Get(ctx, ref)
	if err != nil || rec.State != idempotency.RecordCompleted || rec.Attempts != 2 {
		return fmt.Errorf("%s: Get = %+v, %v", ref, rec, err)
	}
	if err := s.MarkDelivery(ctx, "delivery-"+ref); err != nil {
		return fmt.Errorf("%s: MarkDelivery: %w", ref, err)
	}
	if seen, err := s.DeliveryHandled(ctx, "delivery-"+ref); err != nil || !seen {
		return fmt.Errorf("%s: DeliveryHandled = %v, %v", ref, seen, err)
	}
	return nil
}
