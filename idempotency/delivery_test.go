package idempotency_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/idempotency/redistest"
)

func TestDeliveries(t *testing.T) {
	rdb := redistest.Start(t, redistest.Options{}).Client(t)
	s, err := idempotency.New(rdb, idempotency.Options{Prefix: "t:", Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if seen, err := s.DeliveryHandled(ctx, "d-1"); err != nil || seen {
		t.Fatalf("fresh delivery: seen %v, err %v", seen, err)
	}
	if err := s.MarkDelivery(ctx, "d-1"); err != nil {
		t.Fatal(err)
	}
	if seen, err := s.DeliveryHandled(ctx, "d-1"); err != nil || !seen {
		t.Fatalf("marked delivery: seen %v, err %v", seen, err)
	}
	if seen, _ := s.DeliveryHandled(ctx, "d-2"); seen {
		t.Fatal("another delivery counted as seen")
	}
	if ttl := rdb.PTTL(ctx, "t:delivery:d-1").Val(); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("mark expires in %s, want within the retention", ttl)
	}
	if _, err := s.DeliveryHandled(ctx, ""); !errors.Is(err, idempotency.ErrInvalidArgument) {
		t.Fatalf("empty id: %v", err)
	}
}
