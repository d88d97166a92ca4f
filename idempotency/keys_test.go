package idempotency

import (
	"context"
	"errors"
	"testing"
)

// Issue 12 item 8: a charge, a session and a callback delivery never share
// a record, whatever their references look like.
func TestKeySpacesAreApart(t *testing.T) {
	b := realBackend(t)
	s := newStore(t, b, Options{})
	ctx := context.Background()

	// A charge whose reference spells another space's key...
	for _, ref := range []string{"session:ORD-1", "delivery:d-1", "charge:ORD-1"} {
		c, err := s.Claim(ctx, ChargeKey(ref), "fp-charge", 1)
		if err != nil || c.State != StateNew {
			t.Fatalf("charge %q: %v, %v", ref, c.State, err)
		}
		if err := s.Complete(ctx, ChargeKey(ref), c.Token, 1, []byte(`{}`), false); err != nil {
			t.Fatal(err)
		}
	}
	// ...leaves the session ORD-1 new, and the delivery d-1 unhandled.
	c, err := s.Claim(ctx, SessionKey("ORD-1"), "fp-session", 2)
	if err != nil || c.State != StateNew {
		t.Fatalf("session ORD-1 after a charge \"session:ORD-1\": %v, %v; want new", c.State, err)
	}
	if seen, err := s.DeliveryHandled(ctx, "d-1"); err != nil || seen {
		t.Fatalf("delivery d-1 after a charge \"delivery:d-1\": handled %v, %v", seen, err)
	}
	if err := s.MarkDelivery(ctx, "d-2"); err != nil {
		t.Fatal(err)
	}
	c, err = s.Claim(ctx, ChargeKey("delivery:d-2"), "fp", 3)
	if err != nil || c.State != StateNew {
		t.Fatalf("charge \"delivery:d-2\" after delivery d-2 was marked: %v, %v; want new", c.State, err)
	}
	// The charge "ORD-1" is apart from the charge "charge:ORD-1".
	c, err = s.Claim(ctx, ChargeKey("ORD-1"), "fp-other", 4)
	if err != nil || c.State != StateNew {
		t.Fatalf("charge ORD-1: %v, %v; want new", c.State, err)
	}

	for _, k := range []Key{{Space: "delivery", Ref: "x"}, {Space: Charges}, {}} {
		if _, err := s.Claim(ctx, k, "fp", 1); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Claim(%+v) = %v; want ErrInvalidArgument", k, err)
		}
	}
}

func TestForget(t *testing.T) {
	b := realBackend(t)
	s := newStore(t, b, Options{})
	ctx := context.Background()
	k := ChargeKey("r")
	c, err := s.Claim(ctx, k, "fp-b", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Forget(ctx, k, "someone-else"); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("Forget by another token = %v; want ErrNotOwner", err)
	}
	if err := s.Forget(ctx, k, c.Token); err != nil {
		t.Fatal(err)
	}
	if err := s.Forget(ctx, k, c.Token); err != nil {
		t.Fatalf("Forget again = %v; want nil", err)
	}
	// Another body may now claim the reference as new.
	if c, err := s.Claim(ctx, k, "fp-a", 2); err != nil || c.State != StateNew {
		t.Fatalf("claim after Forget: %v, %v; want new", c.State, err)
	}
	if got := s.Lease(); got != testLease {
		t.Errorf("Lease() = %v, want %v", got, testLease)
	}
}
