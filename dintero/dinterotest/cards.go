package dinterotest

import (
	"strconv"
	"strings"
	"time"

	"github.com/payworker/payworker/dintero"
)

// More test cards (see also TokenAuthorized and the others in sandbox.go).
const (
	// TokenSoftDecline is followed by a count N and a dash:
	// "sandbox-soft-decline-2-abc". The first N pay calls with that exact
	// token (its whole value, so two tokens with the same prefix count
	// apart) fail with HTTP 200, status FAILED, error.type [DECLINED],
	// code SOFT_DECLINE and retry_policy RETRY_AFTER_DELAY with retry_after
	// Options.RetryAfterDelay ahead; every later call authorizes as
	// TokenAuthorized does. Calls refused before processing (invalid,
	// duplicate, a fault or the rate limit) do not count. SoftDeclineToken
	// builds one.
	TokenSoftDecline = "sandbox-soft-decline-"
	// TokenClosedAccount fails with HTTP 200, status FAILED, error.type
	// [CLOSED_ACCOUNT] and retry_policy DO_NOT_RETRY.
	TokenClosedAccount = "sandbox-closed-account-"
	// TokenPickUpCard is declined with HTTP 200, status DECLINED,
	// error.type [PICK_UP_CARD] and retry_policy DO_NOT_RETRY.
	TokenPickUpCard = "sandbox-pick-up-card-"
	// TokenRestrictedCard is declined with HTTP 200, status DECLINED,
	// error.type [RESTRICTED_CARD] and retry_policy DO_NOT_RETRY.
	TokenRestrictedCard = "sandbox-restricted-card-"
	// TokenDeclinedNoPolicy is declined with HTTP 200, status DECLINED,
	// error.type [DECLINED] and no retry_policy at all.
	TokenDeclinedNoPolicy = "sandbox-declined-no-policy-"
)

// Card brands: after a test card's prefix (and a soft decline's "N-"),
// "visa-" or "mastercard-" picks card.brand, e.g. "sandbox-ok-mastercard-1"
// or "sandbox-soft-decline-2-mastercard-1". Without one the card is a Visa.
const (
	BrandVisa       = "visa-"
	BrandMastercard = "mastercard-"
)

// maxSoftDeclines bounds N of a TokenSoftDecline card.
const maxSoftDeclines = 1_000_000

// SoftDeclineToken returns a TokenSoftDecline token whose first n pay
// calls decline: "sandbox-soft-decline-<n>-<suffix>". suffix may start
// with BrandMastercard or BrandVisa.
func SoftDeclineToken(n int, suffix string) string {
	return TokenSoftDecline + strconv.Itoa(n) + "-" + suffix
}

// outcome is what a test card does.
type outcome struct {
	status    string
	errType   string // "" when authorized
	errCode   string
	message   string
	retryCode string // "" means no retry_policy
	// delayed adds retry_after, Options.RetryAfterDelay after the call.
	delayed    bool
	cardExpiry string
}

// cardDef is one test card: a token prefix and its outcome.
type cardDef struct {
	prefix string
	out    outcome
	// soft: the prefix is followed by "N-" and the first N calls get
	// softDecline instead of out.
	soft bool
	doc  string // for the admin index and the binary's banner
}

var (
	authorized  = outcome{status: dintero.StatusAuthorized, cardExpiry: "12/99"}
	softDecline = outcome{status: dintero.StatusFailed, errType: "DECLINED", errCode: "SOFT_DECLINE",
		message: "Declined by issuer; retry later", retryCode: dintero.RetryAfterDelay, delayed: true, cardExpiry: "12/99"}
)

// cardDefs are the test cards, in the order the index lists them. No
// prefix is a prefix of another.
var cardDefs = []cardDef{
	{TokenAuthorized, authorized, false,
		"AUTHORIZED (CAPTURED with session.configuration.auto_capture)"},
	{TokenInsufficientFunds, outcome{status: dintero.StatusFailed, errType: "INSUFFICIENT_FUNDS", errCode: "INSUFFICIENT_FUNDS",
		message: "Insufficient funds", retryCode: dintero.RetryAfterDelay, delayed: true, cardExpiry: "12/99"}, false,
		"HTTP 200 FAILED, INSUFFICIENT_FUNDS, RETRY_AFTER_DELAY (retry_after: now + the retry-after delay, default 24h)"},
	{TokenSoftDecline, authorized, true,
		"<N>-...: the token's first N pay calls HTTP 200 FAILED, DECLINED (code SOFT_DECLINE), RETRY_AFTER_DELAY (retry_after as above); then AUTHORIZED"},
	{TokenDoNotRetry, outcome{status: dintero.StatusDeclined, errType: "DECLINED", errCode: "DECLINED",
		message: "Declined by issuer; do not retry", retryCode: dintero.RetryDoNotRetry, cardExpiry: "12/99"}, false,
		"HTTP 200 DECLINED, DECLINED, DO_NOT_RETRY"},
	{TokenExpiredCard, outcome{status: dintero.StatusFailed, errType: "EXPIRED_CARD", errCode: "EXPIRED_CARD",
		message: "Card expired", retryCode: dintero.RetryDoNotRetry, cardExpiry: "01/20"}, false,
		"HTTP 200 FAILED, EXPIRED_CARD, DO_NOT_RETRY"},
	{TokenClosedAccount, outcome{status: dintero.StatusFailed, errType: "CLOSED_ACCOUNT", errCode: "CLOSED_ACCOUNT",
		message: "Account closed", retryCode: dintero.RetryDoNotRetry, cardExpiry: "12/99"}, false,
		"HTTP 200 FAILED, CLOSED_ACCOUNT, DO_NOT_RETRY"},
	{TokenPickUpCard, outcome{status: dintero.StatusDeclined, errType: "PICK_UP_CARD", errCode: "PICK_UP_CARD",
		message: "Pick up card", retryCode: dintero.RetryDoNotRetry, cardExpiry: "12/99"}, false,
		"HTTP 200 DECLINED, PICK_UP_CARD, DO_NOT_RETRY"},
	{TokenRestrictedCard, outcome{status: dintero.StatusDeclined, errType: "RESTRICTED_CARD", errCode: "RESTRICTED_CARD",
		message: "Restricted card", retryCode: dintero.RetryDoNotRetry, cardExpiry: "12/99"}, false,
		"HTTP 200 DECLINED, RESTRICTED_CARD, DO_NOT_RETRY"},
	{TokenDeclinedNoPolicy, outcome{status: dintero.StatusDeclined, errType: "DECLINED", errCode: "DECLINED",
		message: "Declined by issuer", cardExpiry: "12/99"}, false,
		"HTTP 200 DECLINED, DECLINED, no retry_policy"},
	{TokenEchoDecline, outcome{status: dintero.StatusFailed, errType: "DECLINED", errCode: "DECLINED",
		retryCode: dintero.RetryDoNotRetry, cardExpiry: "12/99"}, false,
		"HTTP 200 FAILED, DECLINED, DO_NOT_RETRY, the message quoting the token (to test scrubbing)"},
}

// brand is what a card shows: its brand and masked numbers.
type brand struct {
	name     string
	mitPAN   string // card.masked_pan of /v1/sessions/pay
	citPAN   string // card.masked_pan of a customer-paid session
	lastFour string // of citPAN, on the pay page
}

var (
	brandVisa       = brand{"Visa", "492500******0004", "424242******4242", "4242"}
	brandMastercard = brand{"Mastercard", "555555******4444", "555555******4444", "4444"}
)

// card is a parsed test card token.
type card struct {
	def   *cardDef
	soft  int // declines before def.out, for soft cards
	brand brand
}

// parseCard reads the test card a token value is, or reports false for
// anything that is not one.
func parseCard(token string) (card, bool) {
	for i := range cardDefs {
		d := &cardDefs[i]
		rest, ok := strings.CutPrefix(token, d.prefix)
		if !ok {
			continue
		}
		c := card{def: d, brand: brandVisa}
		if d.soft {
			num, after, ok := strings.Cut(rest, "-")
			n, err := strconv.Atoi(num)
			if !ok || err != nil || n < 0 || n > maxSoftDeclines || num != strconv.Itoa(n) {
				return card{}, false
			}
			c.soft, rest = n, after
		}
		switch {
		case strings.HasPrefix(rest, BrandMastercard):
			c.brand = brandMastercard
		case strings.HasPrefix(rest, BrandVisa):
			c.brand = brandVisa
		}
		return c, true
	}
	return card{}, false
}

// outcomeOf returns what a pay call with token does now, counting the call
// for a soft-decline card. The caller holds Server.mu and calls it only
// for a call that is processed (recorded).
func (st *state) outcomeOf(c card, token string) outcome {
	if c.soft > 0 {
		n := st.softCalls[token]
		st.softCalls[token] = n + 1
		if n < c.soft {
			return softDecline
		}
	}
	if c.def.prefix == TokenEchoDecline {
		return echoed(c.def.out, token)
	}
	return c.def.out
}

// authorizeEvent is the AUTHORIZE event of a test card's outcome;
// retryAfter is the delay of a RETRY_AFTER_DELAY retry_after.
func authorizeEvent(out outcome, amount int64, now time.Time, reqID string, retryAfter time.Duration) dintero.TransactionEvent {
	ev := dintero.TransactionEvent{
		Event: "AUTHORIZE", TransactionStatus: out.status, Amount: amount,
		Success: out.errType == "", CreatedAt: now, RequestID: reqID,
	}
	if out.errType != "" {
		ev.Error = &dintero.EventError{Code: out.errCode, Message: out.message, Type: []string{out.errType}}
		if out.retryCode != "" {
			rp := &dintero.RetryPolicy{RetryCodes: []string{out.retryCode}}
			if out.delayed {
				t := now.Add(retryAfter)
				rp.RetryAfter = &t
			}
			ev.Error.RetryPolicy = rp
		}
	}
	return ev
}
