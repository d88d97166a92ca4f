package idempotency_test

import (
	"context"
	"fmt"
	"log"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/payworker/payworker/idempotency"
)

// The worker's protocol for one delivery of a charge request.
func Example() {
	ctx := context.Background()
	mr, err := miniredis.Run() // any Redis 7 works the same
	if err != nil {
		log.Fatal(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	store, err := idempotency.New(rdb, idempotency.Options{})
	if err != nil {
		log.Fatal(err)
	}

	// First delivery: the reference is new, charge it.
	c, err := store.Claim(ctx, idempotency.ChargeKey("sub-42-2026-08"), "sha256-of-body", 17)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.State, c.Attempts)

	// ... charge, calling store.Extend(ctx, idempotency.ChargeKey(ref), c.Token) every ~10s ...

	// Store the outcome before publishing it, then publish, then ack.
	if err := store.Complete(ctx, idempotency.ChargeKey("sub-42-2026-08"), c.Token, 17, []byte(`{"outcome":"succeeded"}`), false); err != nil {
		log.Fatal(err)
	}

	// A redelivery gets the stored result to republish.
	again, err := store.Claim(ctx, idempotency.ChargeKey("sub-42-2026-08"), "sha256-of-body", 18)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(again.State, again.Sequence, string(again.Result))

	// The same reference with another body is a conflict.
	other, err := store.Claim(ctx, idempotency.ChargeKey("sub-42-2026-08"), "sha256-of-another-body", 19)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(other.State)
	// Output:
	// new 1
	// completed 17 {"outcome":"succeeded"}
	// conflict
}
