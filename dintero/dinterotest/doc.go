// Package dinterotest provides an in-memory Dintero Checkout sandbox: an
// http.Handler that speaks the parts of the Dintero API payworker uses,
// including its failure modes, for tests, benchmarks and local runs
// (cmd/dintero-sandbox).
//
// Start one in a test with Start, or on an address with New and Listen:
//
//	sb := dinterotest.Start(t, dinterotest.Options{})
//	// point the client at sb.URL() with DefaultAccountID,
//	// DefaultClientID and DefaultClientSecret
//
// # API
//
//   - POST /v1/accounts/{aid}/auth/token: HTTP Basic client_id:client_secret
//     and {"grant_type":"client_credentials","audience":
//     "https://api.dintero.com/v1/accounts/{aid}"}. Wrong credentials or
//     account: 401; a bad body or audience: 400. Tokens are random, opaque
//     and expire after Options.TokenTTL.
//   - Every other /v1 endpoint needs "Authorization: Bearer <token>", or is
//     answered 401 ACCESS_FORBIDDEN.
//   - POST /v1/sessions/pay: merchant-initiated payment, validated as
//     Dintero documents it (integer amounts, dotted token keys such as
//     "payex.creditcard", the token kinds each provider accepts, the
//     Dintero-Feature-Toggles strict-merchant-reference and
//     strict-success-merchant-reference, whose duplicate check is atomic;
//     strict-merchant-reference also counts sessions-profile sessions and
//     declined payments, strict-success-merchant-reference only AUTHORIZED
//     or CAPTURED transactions).
//     A charge answers 200 with the Transaction plus success and session_id;
//     authorization failures are 200 too, with status FAILED or DECLINED.
//     The answer's Sandbox-Time-Ms header (HeaderSandboxTime), and the
//     ledger entry's sandbox_ms, is the time the sandbox spent on the call
//     (injected latency included), for benchmarks to subtract.
//     Invalid requests answer 400 {"error":{"code":"INVALID_REQUEST",
//     "errors":[{"field","message"}]}}; duplicates answer 400
//     DUPLICATE_MERCHANT_REFERENCE.
//   - POST /v1/sessions-profile: stores a customer-initiated session (only
//     payment_token kinds) and answers {"id","url"}, url being
//     <base>/v1/view/<id> on the host the client used.
//   - GET /v1/sessions/{id}: the session (id, order, url{return_url,
//     callback_url}, customer, transaction_id once paid, cancelled_at and
//     cancelled_by once cancelled), never its tokens.
//   - GET /v1/sessions: sessions as above in a bare array, newest first,
//     limit 1-100 default 10, starting_after; search keeps those whose
//     merchant_reference contains it, ignoring case.
//   - POST /v1/sessions/{id}/cancel: the session can no longer be paid; it
//     is answered with cancelled_at and cancelled_by (the client id). A
//     repeat answers it unchanged; a session with a transaction is refused
//     (400), an unknown one is 404.
//   - GET /v1/transactions/{id}, GET /v1/transactions?merchant_reference=
//     (bare array, newest first, limit 1-100 default 10, starting_after).
//
// Every answer is JSON with a random Request-Id header, except the
// customer's pages below, which are HTML. Card tokens are never returned
// (except by includes=card.*_token, see Transactions), shown, recorded in
// the ledger or logged.
//
// # The customer's side of a session
//
// The url of a /v1/sessions-profile session is its payment page. It needs
// no access token, and faults never apply to it.
//
//   - GET /v1/view/{session_id}: a plain HTML page (no JavaScript) with the
//     merchant reference, the amount and currency, the saved card as
//     "•••• 4242" and a form: a CVC input (id and name "cvc") and a
//     submit button (id "pay"). A session without a payment_token shows
//     "No saved card" and no form: the sandbox pays saved cards only.
//   - POST /v1/view/{session_id}/pay, form field cvc: does what
//     Server.PaySession does, then redirects (303) to the session's
//     return_url with transaction_id and merchant_reference added, plus
//     error=authorization when the payment failed. A CVC that is not 3 or 4
//     digits (400), a session already paid (409, also after a declined
//     attempt), cancelled (409), without a saved card (409) or whose token
//     is not a test card (422, nothing recorded) shows the page again with
//     the reason. The page of a cancelled session says so and has no form.
//
// The saved payment_token picks the outcome as for /v1/sessions/pay (see
// Test cards). The transaction has the session's id, no payment_operation,
// the payment_product_type of the token's key and metadata
// "session:profile_id"; it becomes the session's transaction_id, and when
// authorized it enters the Ledger (Charge.Operation "customer_initiated").
//
// # Callbacks
//
// After a customer payment the sandbox calls the session's callback_url
// in the background, as Dintero does:
//
//   - When: the payment was authorized; or it failed and callback_url has
//     report_error=true (the callback then also has error=authorization).
//   - Method: GET, or POST with the Transaction as a JSON body when
//     callback_url has method=POST.
//   - Query: callback_url's own parameters, then transaction_id,
//     session_id (named by sid_parameter_name if given), merchant_reference
//     and time (RFC 3339, UTC).
//   - Headers: event-delivery, one random id per delivery, the same on its
//     retries; Dintero-Signature (dintero.SignCallback over the final URL,
//     the method and the account id, signed anew per attempt) when
//     Options.CallbackSecret is set.
//   - Retries: a 5xx answer, a timeout (Options.CallbackTimeout, 10s) or a
//     connection error is retried up to Options.CallbackRetries times (5)
//     after Options.CallbackBackoff (100ms), doubling; a 2xx ends the
//     delivery, any other answer (4xx) gives up at once.
//
// Close cancels the deliveries in flight and waits for them to end; no
// callback starts after Close. Counters.CallbacksSent, CallbacksDelivered
// and CallbackFailures count them.
//
// # Test cards
//
// The prefix of the payment_token or recurrence_token value picks the
// outcome (TestCards lists them; retry_after is Options.RetryAfterDelay,
// default 24h, after the call):
//
//	sandbox-ok-...                  AUTHORIZED, or CAPTURED with auto_capture
//	sandbox-insufficient-funds-...  200 FAILED   [INSUFFICIENT_FUNDS] RETRY_AFTER_DELAY with retry_after
//	sandbox-soft-decline-<N>-...    the token's first N pay calls: 200 FAILED [DECLINED] (code SOFT_DECLINE)
//	                                RETRY_AFTER_DELAY with retry_after; every later call: as sandbox-ok-
//	sandbox-do-not-retry-...        200 DECLINED [DECLINED]           DO_NOT_RETRY
//	sandbox-expired-card-...        200 FAILED   [EXPIRED_CARD]       DO_NOT_RETRY
//	sandbox-closed-account-...      200 FAILED   [CLOSED_ACCOUNT]     DO_NOT_RETRY
//	sandbox-pick-up-card-...        200 DECLINED [PICK_UP_CARD]       DO_NOT_RETRY
//	sandbox-restricted-card-...     200 DECLINED [RESTRICTED_CARD]    DO_NOT_RETRY
//	sandbox-declined-no-policy-...  200 DECLINED [DECLINED]           no retry_policy
//	anything else                   400 INVALID_PAYMENT_TOKEN, nothing recorded
//
// A soft decline counts the pay calls (and customer payments) of its
// exact token value that were processed; calls refused before (invalid,
// duplicate, a fault, the rate limit, an outage's 503) do not count, and
// Reset forgets the counts. After the prefix (and a soft decline's "N-"),
// "visa-" or "mastercard-" picks card.brand and masked_pan:
// sandbox-ok-mastercard-1 is a Mastercard, sandbox-ok-1 and
// sandbox-ok-visa-1 are Visas.
//
// # Transactions
//
// A transaction carries what the request said: merchant_reference, amount,
// currency, payment_product_type, payment_operation (empty for a customer
// paying a session), customer (customer_id, email, phone_number, when
// given), metadata, the card (brand, masked_pan, expiry_date) and the
// AUTHORIZE (and CAPTURE) event with its error and retry_policy.
// GET /v1/transactions/{id}?includes=card.payment_token (or
// includes=card.recurrence_token; the parameter may repeat, values may be
// comma-separated) adds card.payment_token (card.recurrence_token): the
// token the transaction was paid with, when it was of that kind, as
// Dintero does. Nothing else ever returns a card token.
//
// # Faults
//
// Faults (Options.Faults, SetFaults or PUT /__sandbox/faults) add latency,
// 500/503 answers, 429 with Retry-After, dropped connections, and the
// worst case for a payment client: a charge that is recorded but never
// answered (TimeoutAfterChargeRate). Faults are applied before the access
// token is checked, as a gateway in front of the API would. Options.Seed
// makes the draws repeatable. Faults never apply to the admin endpoints.
//
// Faults.RateLimit is a real rate limit, not a random draw: a token bucket
// for the account (RateLimit calls per second, RateBurst at once, default
// a tenth of a second's worth) over every API call, the token endpoint
// included. A call that finds it empty is answered 429 TOO_MANY_REQUESTS
// with Retry-After in whole seconds, rounded up, until the bucket holds a
// token again, and is counted in Counters.RateLimited (RateLimitedPay for
// /v1/sessions/pay). It is checked after the latency and before the
// random faults; setting a new rate or burst starts a full bucket.
//
// # Outage
//
// An outage (Options.Outage, SetOutage, PUT /__sandbox/outage, or the
// binary's -outage flags) is a window, starting when it is set, in which
// Dintero charges but the answers are lost and nothing can be looked up:
// POST /v1/sessions/pay, POST /v1/sessions-profile and
// POST /v1/sessions/{id}/cancel are processed (the charge enters the
// ledger, the session is stored or cancelled; soft-decline counts advance)
// and then hang until the client gives up (Outage.Answer "hang", the
// default; dropped after Options.HangLimit) or are answered 502 or 504;
// Outage.RefuseRate of them are answered 503 instead, before anything is
// done; lookups (GET /v1/transactions, /v1/transactions/{id},
// /v1/sessions, /v1/sessions/{id}) answer 503. The token endpoint, the customer's pages
// and callbacks keep working. Counters: OutageAnswersLost, OutageRefused,
// OutageLookupsFailed. After the window everything answers again, and a
// retried charge meets the strict toggles as usual.
//
// # Admin endpoints (no authentication)
//
//	GET  /__sandbox/               index: credentials, test cards, endpoints
//	GET  /__sandbox/ledger         Ledger as JSON (with each charge's sandbox_ms)
//	GET  /__sandbox/transactions   Transactions as JSON
//	GET  /__sandbox/counters       Counters as JSON
//	GET  /__sandbox/refusals       Refusals: pay calls refused as duplicates
//	GET  /__sandbox/sessions       every session (kind, state open|paid|cancelled, saved card types, never tokens)
//	GET  /__sandbox/faults         Faults as JSON
//	PUT  /__sandbox/faults         replace Faults (400 if invalid)
//	GET  /__sandbox/outage         OutageStatus: the outage last set, active or not
//	PUT  /__sandbox/outage         start an Outage now, e.g. {"duration":"2m","answer":"hang",
//	                               "refuse_rate":0}; duration "0s" ends it (400 if invalid)
//	DELETE /__sandbox/outage       end the outage
//	POST /__sandbox/reset          Reset
//	POST /__sandbox/expire-tokens  ExpireTokens
//
// # Not modelled
//
//   - Capture, refund, void, authorization updates, PUT /v1/transactions/{id},
//     POST /v1/sessions (without a profile) and /v1/sessions/payment-token.
//   - Cancelling a paid session (Dintero voids an initialized or authorized
//     transaction; the sandbox refuses), a callback on a cancel, and the
//     session list's other filters (search on merchant_reference_2 or the
//     customer's name, id, transaction_id, created_at, store_id).
//   - Card entry on the payment page (only saved cards are paid), session
//     expiry and the customer cancelling on the page, and callbacks for
//     /v1/sessions/pay (whose callback_url is stored but never called).
//   - The callback_url modifiers delay_callback, report_event and
//     includes=session; callbacks for ON_HOLD; a second callback on a
//     status change.
//   - ON_HOLD, 202 answers, RETRY_IMMEDIATELY, partial payments, 403
//     scopes, strict-session-amounts, item sums against order.amount.
//   - Card-network retry limits (Visa, MasterCard) and blocking a token
//     after DO_NOT_RETRY: every call with a test card has the same outcome
//     (a soft decline's count aside).
//   - includes values other than card.payment_token and
//     card.recurrence_token, payment_token_id and recurrence_token_id,
//     and transaction list filters other than merchant_reference.
//   - Persistence: everything lives in memory until Reset or exit.
package dinterotest
