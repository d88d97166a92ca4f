// Package worker turns charge requests from a JetStream work queue into
// Dintero charges, exactly once per merchant_reference, and publishes one
// result for each request.
//
// For every message the worker:
//
//  1. decodes and validates it; bad input gets a rejected result, a copy in
//     the dead-letter stream, and TermWithReason. Dintero is never called.
//  2. claims the merchant_reference in the idempotency store. A completed
//     record is answered from the store (duplicate), a different body with
//     the same reference is a conflict, a live owner elsewhere means "try
//     again later" (NakWithDelay), and a claim whose previous owner died is
//     recovered by looking the reference up at Dintero before any charge.
//  3. charges through Dintero while heartbeating the message (InProgress)
//     and the claim's lease. Dintero's strict-success-merchant-reference
//     toggle is the last fence: a second successful charge on the same
//     reference is refused by Dintero itself.
//  4. stores the final result in the claim (Complete), publishes it with a
//     deterministic Nats-Msg-Id, then acks. A crash between any two steps
//     is repaired on redelivery: the stored result is published again under
//     the same Nats-Msg-Id, which JetStream de-duplicates.
//
// Transient failures are retried by redelivery (NakWithDelay with
// exponential backoff). After Config.MaxDeliver deliveries the request gets
// a failed result and a copy in the dead-letter stream. The consumer itself
// has no server-side MaxDeliver, so a message is never stranded in the work
// queue when a pod dies during its last delivery: the next delivery gives up
// cleanly instead.
package worker
