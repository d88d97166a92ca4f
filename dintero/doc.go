// Package dintero is a client for the parts of the Dintero Checkout API that
// payworker uses: merchant-initiated payments with a saved card token
// (POST /v1/sessions/pay), customer-initiated sessions from a payment
// profile (POST /v1/sessions-profile), their look-up by reference and
// cancellation (GET /v1/sessions?search=, POST /v1/sessions/{id}/cancel)
// and transaction look-ups (GET /v1/transactions/{id},
// GET /v1/transactions?merchant_reference=).
//
// # Usage
//
//	c, err := dintero.New(dintero.Config{
//		AccountID:    "T12345678",
//		ClientID:     id,
//		ClientSecret: secret,
//		SystemName:   "payworker",
//	})
//	...
//	tx, err := c.PaySession(ctx, body)
//
// Request bodies are passed as raw JSON and sent byte for byte, so fields
// this package does not model reach Dintero unchanged. PaySession always
// sends Dintero-Feature-Toggles: strict-success-merchant-reference: Dintero
// refuses a second successful charge on the same merchant_reference, which
// makes re-sending a charge after an unknown outcome safe.
//
// The client fetches an OAuth access token with the client credentials,
// caches it, refreshes it RefreshBefore its expiry (read from expires_in)
// and shares one in-flight fetch among all concurrent callers. A 401 from
// the API triggers one refresh and one repeat of the call.
//
// # Errors
//
// Every method returns a *Error. Its Kind tells the caller what to do:
//
//   - KindTransient: nothing happened (the connection could not be made,
//     429 Too Many Requests, or a read-only call kept failing). The client
//     has already retried within its RetryConfig budget. Retry later, e.g.
//     by redelivering the message with a delay; Error.RetryAfter is
//     Dintero's hint if it sent one.
//   - KindUnknownOutcome: a payment request was sent but its result is not
//     known (timeout, connection lost, 5xx, unreadable answer, or a
//     non-final status such as ON_HOLD). The card may have been charged.
//     The client never retries these. Before any new charge, look the
//     payment up with TransactionsByMerchantReference: a succeeded
//     transaction means the charge happened; none (or only failed ones)
//     means it is safe to charge again with the same merchant_reference.
//     CreateSessionProfile answers it too, for the same failures: Dintero
//     may hold a session the caller never learnt the id of
//     (SessionsByMerchantReference finds it, CancelSession cancels it).
//   - KindDeclined: Dintero processed the payment and the authorization
//     failed (status FAILED, DECLINED or AUTHORIZATION_VOIDED, returned
//     with HTTP 200). This is final for the attempt. Error.Transaction and
//     Error.RetryPolicy carry the retry codes (DO_NOT_RETRY,
//     RETRY_AFTER_DELAY, RETRY_IMMEDIATELY); pass them on, and never reuse a
//     token after DO_NOT_RETRY: card networks fine excessive retries.
//   - KindPermanent: the request was rejected (400, 403, 404, other 4xx)
//     and would fail again unchanged; reject it. Error.DuplicateReference
//     reports the strict toggle's refusal of a second charge on a
//     merchant_reference that already succeeded: look that charge up and
//     treat it as the result.
//   - KindAuth: the credentials or the account are wrong (the token
//     endpoint refused them, or the API answered 401 even with a fresh
//     token). This is a configuration problem: alert, do not retry.
//
// Error.Op says which operation failed; a failed token fetch during
// PaySession has Op "auth", and then no payment request was sent.
//
// # Secrets
//
// The client secret, access tokens and request bodies (which hold card
// tokens) never appear in an error, a log line, or the String/LogValue
// output of Config and Client. Messages Dintero returns are scrubbed of any
// of these values before they are put in an Error.
//
// Package dinterotest provides an in-process sandbox server for tests.
package dintero
