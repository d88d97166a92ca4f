package idempotency

import (
	"context"
	"errors"
	"testing"
)

// A parked reference is never claimed for charging again: every claim with
// its body is answered StateParked (the caller may only look it up) and
// keeps the parked request's sequence, until a resolver completes it.
func TestPark(t *testing.T) {
	for _, b := range []backend{realBackend(t), miniBackend(t)} {
		t.Run(b.name, func(t *testing.T) {
			s := newStore(t, b, Options{})
			ctx := context.Background()
			k := ChargeKey("r")
			first := mustOwn(t, s, "r", "fp", 7)
			if err := s.Park(ctx, k, "not-the-owner", 7); !errors.Is(err, ErrNotOwner) {
				t.Fatalf("Park by another token = %v; want ErrNotOwner", err)
			}
			if err := s.Park(ctx, k, first.Token, 7); err != nil {
				t.Fatal(err)
			}
			if err := s.Park(ctx, k, first.Token, 7); err != nil {
				t.Fatalf("Park again = %v; want nil", err)
			}
			rec, err := s.Get(ctx, k)
			if err != nil || rec.State != RecordParked || !rec.Parked {
				t.Fatalf("record %+v, %v; want parked", rec, err)
			}

			// A resolver (another delivery of the same body) takes it.
			r1 := mustClaim(t, s, "r", "fp", 9)
			if r1.State != StateParked || r1.Sequence != 7 || r1.Token == "" || r1.Attempts != 1 {
				t.Fatalf("claim of a parked record = %+v; want parked, sequence 7, a token, 1 attempt", r1)
			}
			if c := mustClaim(t, s, "r", "fp", 10); c.State != StateInProgress {
				t.Fatalf("claim while a resolver holds it = %v; want in_progress", c.State)
			}
			if c := mustClaim(t, s, "r", "other-fp", 11); c.State != StateConflict {
				t.Fatalf("claim with another body = %v; want conflict", c.State)
			}
			// The resolver dies: the next one still gets it parked.
			r2 := claimAfterExpiry(t, b, s, "r", "fp", 12)
			if r2.State != StateParked || r2.Sequence != 7 {
				t.Fatalf("claim after the resolver's lease ran out = %+v; want parked, sequence 7", r2)
			}
			// Released (shutdown), still parked.
			if err := s.Release(ctx, k, r2.Token, false); err != nil {
				t.Fatal(err)
			}
			r3 := mustClaim(t, s, "r", "fp", 13)
			if r3.State != StateParked {
				t.Fatalf("claim after a resolver released it = %v; want parked", r3.State)
			}
			// Resolved: completed for everyone.
			if err := s.Complete(ctx, k, r3.Token, r3.Sequence, []byte(`{"outcome":"succeeded"}`), false); err != nil {
				t.Fatal(err)
			}
			c := mustClaim(t, s, "r", "fp", 14)
			if c.State != StateCompleted || c.Sequence != 7 {
				t.Fatalf("claim after resolution = %+v; want completed with the parked request's sequence 7", c)
			}
		})
	}
}
