package idempotency

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Deliveries of Dintero callbacks are remembered by their event-delivery id,
// so that a callback Dintero sends again (it retries up to 20 times) is
// answered without publishing a second result. The mark is set only after
// the result was published: a crash in between makes Dintero's retry do the
// work again, and the result's deterministic Nats-Msg-Id keeps it single.

// DeliveryHandled reports whether the callback delivery id was handled.
func (s *Store) DeliveryHandled(ctx context.Context, id string) (bool, error) {
	if id == "" {
		return false, ErrInvalidArgument
	}
	n, err := s.rdb.Exists(ctx, s.deliveryKey(id)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, err
	}
	return n > 0, nil
}

// MarkDelivery records that the callback delivery id was handled; the mark
// is kept as long as completed records are.
func (s *Store) MarkDelivery(ctx context.Context, id string) error {
	if id == "" {
		return ErrInvalidArgument
	}
	return s.rdb.Set(ctx, s.deliveryKey(id), "1", time.Duration(s.retentionMS)*time.Millisecond).Err()
}

func (s *Store) deliveryKey(id string) string { return s.prefix + "delivery:" + id }
