// Package messages is the contract between payworker and the services that
// ask it to charge a card: the subjects, the request and result bodies and
// their validation. Package [github.com/payworker/payworker/messages/publish]
// puts requests on NATS JetStream.
//
// A charge request is exactly the body of Dintero's "create and pay merchant
// initiated session" call ({"session": {...}, "payment": {...}}), published on
// [SubjectChargeRequest]. Its idempotency key is always
// session.order.merchant_reference: a second request with the same reference
// never charges again. It gets the first one's result, marked duplicate, or a
// rejected result with error code "conflict" when its body differs.
//
// Each request ends in exactly one [ChargeResult], published on
// [ResultSubject](kind, outcome), with a deterministic Nats-Msg-Id.
//
// # Customer-initiated sessions
//
// A session request is exactly the body of Dintero's POST
// /v1/sessions-profile ({"url": {...}, "order": {...}, "customer": {...},
// "profile_id": "..."}), published on [SubjectSessionRequest] with
// publish.SessionBody or publish.Session and checked by
// [DecodeSessionRequest]. Its idempotency key is order.merchant_reference.
// Its [SessionResult] events go to [ResultSubject]([KindSession], outcome):
// [OutcomeCreated] with the payment page URL for the customer (or
// [OutcomeRejected], or [OutcomeFailed] when Dintero holds no session for
// the reference), then, once the customer has confirmed with CVC and Dintero
// has called back, [OutcomeCompleted] or [OutcomeFailed]. A session request
// whose creation may have made a session Dintero cannot tell about yet is
// parked like a charge: non-final [OutcomeUnknown] (and [OutcomeNeedsReview]
// at the end of the schedule) events come before its created or failed
// result.
//
// # Several deployments on one NATS account
//
// The subject and stream constants are the names of the default
// deployment. A deployment with a namespace (PAYWORKER_NAMESPACE=acct2)
// prefixes them: [NamesFor]("acct2") gives its subjects
// ("acct2.payments.charge.request") and streams ("ACCT2_PAYMENT_RESULTS").
// Bodies, headers and Nats-Msg-Ids do not change.
//
// # Validation
//
// [DecodeChargeRequest] is the one check of a body, used by publishers
// (through publish.ChargeBody and publish.Charge) and by the worker alike:
// size, UTF-8, JSON syntax, types, then the rules of [ChargeRequest.Validate].
// It reports every problem at once in a *[ValidationError], each under its
// JSON path ("session.order.amount"), ready for [ResultError].Fields. No
// message ever contains a card token. [MerchantReference] names a body that
// failed, and [Fingerprint] tells a replay of a request from a different body
// reusing its merchant_reference.
//
// # Secrets
//
// Card tokens ([CardTokens]) redact themselves when printed with fmt or
// logged with log/slog, as do [Customer] and [ChargeRequest]; only their JSON
// encoding, the wire format, carries the tokens.
//
// # Dependencies
//
// The package imports the standard library and one module,
// github.com/go-json-experiment/json (the json/v2 proposal's upstream,
// for the fast decode path), so that any publisher can import it without
// taking NATS or anything else along.
//
// JSON Schemas of the bodies: [github.com/payworker/payworker/messages/schema].
package messages
