package dinterotest

import "github.com/payworker/payworker/dintero"

// TokenEchoDecline fails with HTTP 200, status FAILED, error.type
// [DECLINED] and retry_policy DO_NOT_RETRY, like a decline card, but its
// events[].error.message quotes the whole token, as a PSP message that
// echoes its input would. It is the one exception to "tokens are never
// returned": it exists so that tests can check that a client scrubs every
// string it takes from Dintero before that string reaches a result, a
// stored record or a log line.
const TokenEchoDecline = "sandbox-echo-"

// echoOutcome is the outcome of a TokenEchoDecline card.
func echoOutcome(token string) outcome {
	return outcome{status: dintero.StatusFailed, errType: "DECLINED", errCode: "DECLINED",
		message: "Card " + token + " was declined by the issuer", retryCode: dintero.RetryDoNotRetry, cardExpiry: "12/99"}
}
