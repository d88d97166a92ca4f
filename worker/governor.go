package worker

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/messages"
)

// The token governor protects a card as the idempotency store protects a
// reference: the card networks fine a merchant for charging a card again
// after a decline that no retry can fix, and for too many declines per card
// (Visa: 15 reattempts in 30 days; Mastercard: 10 declines in 24 hours), and
// Dintero leaves the retry policy to the merchant. So, across every
// reference and every service that charges through payworker:
//
//   - a token declined with DO_NOT_RETRY, or with one of HardDeclines, is
//     blocked: a later charge with it is answered declined (token_blocked)
//     without calling Dintero, until payctl token unblock;
//   - declined attempts are counted per token in rolling windows
//     (Config.TokenLimits); an attempt over a limit is answered declined
//     (retry_limit_reached, retry_after when the window frees) without
//     calling Dintero. Each attempt is reserved before it is sent, so
//     concurrent requests cannot overrun a limit; one that did not reach the
//     card is taken back, a success clears the count (as Dintero's guide
//     says the networks do).
//
// A token is known by a keyed hash of its provider and value
// (Config.TokenKey), never by the token itself.

// Tokens is what the governor needs of the token store (*idempotency.Store
// implements it).
type Tokens interface {
	TokenAcquire(ctx context.Context, hash, attempt string, limits []idempotency.TokenLimit) (idempotency.TokenVerdict, error)
	TokenRelease(ctx context.Context, hash, attempt string) error
	TokenSucceeded(ctx context.Context, hash string) error
	TokenBlock(ctx context.Context, hash, reason string) error
	TokenBlocked(ctx context.Context, hash string) (blocked bool, reason string, err error)
}

var _ Tokens = (*idempotency.Store)(nil)

// HardDeclines are the decline types no retry can fix: a token declined
// with one of them (or with the retry code DO_NOT_RETRY) is blocked.
var HardDeclines = []string{"EXPIRED_CARD", "CLOSED_ACCOUNT", "PICK_UP_CARD", "RESTRICTED_CARD"}

// DefaultTokenLimits are the default Config.TokenLimits: at most 10
// declines in 24 hours (Mastercard's excessive-attempts threshold) and 15
// in 30 days (Visa's reattempt limit).
func DefaultTokenLimits() []idempotency.TokenLimit {
	return []idempotency.TokenLimit{{Window: 24 * time.Hour, Max: 10}, {Window: 30 * 24 * time.Hour, Max: 15}}
}

// TokenHash is the name of a card token in the store: the hex HMAC-SHA256,
// under key, of its provider and value. payctl token unblock makes the same.
func TokenHash(key []byte, provider, token string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(provider))
	m.Write([]byte{0})
	m.Write([]byte(token))
	return hex.EncodeToString(m.Sum(nil))
}

// DerivedTokenKey is the TokenKey a deployment uses when it sets none: a
// hash of its Dintero account, stable and the same for every pod and for
// payctl, but not secret.
func DerivedTokenKey(accountID string) []byte {
	sum := sha256.Sum256([]byte("payworker token key for " + accountID))
	return sum[:]
}

// A ticket is an attempt reserved with the governor.
type ticket struct {
	hash, attempt string
	checked       time.Time // when the token was last seen not blocked
	blockedBy     string    // the block tokenFence found
}

// tokenRecheckAfter is how old a ticket's check may be when its attempt is
// sent: an attempt that waited longer (for a call slot, a backoff, a
// Retry-After) asks Redis again right before it goes, so that a block
// another request learned meanwhile stops it (tokenFence).
const tokenRecheckAfter = 100 * time.Millisecond

// errTokenBlocked stops an attempt whose token was blocked after it was
// reserved.
var errTokenBlocked = errors.New("the card token was blocked while the attempt waited")

// tokenFence is asked by the Dintero client right before it sends the
// charge (with the claim's fence): the token must still not be blocked.
func (w *Worker) tokenFence(t *ticket) func(context.Context) error {
	return func(ctx context.Context) error {
		if t == nil || time.Since(t.checked) < tokenRecheckAfter {
			return nil
		}
		blocked, reason, err := w.cfg.Tokens.TokenBlocked(ctx, t.hash)
		switch {
		case err != nil:
			return fmt.Errorf("token governor: %w", err)
		case blocked:
			t.blockedBy = reason
			return errTokenBlocked
		}
		t.checked = time.Now()
		return nil
	}
}

// tokenBlocked is the answer to a charge whose token is blocked: declined,
// token_blocked, and Dintero is not asked.
func (w *Worker) tokenBlocked(d *delivery, c *chargeRequest, hash, reason string) decision {
	w.m.tokenBlocked("quarantine")
	d.log.Info("card token blocked: not charged", "token_hash", hash[:16], "reason", reason)
	rerr := &messages.ResultError{Code: messages.CodeTokenBlocked, RetryCodes: []string{dintero.RetryDoNotRetry},
		Message: "this card token was declined with " + reason + " before: it is not charged again (payctl token unblock lifts the block)"}
	return decision{result: c.fail(messages.OutcomeDeclined, rerr, d.attempts(), w.now())}
}

// acquireToken reserves an attempt of the charge's token. It returns the
// ticket, or the final decision when the token may not be charged: blocked
// or over a limit. Without a governor, or a token, it returns neither.
func (w *Worker) acquireToken(ctx context.Context, d *delivery, c *chargeRequest) (*ticket, *decision) {
	if w.cfg.Tokens == nil {
		return nil, nil
	}
	provider, token := c.token()
	if token == "" {
		return nil, nil
	}
	t := &ticket{hash: TokenHash(w.cfg.TokenKey, provider, token), attempt: newAttemptID(), checked: time.Now()}
	v, err := w.cfg.Tokens.TokenAcquire(ctx, t.hash, t.attempt, w.cfg.TokenLimits)
	if err != nil {
		dec := retry("store", fmt.Errorf("token governor: %w", err))
		return nil, &dec
	}
	switch {
	case v.Blocked:
		dec := w.tokenBlocked(d, c, t.hash, v.Reason)
		return nil, &dec
	case v.LimitReached:
		w.m.tokenBlocked("budget")
		until := v.Until.UTC()
		d.log.Info("card token over its attempt budget: not charged", "token_hash", t.hash[:16],
			"limit", fmt.Sprintf("%d in %s", v.Limit.Max, v.Limit.Window), "until", until)
		rerr := &messages.ResultError{Code: messages.CodeRetryLimitReached, RetryCodes: []string{dintero.RetryAfterDelay},
			RetryAfter: &until, Message: fmt.Sprintf("this card token was declined %d times in %s: the next attempt may be made from %s",
				v.Limit.Max, v.Limit.Window, until.Format(time.RFC3339))}
		return nil, &decision{result: c.fail(messages.OutcomeDeclined, rerr, d.attempts(), w.now())}
	}
	return t, nil
}

// errNotSent is what settleToken is told of an attempt reserved and never
// sent: it is given back.
var errNotSent = errors.New("the attempt was not sent")

// settleToken tells the governor what came of an attempt: a success clears
// the token's count, a decline stays counted and blocks the token when no
// retry can fix it, an attempt that did not reach the card (or whose
// outcome is unknown) is taken back or kept counted.
func (w *Worker) settleToken(ctx context.Context, d *delivery, t *ticket, tx *dintero.Transaction, err error) {
	if t == nil {
		return
	}
	var derr *dintero.Error
	errors.As(err, &derr)
	var gerr error
	switch {
	case err == nil:
		gerr = w.cfg.Tokens.TokenSucceeded(ctx, t.hash)
	case derr != nil && derr.Kind == dintero.KindDeclined:
		if reason := hardDecline(tx.LastError()); reason != "" && !w.cfg.DisableQuarantine {
			d.log.Info("card token blocked after a decline no retry can fix", "token_hash", t.hash[:16], "reason", reason)
			gerr = w.cfg.Tokens.TokenBlock(ctx, t.hash, reason)
		}
	case derr != nil && derr.Kind == dintero.KindUnknownOutcome:
		// It may have been declined: it stays counted.
	default:
		gerr = w.cfg.Tokens.TokenRelease(ctx, t.hash, t.attempt)
	}
	if gerr != nil {
		d.log.Warn("token governor: could not record the attempt", "err", gerr)
	}
}

// blockLearned blocks the charge's token for a hard decline learned by a
// lookup rather than from the pay call's answer (the answer was lost: a
// timeout, a crash, an outage), as settleToken does for one answered.
func (w *Worker) blockLearned(ctx context.Context, d *delivery, c *chargeRequest, tx *dintero.Transaction) {
	reason := hardDecline(tx.LastError())
	if w.cfg.Tokens == nil || w.cfg.DisableQuarantine || reason == "" {
		return
	}
	provider, token := c.token()
	if token == "" {
		return
	}
	hash := TokenHash(w.cfg.TokenKey, provider, token)
	d.log.Info("card token blocked after a decline no retry can fix (found by lookup)", "token_hash", hash[:16], "reason", reason)
	if err := w.cfg.Tokens.TokenBlock(ctx, hash, reason); err != nil {
		d.log.Warn("token governor: could not block the token", "err", err)
	}
}

// hardDecline returns why a decline blocks its token (DO_NOT_RETRY, or a
// decline type of HardDeclines), or "".
func hardDecline(e *dintero.EventError) string {
	if e == nil {
		return ""
	}
	if e.RetryPolicy != nil && slices.Contains(e.RetryPolicy.RetryCodes, dintero.RetryDoNotRetry) {
		return dintero.RetryDoNotRetry
	}
	for _, typ := range e.Type {
		if slices.Contains(HardDeclines, typ) {
			return typ
		}
	}
	return ""
}

// newAttemptID names one reserved attempt.
func newAttemptID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// token returns the provider and the card token the charge is made with.
func (c *chargeRequest) token() (provider, token string) {
	p := c.req.Payment.PaymentProductType
	if cu := c.req.Session.Customer; cu != nil {
		t := cu.Tokens[p]
		if t.RecurrenceToken != "" && c.req.Payment.Operation == messages.OperationRecurringPurchase {
			return p, t.RecurrenceToken
		}
		return p, t.PaymentToken
	}
	return p, ""
}
