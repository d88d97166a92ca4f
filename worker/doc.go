// Package worker turns requests from a JetStream work queue into Dintero
// calls, at most one charge per merchant_reference, and publishes exactly
// one final result for each request.
//
// # One flow
//
// Every message, charge or customer-initiated session, takes the same
// flow (flow.go). A handler only decides: handle decodes the request,
// claims its reference in the idempotency store, and runs the kind's
// Dintero call, and returns a decision (decision.go). settle (settle.go)
// carries the decision out, and is the one place where a message is acked,
// handed back or terminated and where a result is stored and published, in
// the one safe order:
//
//	finished:     store the result in the claim → dead letter → publish (Nats-Msg-Id) → Ack or Term
//	not finished: release the claim → NakWithDelay
//	unknown:      park the record → schedule a lookup → publish "unknown" → Ack  (park.go)
//	dunning:      release the claim → schedule the next attempt → publish "retry_scheduled" → Ack
//
// A crash between any two steps is repaired by the next delivery: a stored
// result is published again under the same Nats-Msg-Id, which JetStream
// de-duplicates. What differs between charges and sessions is a kind
// (subject, decoder, results) and a request type (its key and its Dintero
// call): charge.go and session.go.
//
// # Charges
//
// A claim the worker believes new is charged with Dintero's
// strict-merchant-reference toggle, so that a reference with history the
// store lost is refused before it reaches the card; a claim whose earlier
// owner may have reached Dintero, and any answer that may hide a charge, is
// looked up by merchant_reference first, and a transaction found must match
// the whole request (amount, currency, provider, operation, card token) or
// the request is a conflict. Right before a payment is sent (after the
// wait for a call slot, the access token, a backoff) the fence on the
// claim is asked (delivery.go): a worker paused past its lease never sends.
// The token governor (governor.go) keeps a card the networks would fine the
// merchant for out of Dintero's reach; dunning (dunning.go) retries soft
// declines of requests that ask for it.
//
// A charge that may have reached Dintero is never given up as failed: when
// its deliveries run out it is parked and looked up on a schedule kept in
// JetStream (park.go, schedule.go). failed means Dintero holds no charge.
//
// # Sessions
//
// A customer-initiated session is created once per reference; as Dintero
// cannot fence its creation, the session created is also kept in a
// JetStream key-value bucket (the first remembered wins) and answered from
// it when Redis lost a record, and a request answered without a stored
// record looks the reference's sessions up at Dintero (GET /v1/sessions)
// and cancels every one but the remembered one before it answers. A
// creation whose outcome is unknown is never repeated blindly, and a request
// that may have made a session is never answered failed: when its
// deliveries run out (or its sweep cannot run) it is parked like a charge,
// and the lookup on the schedule answers created or, when Dintero holds no
// session of it, failed (not_created). Its completed or failed result comes
// from Dintero's callback (callback.go).
package worker
