package redisconn

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// ErrEvictingPolicy is wrapped by CheckEviction's error when a Redis node
// may evict keys.
var ErrEvictingPolicy = errors.New("redis may evict keys")

// CheckEviction reads maxmemory_policy from INFO memory (which works where
// CONFIG is disabled, as on managed services) on the server, the current
// Sentinel primary, or every master of a cluster, and refuses any policy
// but noeviction, with one line naming the node, the policy and the way
// out, unless allow is true (PAYWORKER_ALLOW_EVICTION).
//
// Why volatile-* is refused too: every idempotency record has a TTL (its
// retention), so volatile-lru, -lfu, -random and -ttl can evict a live
// claim or a completed record exactly like allkeys-*; an evicted record is
// a forgotten charge, and only Dintero's strict toggle would then stop a
// second one. A maxmemory of 0 does not make a policy safe: it can be set
// at run time.
func CheckEviction(ctx context.Context, rdb redis.UniversalClient, allow bool) error {
	if allow {
		return nil
	}
	check := func(ctx context.Context, c *redis.Client) error {
		addr := c.Options().Addr
		if addr == "FailoverClient" { // go-redis's name for a Sentinel client
			addr = "(Sentinel primary)"
		}
		info, err := c.Info(ctx, "memory").Result()
		if err != nil {
			return fmt.Errorf("redis %s: INFO memory: %w", addr, err)
		}
		policy := infoField(info, "maxmemory_policy")
		if policy == "" {
			return fmt.Errorf("redis %s: INFO memory has no maxmemory_policy", addr)
		}
		if policy != "noeviction" {
			return &EvictionError{Addr: addr, Policy: policy}
		}
		return nil
	}
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		var mu sync.Mutex
		var errs []error
		err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			if err := check(ctx, m); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			return nil
		})
		if err != nil {
			return err
		}
		return firstEviction(errs)
	case *redis.Client:
		// For a Sentinel client INFO goes to the current primary; the
		// replicas are not checked (give them the same configuration).
		return check(ctx, c)
	default:
		return fmt.Errorf("redisconn: CheckEviction: unsupported client %T", rdb)
	}
}

// firstEviction returns the eviction error first (the actionable one),
// else any other.
func firstEviction(errs []error) error {
	for _, err := range errs {
		if errors.Is(err, ErrEvictingPolicy) {
			return err
		}
	}
	return errors.Join(errs...)
}

// EvictionError is CheckEviction's error for an evicting policy.
type EvictionError struct {
	Addr   string // the node
	Policy string // its maxmemory-policy
}

func (e *EvictionError) Error() string {
	return fmt.Sprintf("redis %s has maxmemory-policy %s: it may evict idempotency records (a forgotten claim can charge twice); set maxmemory-policy noeviction, or %s=true to run anyway", e.Addr, e.Policy, EnvAllowEviction)
}

// Is reports whether target is ErrEvictingPolicy.
func (e *EvictionError) Is(target error) bool { return target == ErrEvictingPolicy }

// infoField returns the value of key in an INFO reply.
func infoField(info, key string) string {
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if ok && k == key {
			return v
		}
	}
	return ""
}
