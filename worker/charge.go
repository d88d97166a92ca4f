package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/messages"
)

// chargeKind is the merchant-initiated charge: POST /v1/sessions/pay.
var chargeKind = &kind{
	name:      messages.KindCharge,
	subject:   messages.SubjectChargeRequest,
	decode:    decodeCharge,
	reference: messages.MerchantReference,
	bare: func(ref string, outcome messages.Outcome, rerr *messages.ResultError, now time.Time) *result {
		return chargeResult(&messages.ChargeResult{MerchantReference: ref, Outcome: outcome, Error: rerr, CompletedAt: now.UTC()})
	},
	fromRecord: func(stored []byte, duplicate bool) (*result, error) {
		return answerWith(stored, duplicate, chargeResult, func(r *messages.ChargeResult) { r.Duplicate = true })
	},
}

// A chargeRequest is a valid charge request and its body, which is sent to
// Dintero as it came.
type chargeRequest struct {
	req     *messages.ChargeRequest
	body    []byte
	attempt int // the dunning attempt (dunning.go); 1 without dunning
	// reserved is the token's attempt taken before the call slot
	// (beforeSlot), for pay; succeeded is the token whose count pay's
	// success clears after the slot (afterSlot).
	reserved, succeeded *ticket
}

func decodeCharge(body []byte) (request, error) {
	req, err := messages.DecodeChargeRequest(body)
	if err != nil {
		return nil, err
	}
	return &chargeRequest{req: req, body: body}, nil
}

func (c *chargeRequest) ref() string          { return c.req.Session.Order.MerchantReference }
func (c *chargeRequest) key() idempotency.Key { return idempotency.ChargeKey(c.ref()) }

// call charges. A claim taken over from an owner that may have reached
// Dintero is looked up first. A charge this worker believes to be the
// reference's first is sent with strict-merchant-reference, so that a
// reference with history it does not know of (its record lost in Redis) is
// refused before it reaches the card, and looked up instead.
func (c *chargeRequest) call(ctx context.Context, w *Worker, d *delivery) decision {
	c.attempt = d.attempt
	if d.resolving {
		return w.resolveCharge(ctx, d, c)
	}
	if d.claim.State == idempotency.StateRecovered {
		d.log.Info("recovering an unfinished charge: looking it up at Dintero", "claims", d.claim.Attempts)
		if dec, found := w.lookupCharge(ctx, d, c); found {
			return dec
		}
		return c.pay(ctx, w, d, false)
	}
	// A dunning attempt follows declines of the same reference.
	return c.pay(ctx, w, d, d.attempt == 1)
}

// beforeSlot reserves the token's attempt of a charge that pays at once
// (neither resolving nor recovering), before the call slot: the slots bound
// the calls to Dintero, and the governor's round trip to Redis need not
// hold one.
func (c *chargeRequest) beforeSlot(ctx context.Context, w *Worker, d *delivery) *decision {
	if d.resolving || d.claim.State == idempotency.StateRecovered {
		return nil
	}
	t, blocked := w.acquireToken(ctx, d, c)
	if blocked != nil {
		return blocked
	}
	c.reserved = t
	return nil
}

// afterSlot clears the count of a token that was charged, and gives back
// an attempt reserved but never sent (the slot was not had: shutdown).
func (c *chargeRequest) afterSlot(ctx context.Context, w *Worker, d *delivery) {
	ctx = context.WithoutCancel(ctx)
	if t := c.succeeded; t != nil {
		c.succeeded = nil
		w.settleToken(ctx, d, t, nil, nil)
	}
	if t := c.reserved; t != nil {
		c.reserved = nil
		w.settleToken(ctx, d, t, nil, errNotSent)
	}
}

// pay sends the charge, strict or letting Dintero refuse only a second
// success, and decides on Dintero's answer.
func (c *chargeRequest) pay(ctx context.Context, w *Worker, d *delivery, strict bool) decision {
	t := c.reserved
	c.reserved = nil
	if t == nil {
		var blocked *decision
		if t, blocked = w.acquireToken(ctx, d, c); blocked != nil {
			return *blocked
		}
	}
	claimFence, tokenFence := w.fence(d), w.tokenFence(t)
	opts := []dintero.CallOption{dintero.WithFence(func(ctx context.Context) error {
		if err := claimFence(ctx); err != nil {
			return err
		}
		return tokenFence(ctx)
	})}
	if strict {
		opts = append(opts, dintero.WithStrictReference())
	}
	tx, err := w.gw.PaySession(ctx, c.body, opts...)
	if err != nil {
		w.settleToken(ctx, d, t, tx, err)
		if errors.Is(err, errTokenBlocked) {
			// Blocked by another request's decline while this one waited.
			return w.tokenBlocked(d, c, t.hash, t.blockedBy)
		}
		return c.payFailed(ctx, w, d, strict, err)
	}
	c.succeeded = t
	if c.attempt > 1 {
		w.m.dunningRecovered(c.attempt, tx.Amount, tx.Currency)
	}
	return finish(c.fromTransaction(tx, d.attempts(), w.now()))
}

// payFailed decides on a pay call that did not succeed: declined, refused,
// or with an outcome to find out.
func (c *chargeRequest) payFailed(ctx context.Context, w *Worker, d *delivery, strict bool, err error) decision {
	if errors.Is(err, errLostClaim) {
		return decision{reason: "lost_claim", err: err, wait: true}
	}
	var derr *dintero.Error
	if !errors.As(err, &derr) {
		return unsure("dintero", err)
	}
	switch derr.Kind {
	case dintero.KindDeclined:
		w.m.declined(derr.Transaction.LastError())
		return w.dun(d, c, derr.Transaction)
	case dintero.KindUnknownOutcome:
		// The card may have been charged: ask Dintero what happened.
		if dec, found := w.lookupCharge(ctx, d, c); found {
			return dec
		}
		return unsure("dintero", fmt.Errorf("outcome unknown, and no transaction found yet: %w", err))
	case dintero.KindInvalid:
		// Refused as invalid, which is also how a strict toggle refuses
		// a used reference: find out which.
		if dec, found := w.lookupCharge(ctx, d, c); found {
			return dec
		}
		if strict && derr.DuplicateReference() {
			// Used by a session that holds no transaction (an attempt
			// that never reached the card, a customer's unpaid session).
			return c.pay(ctx, w, d, false)
		}
		rerr := dinteroError(derr)
		return decision{result: c.fail(messages.OutcomeRejected, rerr, d.attempts(), w.now()),
			deadLetter: "rejected by Dintero: " + rerr.Message}
	case dintero.KindPermanent:
		// 403, 404 and the like: nothing was charged, and repeating the
		// request will not help until the account is fixed.
		rerr := dinteroError(derr)
		return decision{result: c.fail(messages.OutcomeFailed, rerr, d.attempts(), w.now()),
			deadLetter: "refused by Dintero: " + rerr.Message}
	case dintero.KindTransient:
		return decision{reason: "dintero", err: err, after: derr.RetryAfter}
	case dintero.KindAuth:
		w.log.Error("Dintero refused our credentials; check DINTERO_CLIENT_ID and DINTERO_CLIENT_SECRET", "err", derr)
		return retry("auth", err)
	}
	return unsure("dintero", err)
}

// lookupCharge asks Dintero what it holds for the request's reference.
// found is false when it holds nothing. Otherwise dec is the final result
// of a transaction that is this request's, a conflict for one that is not
// (a charge of another card, amount or operation, or a customer's payment
// of a session), or a retry while a transaction is pending or the lookup
// fails. A decline on record decides the request: it is not charged again.
func (w *Worker) lookupCharge(ctx context.Context, d *delivery, c *chargeRequest) (dec decision, found bool) {
	ref := c.ref()
	txs, err := w.gw.TransactionsByMerchantReference(ctx, ref)
	if err != nil {
		return unsure("lookup", fmt.Errorf("transaction lookup: %w", err)), true
	}
	if d.attempt > 1 {
		// A dunning attempt: the declines of the attempts before it are
		// why it is made, not its answer.
		txs = slices.DeleteFunc(txs, func(tx dintero.Transaction) bool {
			return dintero.Declined(tx.Status) && tx.CreatedAt.Before(d.attemptSince())
		})
	}
	tx, pick := pickTransaction(txs)
	switch pick {
	case pickNone:
		return decision{}, false
	case pickPending:
		return unsure("dintero", fmt.Errorf("transaction %s is %s at Dintero", tx.ID, tx.Status)), true
	}
	if n := countSucceeded(txs); n > 1 {
		d.log.Error("Dintero holds more than one successful charge for one merchant_reference", "charges", n)
	}
	same, err := w.sameCharge(ctx, c, tx)
	if err != nil {
		// Dintero lists a transaction; only fetching it failed ("verify",
		// not "lookup": an operator's verdict must not contradict it).
		return unsure("verify", err), true
	}
	if same && pick == pickDeclined {
		w.blockLearned(ctx, d, c, tx)
		return w.dun(d, c, tx), true
	}
	if !same {
		// The reference was used for something else, and this request's
		// record was lost: drop the record this request just made, so that
		// the request the transaction belongs to is answered from Dintero.
		rerr := conflictError(ref)
		d.log.Warn("merchant_reference already used at Dintero by another payment; rejecting", "transaction_id", tx.ID)
		return decision{result: c.fail(messages.OutcomeRejected, rerr, d.attempts(), w.now()),
			deadLetter: "conflict: " + rerr.Message, forget: true}, true
	}
	return finish(c.fromTransaction(tx, d.attempts(), w.now())), true
}

// sameCharge reports whether tx is this request's charge: the same amount,
// currency, provider and operation (a customer's payment of a session has
// no merchant-initiated operation), and, when Dintero tells, the same card
// token.
func (w *Worker) sameCharge(ctx context.Context, c *chargeRequest, tx *dintero.Transaction) (bool, error) {
	o, p := c.req.Session.Order, c.req.Payment
	if tx.Amount != o.Amount || tx.Currency != o.Currency || tx.PaymentOperation != p.Operation ||
		(tx.PaymentProductType != "" && tx.PaymentProductType != p.PaymentProductType) {
		return false, nil
	}
	var want string
	if cu := c.req.Session.Customer; cu != nil {
		t := cu.Tokens[p.PaymentProductType]
		want = t.PaymentToken
		if t.RecurrenceToken != "" {
			want = t.RecurrenceToken
		}
	}
	full, err := w.gw.GetTransaction(ctx, tx.ID, dintero.IncludePaymentToken, dintero.IncludeRecurrenceToken)
	if err != nil {
		return false, fmt.Errorf("fetching transaction %s: %w", tx.ID, err)
	}
	if full.Card == nil || (full.Card.PaymentToken == "" && full.Card.RecurrenceToken == "") {
		return true, nil // Dintero does not say which card: the rest matched
	}
	return want != "" && (full.Card.PaymentToken == want || full.Card.RecurrenceToken == want), nil
}

type pickKind int

const (
	pickNone pickKind = iota
	pickSucceeded
	pickPending
	pickDeclined
)

// pickTransaction chooses the transaction that decides a reference: the
// oldest success, else anything still pending, else the newest decline.
func pickTransaction(txs []dintero.Transaction) (*dintero.Transaction, pickKind) {
	var succeeded, pending, declined *dintero.Transaction
	for i := range txs {
		tx := &txs[i]
		switch {
		case dintero.Succeeded(tx.Status):
			if succeeded == nil || tx.CreatedAt.Before(succeeded.CreatedAt) {
				succeeded = tx
			}
		case dintero.Declined(tx.Status):
			if declined == nil || tx.CreatedAt.After(declined.CreatedAt) {
				declined = tx
			}
		default:
			pending = tx
		}
	}
	switch {
	case succeeded != nil:
		return succeeded, pickSucceeded
	case pending != nil:
		return pending, pickPending
	case declined != nil:
		return declined, pickDeclined
	}
	return nil, pickNone
}

func countSucceeded(txs []dintero.Transaction) int {
	n := 0
	for i := range txs {
		if dintero.Succeeded(txs[i].Status) {
			n++
		}
	}
	return n
}

// fromTransaction is the final result for a transaction of this request:
// succeeded, or declined with Dintero's reasons.
func (c *chargeRequest) fromTransaction(tx *dintero.Transaction, attempts int, now time.Time) *result {
	res := c.base(attempts, now)
	res.Status, res.TransactionID, res.SessionID = tx.Status, tx.ID, tx.SessionID
	if tx.Amount != 0 {
		res.Amount = tx.Amount
	}
	if tx.Currency != "" {
		res.Currency = tx.Currency
	}
	if dintero.Succeeded(tx.Status) {
		res.Outcome = messages.OutcomeSucceeded
	} else {
		res.Outcome = messages.OutcomeDeclined
		res.Error = declineError(tx)
	}
	return chargeResult(res)
}

func (c *chargeRequest) fail(outcome messages.Outcome, rerr *messages.ResultError, attempts int, now time.Time) *result {
	res := c.base(attempts, now)
	res.Outcome, res.Error = outcome, rerr
	return chargeResult(res)
}

func (c *chargeRequest) base(attempts int, now time.Time) *messages.ChargeResult {
	res := &messages.ChargeResult{
		MerchantReference:  c.ref(),
		Amount:             c.req.Session.Order.Amount,
		Currency:           c.req.Session.Order.Currency,
		PaymentProductType: c.req.Payment.PaymentProductType,
		Operation:          c.req.Payment.Operation,
		Attempts:           attempts,
		CompletedAt:        now.UTC(),
	}
	if c.attempt > 1 {
		res.Attempt = c.attempt
	}
	return res
}
