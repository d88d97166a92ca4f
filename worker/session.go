package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
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

// call creates the session, once per reference. Dintero can neither fence
// nor find a session by merchant_reference, so the sessions created are
// also remembered apart from Redis (sessionLog, on JetStream): when Redis
// lost the reference's record, the session created before is the answer,
// not a second one the customer could pay as well.
func (s *sessionRequest) call(ctx context.Context, w *Worker, d *delivery) decision {
	ref := s.req.Order.MerchantReference
	prev, err := w.sessions.find(ctx, ref)
	if err != nil {
		return retry("sessions", fmt.Errorf("looking up the sessions created: %w", err))
	}
	if prev != nil {
		d.log.Info("a session was created for this reference before; answering with it", "session_id", prev.Result.SessionID)
		res := prev.Result
		res.Duplicate = prev.Seq != d.seq
		return finish(sessionResult(&res))
	}
	body := s.body
	if w.cfg.CallbackURL != "" {
		if body, err = withCallbackURL(body, w.cfg.CallbackURL); err != nil {
			return retry("internal", fmt.Errorf("setting the callback URL: %w", err))
		}
	}
	created, err := w.gw.CreateSessionProfile(ctx, body, dintero.WithFence(w.fence(d)))
	if err != nil {
		return s.refused(w, d, err)
	}
	res := s.base(w.now())
	res.Outcome, res.SessionID, res.URL = messages.OutcomeCreated, created.ID, created.URL
	first, err := w.sessions.remember(ctx, ref, d.seq, res)
	switch {
	case err != nil:
		// The result still goes to Redis and the publisher; a second
		// session becomes possible only if Redis loses the record too.
		d.log.Warn("could not remember the session apart from Redis", "session_id", created.ID, "err", err)
	case first.Result.SessionID != created.ID:
		// Another worker created and remembered one first (this one was
		// paused past its lease while Dintero created its own): answer with
		// that one; the session just made is never shown to anyone.
		d.log.Warn("another session was remembered for this reference first; answering with it",
			"session_id", first.Result.SessionID, "unused_session_id", created.ID)
		res = &first.Result
		res.Duplicate = first.Seq != d.seq
	}
	return finish(sessionResult(res))
}

// refused decides on a session Dintero did not create. Creating one moves
// no money, so anything but a refusal is simply tried again.
func (s *sessionRequest) refused(w *Worker, d *delivery, err error) decision {
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
	}
	return decision{reason: "dintero", err: err, after: derr.RetryAfter}
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
