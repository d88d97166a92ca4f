package dinterotest

// TokenEchoDecline fails with HTTP 200, status FAILED, error.type
// [DECLINED] and retry_policy DO_NOT_RETRY, like a decline card, but its
// events[].error.message quotes the whole token, as a PSP message that
// echoes its input would. It is the one exception to "tokens are never
// returned": it exists so that tests can check that a client scrubs every
// string it takes from Dintero before that string reaches a result, a
// stored record or a log line.
const TokenEchoDecline = "sandbox-echo-"

// echoed is the outcome of a TokenEchoDecline card: its message quotes
// token.
func echoed(out outcome, token string) outcome {
	out.message = "Card " + token + " was declined by the issuer"
	return out
}
