package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/messages"
)

// sessionKind is the customer-initiated session with a saved token: POST
// /v1/sessions-profile. Its created result carries the URL the customer
// opens; the completed or failed result follows from Dintero's callback
// (see Callbacks).
var sessionKind = &kind{
	name:        messages.KindSession,
	subject:     messages.SubjectSessionRequest,
	msgIDPrefix: "session:",
	decode:      decodeSession,
	reference:   messages.SessionMerchantReference,
	bare: func(ref string, outcome messages.Outcome, rerr *messages.ResultError, now time.Time) *result {
		return sessionResult(&messages.SessionResult{MerchantReference: ref, Outcome: outcome, Error: rerr, CompletedAt: now.UTC()})
	},
	fromRecord: func(stored []byte, duplicate bool) (*result, error) {
		return answerWith(stored, duplicate, sessionResult, func(r *messages.SessionResult) { r.Duplicate = true })
	},
}

// A sessionRequest is a valid session request and its body.
type sessionRequest struct {
	req  *messages.SessionRequest
	body []byte
}

func decodeSession(body []byte) (request, error) {
	req, err := messages.DecodeSessionRequest(body)
	if err != nil {
		return nil, err
	}
	return &sessionRequest{req: req, body: body}, nil
}

func (s *sessionRequest) key() idempotency.Key {
	return idempotency.SessionKey(s.req.Order.MerchantReference)
}

// call creates the session, once per reference. Dintero cannot fence a
// session's creation by merchant_reference, so the sessions created are
// remembered apart from Redis (sessionLog, on JetStream; the first
// remembered wins): when Redis lost the reference's record, the session
// remembered is the answer, not a second one the customer could pay as
// well. Only a remembered session is ever answered.
//
// Deliveries of one reference can still each make a session at Dintero:
// one paused past its lease while another took over, one killed after
// Dintero made its session while Redis lost its claim, one whose answer
// was lost (a timeout, a reset, a 5xx after Dintero made it). Every session
// but the remembered one is cancelled: by the delivery that made it and
// learnt it lost, and by a sweep of the reference's sessions at Dintero
// whenever a delivery answers here (a claim that is new may be one whose
// record Redis lost, so even a new one cannot tell that no session was
// made before; requests answered from their record never get here). A
// delivery answers only once its sweep has run: when the sweep cannot
// (Dintero unreachable), the request is tried again, and parked after its
// last delivery, like one whose creation went unanswered.
//
// A request whose creation may have made a session that Dintero cannot
// tell about yet is never answered failed: after its last delivery it is
// parked (park.go), and resolveSession decides on the schedule.
func (s *sessionRequest) call(ctx context.Context, w *Worker, d *delivery) decision {
	if d.resolving {
		return w.resolveSession(ctx, d, s)
	}
	dec := s.create(ctx, w, d, d.seq)
	if dec.result == nil && d.claim.State == idempotency.StateRecovered {
		// An earlier delivery may have made a session (its answer lost, or
		// its owner gone): this one failing before it reached Dintero does
		// not make that "nothing was created".
		dec.maybeSent = true
	}
	return dec
}

// create answers with the session remembered for the reference, or creates
// one, remembers it for request seq (d's own, or the parked request's that
// d resolves) and answers seq with the one remembered.
func (s *sessionRequest) create(ctx context.Context, w *Worker, d *delivery, seq uint64) decision {
	ref := s.req.Order.MerchantReference
	prev, err := w.sessions.find(ctx, ref)
	if err != nil {
		return retry("sessions", fmt.Errorf("looking up the sessions created: %w", err))
	}
	if prev != nil {
		d.log.Info("a session was created for this reference before; answering with it", "session_id", prev.Result.SessionID)
		if err := s.sweep(ctx, w, d, prev.Result.SessionID); err != nil {
			return s.unswept(d, prev.Result.SessionID, err)
		}
		return s.answer(prev, seq)
	}
	body := s.body
	if w.cfg.CallbackURL != "" {
		if body, err = withCallbackURL(body, w.cfg.CallbackURL); err != nil {
			return retry("internal", fmt.Errorf("setting the callback URL: %w", err))
		}
	}
	created, err := w.gw.CreateSessionProfile(ctx, body, dintero.WithFence(w.fence(d)))
	if err != nil {
		return s.refused(ctx, w, d, err)
	}
	res := s.base(w.now())
	res.Outcome, res.SessionID, res.URL = messages.OutcomeCreated, created.ID, created.URL
	first, err := w.sessions.remember(ctx, ref, seq, res)
	if err != nil {
		// Answering with a session not remembered could show the customer
		// one that a later delivery, remembering another, cancels: try
		// again; the next delivery finds this one remembered, or makes
		// another and cancels this one.
		d.log.Warn("could not remember the session apart from Redis; trying again", "session_id", created.ID, "err", err)
		return unsure("sessions", fmt.Errorf("remembering session %s: %w", created.ID, err))
	}
	lost := first.Result.SessionID != created.ID
	if lost {
		// Another delivery created and remembered one first (this one was
		// paused past its lease, or Redis lost the claim, while Dintero
		// created its own): answer with that one, and cancel the one just
		// made, which nobody is shown.
		d.log.Warn("another session was remembered for this reference first; answering with it and cancelling the one just made",
			"session_id", first.Result.SessionID, "unused_session_id", created.ID)
	}
	var done []string
	if lost && s.cancel(ctx, w, d, created.ID) == nil {
		done = append(done, created.ID)
	}
	if err := s.sweep(ctx, w, d, first.Result.SessionID, done...); err != nil {
		return s.unswept(d, first.Result.SessionID, err)
	}
	return s.answer(first, seq)
}

// unswept is the decision when the sweep before an answer failed: Dintero
// may hold another live session of the reference besides keep, the one
// remembered, so the request is tried again (and parked after its last
// delivery) rather than answered; the next delivery answers with keep.
func (s *sessionRequest) unswept(d *delivery, keep string, err error) decision {
	d.log.Warn("could not make sure Dintero holds no other session for this reference; answering later", "session_id", keep, "err", err)
	return unsure("sweep", fmt.Errorf("sweeping the reference's sessions besides %s: %w", keep, err))
}

// answer is the decision to answer with the session e remembers, marked
// duplicate unless seq, the request answered, is the one that created it.
func (s *sessionRequest) answer(e *sessionEntry, seq uint64) decision {
	res := e.Result
	res.Duplicate = e.Seq != seq
	return finish(sessionResult(&res))
}

// refused decides on a session Dintero did not create, or may have
// created without saying so. Creating one moves no money, so anything but
// a refusal is simply tried again.
func (s *sessionRequest) refused(ctx context.Context, w *Worker, d *delivery, err error) decision {
	if errors.Is(err, errLostClaim) {
		return decision{reason: "lost_claim", err: err, wait: true}
	}
	var derr *dintero.Error
	if !errors.As(err, &derr) {
		return retry("dintero", err)
	}
	switch derr.Kind {
	case dintero.KindInvalid, dintero.KindPermanent:
		rerr := dinteroError(derr)
		return decision{result: s.fail(messages.OutcomeRejected, rerr, d.attempts(), w.now()),
			deadLetter: "rejected by Dintero: " + rerr.Message}
	case dintero.KindAuth:
		w.log.Error("Dintero refused our credentials; check DINTERO_CLIENT_ID and DINTERO_CLIENT_SECRET", "err", derr)
		return retry("auth", err)
	case dintero.KindUnknownOutcome:
		// Dintero may hold a session whose id this delivery never learns.
		// When another delivery's session is remembered, that one is the
		// answer and any other is cancelled; otherwise a later delivery
		// (the claim recovered) makes and remembers one, and its sweep
		// cancels this one's; after the last delivery the request is
		// parked, and the lookup on the schedule decides.
		prev, ferr := w.sessions.find(ctx, s.req.Order.MerchantReference)
		if ferr == nil && prev != nil {
			d.log.Info("a session was remembered for this reference while this one's creation went unanswered; answering with it",
				"session_id", prev.Result.SessionID, "err", err)
			if err := s.sweep(ctx, w, d, prev.Result.SessionID); err != nil {
				return s.unswept(d, prev.Result.SessionID, err)
			}
			return s.answer(prev, d.seq)
		}
		return decision{reason: "dintero", err: err, after: derr.RetryAfter, maybeSent: true}
	}
	return decision{reason: "dintero", err: err, after: derr.RetryAfter}
}

// sweep cancels the sessions Dintero holds for the request's reference
// besides keep, the remembered one: sessions that this or an earlier
// delivery made and nobody was shown (see unused), skipping those already
// cancelled (done). It fails when the sessions cannot be listed or one of
// them cannot be cancelled.
func (s *sessionRequest) sweep(ctx context.Context, w *Worker, d *delivery, keep string, done ...string) error {
	found, err := w.gw.SessionsByMerchantReference(ctx, s.req.Order.MerchantReference)
	if err != nil {
		return fmt.Errorf("looking up the sessions Dintero holds for the reference: %w", err)
	}
	return s.cancelAll(ctx, w, d, s.unused(d, found, keep, done...))
}

// unused returns the sessions of found that nobody can have been shown
// besides keep (the remembered one) and done (cancelled already): open
// sessions made from this request (its amount, currency and return_url; a
// charge's session has no return_url). A paid one is logged, never
// returned: a cancel would void its authorization.
func (s *sessionRequest) unused(d *delivery, found []dintero.Session, keep string, done ...string) []dintero.Session {
	var out []dintero.Session
	o := s.req.Order
	for _, ss := range found {
		switch {
		case ss.ID == keep || ss.Cancelled() || slices.Contains(done, ss.ID):
		case ss.Order.Amount != o.Amount || ss.Order.Currency != o.Currency || ss.URL.ReturnURL != s.req.URL.ReturnURL:
		case ss.TransactionID != "":
			d.log.Error("Dintero holds a paid session for this reference besides the one answered; check it in Dintero's backoffice",
				"session_id", keep, "paid_session_id", ss.ID, "transaction_id", ss.TransactionID)
		default:
			out = append(out, ss)
		}
	}
	return out
}

// paid returns the sessions of found made from this request that hold a
// transaction.
func (s *sessionRequest) paid(found []dintero.Session) []string {
	var out []string
	o := s.req.Order
	for _, ss := range found {
		if !ss.Cancelled() && ss.TransactionID != "" && ss.Order.Amount == o.Amount && ss.Order.Currency == o.Currency &&
			ss.URL.ReturnURL == s.req.URL.ReturnURL {
			out = append(out, ss.ID)
		}
	}
	return out
}

// cancelAll cancels sessions nobody was shown; it fails when one of them
// could not be cancelled.
func (s *sessionRequest) cancelAll(ctx context.Context, w *Worker, d *delivery, sessions []dintero.Session) error {
	var errs []error
	for _, ss := range sessions {
		errs = append(errs, s.cancel(ctx, w, d, ss.ID))
	}
	return errors.Join(errs...)
}

// cancel cancels a session nobody was shown. A failure is logged with the
// session id and returned, except Dintero's refusal (a session paid or
// closed meanwhile), which a repeat would not change.
func (s *sessionRequest) cancel(ctx context.Context, w *Worker, d *delivery, id string) error {
	_, err := w.gw.CancelSession(ctx, id)
	if err == nil {
		d.log.Info("cancelled a session nobody was shown", "unused_session_id", id)
		return nil
	}
	if derr, ok := errors.AsType[*dintero.Error](err); ok && derr.Kind == dintero.KindInvalid {
		d.log.Error("Dintero refused to cancel a session nobody was shown (paid or closed meanwhile); check it in Dintero's backoffice",
			"unused_session_id", id, "err", err)
		return nil
	}
	d.log.Warn("could not cancel a session nobody was shown", "unused_session_id", id, "err", err)
	return fmt.Errorf("cancelling session %s: %w", id, err)
}

// resolveSession is the Dintero step of a parked session request (see
// park.go): a lookup of the reference's sessions; a session is created only
// where one that nobody can have been shown is known to exist. What Dintero
// holds decides:
//
//   - a session remembered (the one a customer may have been shown) is the
//     answer, once every other open session of the request is cancelled;
//   - open sessions of the request, none remembered: Dintero lists no
//     session's payment page, so none of them can be answered; one is
//     created as by call (remembered, and the others cancelled by its
//     sweep), and is the answer;
//   - none: failed (not_created): Dintero holds no session of the request
//     that anyone could pay; the request may be sent again;
//   - the lookup, a cancel or the creation failing (or its answer lost)
//     parks the request again.
//
// An operator's verdict (payctl resolve --as failed) applies unless a
// session was remembered: the open sessions found are cancelled, best
// effort, and the request fails with closed_by_operator.
func (w *Worker) resolveSession(ctx context.Context, d *delivery, s *sessionRequest) decision {
	if d.origin.copy {
		w.m.parkedAge(w.now().Sub(d.published))
	}
	ref, seq := s.req.Order.MerchantReference, d.recordSeq()
	prev, err := w.sessions.find(ctx, ref)
	if err != nil {
		return parkAgain("sessions", fmt.Errorf("looking up the sessions created: %w", err))
	}
	found, lerr := w.gw.SessionsByMerchantReference(ctx, ref)
	if lerr != nil {
		lerr = fmt.Errorf("session lookup: %w", lerr)
	}
	as := d.origin.resolveAs
	if prev != nil {
		if as != "" {
			d.log.Warn("a session was answered for this reference: the operator's verdict is not applied",
				"resolve_as", as, "session_id", prev.Result.SessionID, "by", d.origin.by)
		}
		if lerr != nil {
			return parkAgain("lookup", lerr)
		}
		if err := s.cancelAll(ctx, w, d, s.unused(d, found, prev.Result.SessionID)); err != nil {
			return parkAgain("sweep", err)
		}
		w.m.resolved(messages.OutcomeCreated, d.origin.step)
		return w.resolvedFor(d, s.answer(prev, seq))
	}
	if as != "" {
		// failed, or declined, which a session cannot be: either way the
		// operator closes it.
		if lerr == nil {
			_ = s.cancelAll(ctx, w, d, s.unused(d, found, ""))
		}
		d.log.Warn("closed by an operator", "resolve_as", as, "by", d.origin.by, "why", d.origin.why)
		rerr := &messages.ResultError{Code: messages.CodeClosedByOperator,
			Message: capMessage("closed as failed by " + d.origin.by + ": " + d.origin.why)}
		w.m.resolved(messages.OutcomeFailed, d.origin.step)
		return w.resolvedFor(d, finish(s.fail(messages.OutcomeFailed, rerr, d.attempts(), w.now())))
	}
	if lerr != nil {
		return parkAgain("lookup", lerr)
	}
	return w.resolveUnanswered(ctx, d, s, found, seq)
}

// resolveUnanswered resolves a parked session request that no session
// was answered for, from the sessions Dintero holds for its reference.
func (w *Worker) resolveUnanswered(ctx context.Context, d *delivery, s *sessionRequest, found []dintero.Session, seq uint64) decision {
	if paid := s.paid(found); len(paid) > 0 {
		// Nobody is shown a session that is not remembered, so nobody can
		// have paid one: an operator must look.
		return parkAgain("review", fmt.Errorf("paid session(s) %s at Dintero for the reference, none remembered as answered: check them in Dintero's backoffice",
			strings.Join(paid, ", ")))
	}
	open := s.unused(d, found, "")
	if len(open) == 0 {
		rerr := &messages.ResultError{Code: messages.CodeNotCreated,
			Message: "Dintero holds no session for this merchant_reference that anyone could pay: none was created; the request may be sent again"}
		w.m.resolved(messages.OutcomeFailed, d.origin.step)
		return w.resolvedFor(d, finish(s.fail(messages.OutcomeFailed, rerr, d.attempts(), w.now())))
	}
	d.log.Info("Dintero holds sessions of this request that nobody was shown; creating the one to answer with, and cancelling those",
		"unused_sessions", len(open))
	dec := s.create(ctx, w, d, seq)
	switch {
	case dec.result == nil:
		dec.park = !dec.wait
		return dec
	case dec.result.outcome != messages.OutcomeCreated:
		// Refused: the sessions found were nobody's; none may stay open
		// behind a final answer.
		if err := s.cancelAll(ctx, w, d, open); err != nil {
			return parkAgain("sweep", err)
		}
	}
	w.m.resolved(dec.result.outcome, d.origin.step)
	return w.resolvedFor(d, dec)
}

// event is a non-final event of a session request: unknown, needs_review.
func (s *sessionRequest) event(outcome messages.Outcome, rerr *messages.ResultError, next time.Time, _ int, now time.Time) *result {
	res := s.base(now)
	res.Outcome, res.Error = outcome, rerr
	n := next.UTC()
	res.NextCheckAt = &n
	return sessionResult(res)
}

func (s *sessionRequest) fail(outcome messages.Outcome, rerr *messages.ResultError, _ int, now time.Time) *result {
	res := s.base(now)
	res.Outcome, res.Error = outcome, rerr
	return sessionResult(res)
}

func (s *sessionRequest) base(now time.Time) *messages.SessionResult {
	return &messages.SessionResult{
		MerchantReference: s.req.Order.MerchantReference,
		Amount:            s.req.Order.Amount,
		Currency:          s.req.Order.Currency,
		CompletedAt:       now.UTC(),
	}
}

// withCallbackURL returns body with url.callback_url set to callback plus
// report_error=true. Other fields are kept as they are.
func withCallbackURL(body []byte, callback string) ([]byte, error) {
	u, err := url.Parse(callback)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("report_error", "true")
	u.RawQuery = q.Encode()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, err
	}
	urls := map[string]json.RawMessage{}
	if raw, ok := top["url"]; ok {
		if err := json.Unmarshal(raw, &urls); err != nil {
			return nil, err
		}
	}
	if urls["callback_url"], err = json.Marshal(u.String()); err != nil {
		return nil, err
	}
	if top["url"], err = json.Marshal(urls); err != nil {
		return nil, err
	}
	return json.Marshal(top)
}

// A sessionLog remembers, per merchant_reference, the session created for
// it, in a JetStream key-value bucket: durable apart from Redis, replicated
// like the streams, kept as long as results are.
type sessionLog struct{ kv jetstream.KeyValue }

// sessionEntry is what the log keeps: the created result and the request
// message that created it.
type sessionEntry struct {
	Seq    uint64                 `json:"seq"`
	Result messages.SessionResult `json:"result"`
}

// find returns the entry of ref, or nil when it has none.
func (l *sessionLog) find(ctx context.Context, ref string) (*sessionEntry, error) {
	e, err := l.kv.Get(ctx, sessionLogKey(ref))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var entry sessionEntry
	if err := json.Unmarshal(e.Value(), &entry); err != nil {
		return nil, fmt.Errorf("session log entry: %w", err)
	}
	return &entry, nil
}

// remember keeps res as ref's session unless one is kept already: the
// first remembered wins, and is returned.
func (l *sessionLog) remember(ctx context.Context, ref string, seq uint64, res *messages.SessionResult) (*sessionEntry, error) {
	e := sessionEntry{Seq: seq, Result: *res}
	_, err := l.kv.Create(ctx, sessionLogKey(ref), mustJSON(e))
	if errors.Is(err, jetstream.ErrKeyExists) {
		prev, ferr := l.find(ctx, ref)
		if ferr == nil && prev != nil {
			return prev, nil
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	return &e, nil
}

// sessionLogKey is a bucket key for any reference: its SHA-256, in hex
// (a key may hold only letters, digits and -/_=.).
func sessionLogKey(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return hex.EncodeToString(sum[:])
}
