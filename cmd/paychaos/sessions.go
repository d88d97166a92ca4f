package main

// Customer-initiated session requests beside the charges (issue 12 item
// 1): each reference is asked for twice, the second time some seconds
// later as a publisher's retry (another Nats-Msg-Id), so that a session
// whose record Redis lost in between (FLUSHALL, the failover) is asked for
// again. The audit checks that every session request got one answer
// (created, failed or rejected; the non-final unknown and needs_review
// events of a parked request are counted apart), that Dintero holds at most
// one live (not cancelled) session per reference, that no request was
// answered with a cancelled one, and that no request was answered failed
// while Dintero held a live session for its reference (failed means Dintero
// holds none); the extra sessions the workers cancelled are reported.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/cmd/internal/stack"
	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/messages/publish"
)

// sessionMsg is one session request to publish.
type sessionMsg struct {
	Ref   string
	MsgID string
	Retry bool          // the second request of the reference
	Due   time.Duration // after the start of the load
	Body  []byte
}

// newSessionPlan spreads n references over loadDur, each sent a second
// time 3 to 10 seconds after the first.
func newSessionPlan(seed int64, n int, loadDur time.Duration) ([]sessionMsg, error) {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5e55))
	out := make([]sessionMsg, 0, 2*n)
	for i := range n {
		ref := fmt.Sprintf("chaos-%d-s%05d", seed, i)
		req := messages.SessionRequest{
			URL:   messages.SessionURL{ReturnURL: "https://example.com/thanks"},
			Order: messages.Order{Amount: 100 + rng.Int64N(99_900), Currency: "NOK", MerchantReference: ref},
			Customer: &messages.Customer{Tokens: map[string]messages.CardTokens{
				products[rng.IntN(len(products))]: {PaymentToken: fmt.Sprintf("%s%016x", dinterotest.TokenAuthorized, rng.Uint64())},
			}},
			ProfileID: "default",
		}
		if err := req.Validate(); err != nil {
			return nil, fmt.Errorf("session plan %s: %w", ref, err)
		}
		body, err := json.Marshal(&req)
		if err != nil {
			return nil, err
		}
		due := time.Duration(float64(loadDur) * float64(i) / float64(max(n, 1)))
		retry := due + 3*time.Second + time.Duration(rng.Int64N(int64(7*time.Second)))
		out = append(out,
			sessionMsg{Ref: ref, MsgID: ref, Due: due, Body: body},
			sessionMsg{Ref: ref, MsgID: ref + ":retry", Retry: true, Due: retry, Body: body})
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Due < out[b].Due })
	return out, nil
}

// sessionPub is a session request the stream accepted.
type sessionPub struct {
	sessionMsg
	Seq uint64
}

// sessionLoad publishes the session plan.
type sessionLoad struct {
	js   jetstream.JetStream
	msgs []sessionMsg
	log  *slog.Logger
	mu   sync.Mutex
	pubs []sessionPub
}

// run publishes every message at its time after start, retrying each
// until the stream takes it.
func (sl *sessionLoad) run(ctx context.Context, start time.Time) error {
	for _, m := range sl.msgs {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(time.Until(start.Add(m.Due))):
		}
		for attempt := 1; ; attempt++ {
			pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			ack, err := publish.SessionBody(pctx, sl.js, m.Body, m.MsgID)
			cancel()
			if err == nil {
				sl.mu.Lock()
				sl.pubs = append(sl.pubs, sessionPub{sessionMsg: m, Seq: ack.Sequence})
				sl.mu.Unlock()
				break
			}
			var verr *messages.ValidationError
			if errors.As(err, &verr) || ctx.Err() != nil {
				return fmt.Errorf("publish session %s: %w", m.MsgID, err)
			}
			if attempt == 1 || attempt%20 == 0 {
				sl.log.Info("session publish failed; retrying", "msg_id", m.MsgID, "attempt", attempt, "err", err)
			}
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	return nil
}

func (sl *sessionLoad) published() []sessionPub {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return append([]sessionPub(nil), sl.pubs...)
}

// seqs returns the request sequences of the published session requests.
func (sl *sessionLoad) seqs() []uint64 {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	out := make([]uint64, len(sl.pubs))
	for i, p := range sl.pubs {
		out[i] = p.Seq
	}
	return out
}

// sessionResult is one session result of the results stream.
type sessionResult struct {
	ReqSeq    uint64
	MsgID     string
	At        time.Time // when the results stream stored it
	Result    messages.SessionResult
	DecodeErr error
}

// answers reports whether a session result answers its request: created
// (the customer is never shown the page here), failed or rejected; not the
// non-final unknown and needs_review events of a parked request.
func (r sessionResult) answers() bool {
	o := r.Result.Outcome
	return o == messages.OutcomeCreated || o.Final()
}

// isSessionResult reports whether a results-stream subject is a session's.
func isSessionResult(subject string) bool {
	return strings.HasPrefix(subject, "payments."+messages.KindSession+".")
}

func decodeSessionResult(m jetstream.Msg) sessionResult {
	r := sessionResult{MsgID: m.Headers().Get(messages.HeaderMsgID)}
	if md, err := m.Metadata(); err == nil {
		r.At = md.Timestamp
	}
	if _, _, seq, ok := parseResultMsgID(r.MsgID); ok {
		r.ReqSeq = seq
	}
	r.DecodeErr = json.Unmarshal(m.Data(), &r.Result)
	return r
}

// dinteroSession is an entry of the sandbox's /__sandbox/sessions.
type dinteroSession struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"`
	State string `json:"state"` // dinterotest.SessionOpen, SessionPaid, SessionCancelled
	Order struct {
		MerchantReference string `json:"merchant_reference"`
	} `json:"order"`
	CreatedAt   time.Time `json:"created_at"`
	CancelledAt time.Time `json:"cancelled_at"`
}

func (s dinteroSession) cancelled() bool { return s.State == dinterotest.SessionCancelled }

// liveAt reports whether Dintero held s, not cancelled, at t.
func (s dinteroSession) liveAt(t time.Time) bool {
	return s.CreatedAt.Before(t) && (!s.cancelled() || s.CancelledAt.After(t))
}

// sessionInput is what the session audit reads.
type sessionInput struct {
	Published []sessionPub
	Results   []sessionResult
	Dintero   []dinteroSession
}

// collectSessions reads the sandbox's sessions.
func collectSessions(ctx context.Context, st *stack.Stack, si *sessionInput) error {
	return stack.GetJSON(ctx, st.Sandbox.AdminURL()+"sessions", &si.Dintero)
}

// sessionReport is the session part of the audit.
type sessionReport struct {
	Published         int
	NoResult          int // session requests without an answer; must be 0
	Extra             int // answers beyond one per session request; must be 0
	MultiSession      int // references with more than one live Dintero session; must be 0
	AnsweredCancelled int // session requests answered with a session Dintero holds cancelled; must be 0
	// FailedButHeld: session requests answered failed while Dintero held
	// a live session for the reference; must be 0.
	FailedButHeld int
	Outcomes      map[messages.Outcome]int // answers by outcome
	Interim       map[messages.Outcome]int // non-final events (unknown, needs_review) by outcome
	Duplicates    int                      // answers marked duplicate
	// Cancelled are the extra sessions the workers cancelled, by reference
	// (reported, not a violation: a second session was made, and nobody
	// can pay it).
	Cancelled []dinteroSession
}

// auditSessions checks the session requests: one answer each, one live
// Dintero session per reference, never a cancelled one answered, never
// failed while Dintero held a live session for the reference, and a retry
// answered with the first session.
func auditSessions(in sessionInput, r *report) {
	sr := sessionReport{Published: len(in.Published), Outcomes: map[messages.Outcome]int{}, Interim: map[messages.Outcome]int{}}
	bySeq := map[uint64][]sessionResult{}
	for _, res := range in.Results {
		if res.DecodeErr != nil {
			sr.Extra++
			r.problem("session result %q does not decode: %v", res.MsgID, res.DecodeErr)
			continue
		}
		if !res.answers() {
			sr.Interim[res.Result.Outcome]++
			continue
		}
		bySeq[res.ReqSeq] = append(bySeq[res.ReqSeq], res)
	}
	byRef := map[string][]dinteroSession{}
	for _, s := range in.Dintero {
		if s.Kind == "profile" {
			byRef[s.Order.MerchantReference] = append(byRef[s.Order.MerchantReference], s)
		}
	}
	sessionOf := map[string]string{} // reference -> the session id its results name
	for _, p := range in.Published {
		got := bySeq[p.Seq]
		switch {
		case len(got) == 0:
			sr.NoResult++
			r.problem("no result for session request %s (request seq %d)", p.MsgID, p.Seq)
			continue
		case len(got) > 1:
			sr.Extra += len(got) - 1
			r.problem("%d results for session request %s (request seq %d)", len(got), p.MsgID, p.Seq)
		}
		res := got[0].Result
		sr.Outcomes[res.Outcome]++
		if res.Duplicate {
			sr.Duplicates++
		}
		if res.Outcome == messages.OutcomeFailed {
			// A session made after the failed answer, by a request the
			// failure let create one, is no lie.
			for _, s := range byRef[p.Ref] {
				if at := got[0].At; (at.IsZero() && !s.cancelled()) || (!at.IsZero() && s.liveAt(at)) {
					sr.FailedButHeld++
					code := ""
					if res.Error != nil {
						code = " (" + res.Error.Code + ")"
					}
					r.problem("session request %s answered failed%s while Dintero held session %s for it (made at %s)",
						p.MsgID, code, s.ID, s.CreatedAt.Format("15:04:05.000"))
					break
				}
			}
		}
		if res.Outcome != messages.OutcomeCreated {
			continue
		}
		if id, ok := sessionOf[p.Ref]; ok && id != res.SessionID {
			r.problem("session request %s answered with session %s, its reference's other request with %s", p.MsgID, res.SessionID, id)
		}
		sessionOf[p.Ref] = res.SessionID
	}
	live := map[string][]string{} // reference -> its sessions not cancelled
	cancelled := map[string]dinteroSession{}
	for _, s := range in.Dintero {
		switch {
		case s.Kind != "profile":
		case s.cancelled():
			cancelled[s.ID] = s
			sr.Cancelled = append(sr.Cancelled, s)
		default:
			live[s.Order.MerchantReference] = append(live[s.Order.MerchantReference], s.ID)
		}
	}
	for _, ref := range sortedKeys(live) {
		if ids := live[ref]; len(ids) > 1 {
			sr.MultiSession++
			r.problem("Dintero holds %d live sessions for %s: %s", len(ids), ref, strings.Join(ids, ", "))
		}
	}
	for _, ref := range sortedKeys(sessionOf) {
		if s, ok := cancelled[sessionOf[ref]]; ok {
			sr.AnsweredCancelled++
			r.problem("session requests for %s were answered with session %s, which Dintero holds cancelled (since %s)",
				ref, s.ID, s.CancelledAt.Format("15:04:05.000"))
		}
	}
	sort.SliceStable(sr.Cancelled, func(a, b int) bool { return sr.Cancelled[a].CreatedAt.Before(sr.Cancelled[b].CreatedAt) })
	r.Sessions = sr
}

// printSessions writes the session rows of the table.
func printSessions(row func(name string, v any, rule string), check func(name string, n int), r *report) {
	s := r.Sessions
	if s.Published == 0 {
		return
	}
	check("session requests with no final result", s.NoResult)
	check("session requests with more than one result", s.Extra)
	check("references with more than one live Dintero session", s.MultiSession)
	check("session requests answered with a cancelled session", s.AnsweredCancelled)
	check("session requests answered failed while Dintero held a session for the reference", s.FailedButHeld)
	refs := map[string]bool{}
	for _, c := range s.Cancelled {
		refs[c.Order.MerchantReference] = true
	}
	row("extra Dintero sessions cancelled", len(s.Cancelled), fmt.Sprintf("reported (not must-be-0): on %d references", len(refs)))
	row("session results created / failed / rejected", fmt.Sprintf("%d / %d / %d",
		s.Outcomes[messages.OutcomeCreated], s.Outcomes[messages.OutcomeFailed], s.Outcomes[messages.OutcomeRejected]),
		fmt.Sprintf("%d session requests, %d answered as duplicates", s.Published, s.Duplicates))
	row("session events unknown / needs_review", fmt.Sprintf("%d / %d", s.Interim[messages.OutcomeUnknown], s.Interim[messages.OutcomeNeedsReview]),
		"non-final: parked session requests")
}

// printCancelledSessions lists the extra sessions the workers cancelled.
func printCancelledSessions(w io.Writer, r *report, maxLines int) {
	c := r.Sessions.Cancelled
	if len(c) == 0 {
		return
	}
	fmt.Fprintf(w, "extra Dintero sessions cancelled (%d):\n", len(c))
	for i, s := range c {
		if i == maxLines {
			fmt.Fprintf(w, "  ... %d more\n", len(c)-maxLines)
			break
		}
		fmt.Fprintf(w, "  %s: %s made at %s, cancelled at %s\n", s.Order.MerchantReference, s.ID,
			s.CreatedAt.Format("15:04:05.000"), s.CancelledAt.Format("15:04:05.000"))
	}
}
