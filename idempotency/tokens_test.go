package idempotency

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Issue 15: a token's declined attempts are counted in rolling windows,
// atomically, and a blocked token stays blocked for every reference.
func TestTokenBudget(t *testing.T) {
	for _, b := range []backend{realBackend(t), miniBackend(t)} {
		t.Run(b.name, func(t *testing.T) {
			s := newStore(t, b, Options{})
			ctx := context.Background()
			limits := []TokenLimit{{Window: time.Hour, Max: 3}, {Window: 24 * time.Hour, Max: 5}}
			for i := range 3 {
				v, err := s.TokenAcquire(ctx, "h1", fmt.Sprint("a", i), limits)
				if err != nil || !v.Allowed() {
					t.Fatalf("attempt %d: %+v, %v; want allowed", i+1, v, err)
				}
			}
			v, err := s.TokenAcquire(ctx, "h1", "a3", limits)
			if err != nil || !v.LimitReached || v.Limit.Max != 3 || v.Limit.Window != time.Hour {
				t.Fatalf("4th attempt in an hour: %+v, %v; want the 3/1h limit reached", v, err)
			}
			// The window frees when the oldest attempt is an hour old
			// (by Redis's clock).
			info, err := s.Token(ctx, "h1")
			if err != nil || len(info.Attempts) != 3 {
				t.Fatalf("token info %+v, %v; want 3 attempts", info, err)
			}
			if d := v.Until.Sub(info.Attempts[0]); d != time.Hour {
				t.Errorf("frees %s after the oldest attempt, want 1h", d)
			}
			// An attempt taken back does not count.
			if err := s.TokenRelease(ctx, "h1", "a2"); err != nil {
				t.Fatal(err)
			}
			if v, _ := s.TokenAcquire(ctx, "h1", "a4", limits); !v.Allowed() {
				t.Fatalf("after a release: %+v; want allowed", v)
			}
			// A success resets the count.
			if err := s.TokenSucceeded(ctx, "h1"); err != nil {
				t.Fatal(err)
			}
			if info, _ := s.Token(ctx, "h1"); len(info.Attempts) != 0 {
				t.Fatalf("attempts after a success: %v", info.Attempts)
			}
			// Another token has its own count.
			if v, _ := s.TokenAcquire(ctx, "h2", "b0", limits); !v.Allowed() {
				t.Fatalf("another token: %+v", v)
			}

			if err := s.TokenBlock(ctx, "h1", "DO_NOT_RETRY"); err != nil {
				t.Fatal(err)
			}
			v, err = s.TokenAcquire(ctx, "h1", "a5", nil)
			if err != nil || !v.Blocked || v.Reason != "DO_NOT_RETRY" {
				t.Fatalf("blocked token: %+v, %v; want blocked DO_NOT_RETRY", v, err)
			}
			if info, _ := s.Token(ctx, "h1"); !info.Blocked || info.BlockedAt.IsZero() {
				t.Fatalf("token info %+v; want blocked with a time", info)
			}
			if was, err := s.TokenUnblock(ctx, "h1"); err != nil || !was {
				t.Fatalf("unblock: %v, %v", was, err)
			}
			if v, _ := s.TokenAcquire(ctx, "h1", "a6", limits); !v.Allowed() {
				t.Fatalf("after unblock: %+v; want allowed", v)
			}
		})
	}
}
