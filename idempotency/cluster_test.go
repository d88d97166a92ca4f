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
		batcher redis.Cmdable
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
// (recovered), park, resolve, complete, a claim of the completed record, a
// conflicting claim, a delivery mark, and a card token's attempts, block
// and unblock (its two keys share a hash tag, so one slot).
func lifeCycle(ctx context.Context, s *idempotency.Store, ref string, seq uint64) error {
	key := idempotency.ChargeKey(ref)
	c, err := s.Claim(ctx, key, "fp", seq)
	if err != nil || c.State != idempotency.StateNew {
		return fmt.Errorf("%s: first Claim = %v, %w", ref, c.State, err)
	}
	if c2, err := s.Claim(ctx, key, "fp", seq); err != nil || c2.State != idempotency.StateInProgress {
		return fmt.Errorf("%s: second Claim = %v, %w", ref, c2.State, err)
	}
	if err := s.Extend(ctx, key, c.Token); err != nil {
		return fmt.Errorf("%s: Extend: %w", ref, err)
	}
	if err := s.Release(ctx, key, c.Token, true); err != nil {
		return fmt.Errorf("%s: Release: %w", ref, err)
	}
	r, err := s.Claim(ctx, key, "fp", seq)
	if err != nil || r.State != idempotency.StateRecovered {
		return fmt.Errorf("%s: Claim after a maybe-sent release = %v, %w; want recovered", ref, r.State, err)
	}
	if err := s.Park(ctx, key, r.Token, seq); err != nil {
		return fmt.Errorf("%s: Park: %w", ref, err)
	}
	p, err := s.Claim(ctx, key, "fp", seq+1)
	if err != nil || p.State != idempotency.StateParked || p.Sequence != seq {
		return fmt.Errorf("%s: Claim of a parked record = %+v, %w; want parked under seq %d", ref, p, err, seq)
	}
	result := []byte(`{"outcome":"succeeded","merchant_reference":"` + ref + `"}`)
	if err := s.Complete(ctx, key, p.Token, seq, result, false); err != nil {
		return fmt.Errorf("%s: Complete: %w", ref, err)
	}
	done, err := s.Claim(ctx, key, "fp", seq+1000)
	if err != nil || done.State != idempotency.StateCompleted || string(done.Result) != string(result) || done.Sequence != seq {
		return fmt.Errorf("%s: Claim after Complete = %+v, %w", ref, done, err)
	}
	if cf, err := s.Claim(ctx, key, "other-fp", seq); err != nil || cf.State != idempotency.StateConflict {
		return fmt.Errorf("%s: conflicting Claim = %v, %w", ref, cf.State, err)
	}
	if _, err := s.Get(ctx, key); err != nil {
		return fmt.Errorf("%s: Get: %w", ref, err)
	}
	if err := s.MarkDelivery(ctx, "delivery-"+ref); err != nil {
		return fmt.Errorf("%s: MarkDelivery: %w", ref, err)
	}
	if seen, err := s.DeliveryHandled(ctx, "delivery-"+ref); err != nil || !seen {
		return fmt.Errorf("%s: DeliveryHandled = %v, %w", ref, seen, err)
	}
	hash := "hash-" + ref
	limits := []idempotency.TokenLimit{{Window: time.Hour, Max: 1}}
	if v, err := s.TokenAcquire(ctx, hash, "a1", limits); err != nil || !v.Allowed() {
		return fmt.Errorf("%s: first TokenAcquire = %+v, %w", ref, v, err)
	}
	if v, err := s.TokenAcquire(ctx, hash, "a2", limits); err != nil || !v.LimitReached {
		return fmt.Errorf("%s: TokenAcquire over the limit = %+v, %w", ref, v, err)
	}
	if err := s.TokenBlock(ctx, hash, "DO_NOT_RETRY"); err != nil {
		return fmt.Errorf("%s: TokenBlock: %w", ref, err)
	}
	if v, err := s.TokenAcquire(ctx, hash, "a3", nil); err != nil || !v.Blocked {
		return fmt.Errorf("%s: TokenAcquire of a blocked token = %+v, %w", ref, v, err)
	}
	if ok, err := s.TokenUnblock(ctx, hash); err != nil || !ok {
		return fmt.Errorf("%s: TokenUnblock = %v, %w", ref, ok, err)
	}
	return nil
}
