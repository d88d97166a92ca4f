// Package dinterotest provides an in-memory Dintero Checkout sandbox: an
// http.Handler that speaks the parts of the Dintero API payworker uses,
// including its failure modes, for tests, benchmarks and local runs
// (cmd/dintero-sandbox).
//
// Start one in a test with NewTestServer, or on an address with Start:
//
//	sb := dinterotest.NewTestServer(t, dinterotest.Options{})
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
//     Invalid requests answer 400 {"error":{"code":"INVALID_REQUEST",
//     "errors":[{"field","message"}]}}; duplicates answer 400
//     DUPLICATE_MERCHANT_REFERENCE.
//   - POST /v1/sessions-profile: stores a customer-initiated session (only
//     payment_token kinds) and answers {"id","url"}, url being
//     <base>/v1/view/<id> on the host the client used.
//   - GET /v1/sessions/{id}: the session (id, order, url{return_url,
//     callback_url}, customer, transaction_id once paid), never its tokens.
//   - GET /v1/transactions/{id}, GET /v1/transactions?merchant_reference=
//     (bare array, newest first, limit 1-100 default 10, starting_after).
//
// Every answer is JSON with a random Request-Id header. Card tokens are
// never returned, recorded in the ledger or logged.
//
// # Test cards
//
// The prefix of the payment_token or recurrence_token value picks the
// outcome:
//
//	sandbox-ok-...                  AUTHORIZED, or CAPTURED with auto_capture
//	sandbox-insufficient-funds-...  200 FAILED   [INSUFFICIENT_FUNDS] RETRY_AFTER_DELAY, retry_after now+24h
//	sandbox-do-not-retry-...        200 DECLINED [DECLINED]           DO_NOT_RETRY
//	sandbox-expired-card-...        200 FAILED   [EXPIRED_CARD]       DO_NOT_RETRY
//	anything else                   400 INVALID_PAYMENT_TOKEN, nothing recorded
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
// # Admin endpoints (no authentication)
//
//	GET  /__sandbox/               index: credentials, test cards, endpoints
//	GET  /__sandbox/ledger         Ledger as JSON
//	GET  /__sandbox/transactions   Transactions as JSON
//	GET  /__sandbox/counters       Counters as JSON
//	GET  /__sandbox/faults         Faults as JSON
//	PUT  /__sandbox/faults         replace Faults (400 if invalid)
//	POST /__sandbox/reset          Reset
//	POST /__sandbox/expire-tokens  ExpireTokens
//
// # Not modelled
//
//   - Capture, refund, void, authorization updates, PUT /v1/transactions/{id},
//     session cancel, POST /v1/sessions (without a profile) and
//     /v1/sessions/payment-token.
//   - The customer-side flow of /v1/sessions-profile (the /v1/view page,
//     CVC entry) and callbacks to callback_url: sessions are stored for
//     that but nothing pays them yet.
//   - ON_HOLD, 202 answers, RETRY_IMMEDIATELY, partial payments, 403
//     scopes, strict-session-amounts, item sums against order.amount.
//   - Card-network retry limits (Visa, MasterCard) and blocking a token
//     after DO_NOT_RETRY: every call with a test card has the same outcome.
//   - The includes query parameter (card tokens are never returned) and
//     transaction list filters other than merchant_reference.
//   - Persistence: everything lives in memory until Reset or exit.
package dinterotest
