// Package idempotency is a Redis idempotency store keyed on a request's
// merchant reference. Every operation is one atomic Lua script on one Redis
// hash, run with EVALSHA (EVAL the first time).
//
// # Keys
//
// Each kind of request has a key space of its own ([Charges], [Sessions]),
// and so do callback deliveries and card tokens: the Redis key is Prefix +
// space + ":" + reference ("payworker:idem:charge:order-1",
// "payworker:idem:session:order-1", "payworker:idem:delivery:<id>",
// "payworker:idem:token:{<hash>}"). Space names hold no colon, so no
// reference can reach another kind's record. Every script touches one key,
// or keys that share a hash tag, so the store runs on Redis Cluster as it
// does on one node.
//
// # Protocol
//
// For each delivery of a charge request the worker calls [Store.Claim] with
// the reference, a fingerprint of the request body and the message's stream
// sequence, and acts on [Claim.State]:
//
//   - [StateNew]: the caller owns the claim; charge.
//   - [StateRecovered]: the caller owns the claim, but an earlier attempt may
//     have charged (its owner died, released it saying the charge may have
//     been sent, or completed it as a re-openable failure): look the
//     reference up at the PSP first.
//   - [StateCompleted]: republish [Claim.Result].
//   - [StateInProgress]: another owner holds the lease; retry later.
//   - [StateConflict]: same reference, different body; never charge.
//   - [StateParked]: the outcome is unknown and being resolved
//     ([Store.Park]): the caller owns the claim but may only look the
//     reference up, never charge.
//
// While charging, the owner calls [Store.Extend] well within the lease.
// When the outcome is known it calls [Store.Complete] before publishing the
// result, then publishes, then acknowledges the message. [Store.Release]
// gives a claim up without a result; [Store.Park] parks it; [Store.Forget]
// deletes a record that turned out to stand in another request's way.
//
// # Card tokens
//
// [Store.TokenAcquire], [Store.TokenRelease], [Store.TokenSucceeded],
// [Store.TokenBlock] and [Store.TokenUnblock] keep, per card token (a keyed
// hash the caller makes, never the token), a block and the declined
// attempts in rolling windows (see tokens.go).
//
// # Failures
//
// Leases use Redis server time, so pod clocks do not matter. A pod may die at
// any point: its claim becomes StateRecovered once the lease runs out.
// go-redis resends a command whose reply was lost; every script is written
// so that a resend answers like the first call: the owner token is created
// before Claim sends the script, and a claim already owned by that token is
// answered as it was the first time (New or Recovered, never InProgress);
// Complete and Release by the same token are idempotent.
//
// Redis is only the first gate: a lease is exclusive only while it runs and
// Redis replication is asynchronous, so the PSP's own uniqueness on the
// merchant reference remains the real fence against a double charge.
//
// The scripts use only core commands and TIME, so they run on Redis 7 and on
// miniredis (github.com/alicebob/miniredis/v2).
package idempotency
