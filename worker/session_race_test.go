package worker_test

// Two deliveries of one session request that both reach Dintero (a worker
// paused past its lease while another took over, Redis losing the claim, an
// answer lost in an outage) each make a session there. The customer must
// be shown one, and every other must end cancelled: nobody may pay it.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/worker"
)

// sessionHold forwards to the sandbox and holds the first session
// creation until answer ends it: either the creation reaches the sandbox
// at once and only its answer is held (as for a worker paused with the
// answer unread, or killed), or the request itself is held and reaches
// the sandbox when answer is called (as for a worker paused between its
// fence and the write). answer sends the answer, or resets the connection
// (an answer lost on the way). Later creations pass, in case the worker
// behind the hold takes the next message too before it stops pulling.
type sessionHold struct {
	URL     string
	before  bool          // hold the request, not only its answer
	arrived chan struct{} // closed when the first creation arrives
	made    chan string   // the id of the session it made
	end     chan bool     // true: send the answer; false: reset the connection
	once    sync.Once
	held    atomic.Bool
}

func holdSessions(t *testing.T, sandboxURL string, before bool) *sessionHold {
	t.Helper()
	target, err := url.Parse(sandboxURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	h := &sessionHold{before: before, arrived: make(chan struct{}), made: make(chan string, 1), end: make(chan bool)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/sessions-profile" || h.held.Swap(true) {
			proxy.ServeHTTP(w, r)
			return
		}
		close(h.arrived)
		wait := func() (send, ok bool) {
			select {
			case send := <-h.end:
				return send, true
			case <-r.Context().Done():
				return false, false
			}
		}
		send := true
		if h.before {
			var ok bool
			if send, ok = wait(); !ok {
				return
			}
		}
		rec := httptest.NewRecorder()
		proxy.ServeHTTP(rec, r.WithContext(context.WithoutCancel(r.Context())))
		var sc dintero.SessionCreated
		_ = json.Unmarshal(rec.Body.Bytes(), &sc)
		h.made <- sc.ID
		if !h.before {
			var ok bool
			if send, ok = wait(); !ok {
				return
			}
		}
		if !send {
			panic(http.ErrAbortHandler)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { h.once.Do(func() { close(h.end) }) }) // runs first: Close waits for held requests
	h.URL = srv.URL
	return h
}

// waitArrived waits for the first creation to reach the hold.
func (h *sessionHold) waitArrived(t *testing.T) {
	t.Helper()
	select {
	case <-h.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("no session creation reached the hold")
	}
}

// session waits for the id of the session the held creation made.
func (h *sessionHold) session(t *testing.T) string {
	t.Helper()
	select {
	case id := <-h.made:
		if id == "" {
			t.Fatal("the sandbox made no session")
		}
		return id
	case <-time.After(10 * time.Second):
		t.Fatal("the held creation made no session")
	}
	return ""
}

// answer ends the held creation: its answer is sent (true) or its
// connection reset (false); when the request itself was held, it reaches
// the sandbox first.
func (h *sessionHold) answer(t *testing.T, send bool) {
	t.Helper()
	select {
	case h.end <- send:
	case <-time.After(10 * time.Second):
		t.Fatal("no session creation is held")
	}
}

// clientAt is a Dintero client for the API at apiURL (tokens from the
// sandbox), its calls timing out after timeout.
func (e *env) clientAt(apiURL string, timeout time.Duration) *dintero.Client {
	c, err := dintero.New(dintero.Config{
		AccountID:    dinterotest.DefaultAccountID,
		ClientID:     dinterotest.DefaultClientID,
		ClientSecret: dinterotest.DefaultClientSecret,
		APIURL:       apiURL,
		AuthURL:      e.sandbox.URL(),
		Timeout:      timeout,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// startSlowWorker starts worker A, whose Dintero calls go to gw, then has
// it stop pulling so that the next message goes to another worker, while
// its request in flight goes on (for up to a minute).
func (e *env) startSlowWorker(store worker.Store, gw worker.Gateway) (stop func()) {
	grace := e.cfg.ShutdownGrace
	e.cfg.ShutdownGrace = time.Minute
	defer func() { e.cfg.ShutdownGrace = grace }()
	return e.startWorker(store, gw)
}

// sessionStates returns the state of every session Dintero holds for ref.
func sessionStates(e *env, ref string) map[string]string {
	out := map[string]string{}
	for _, s := range e.sandbox.Sessions() {
		if s.MerchantReference == ref {
			out[s.ID] = s.State
		}
	}
	return out
}

// waitSessionStates waits until Dintero holds exactly want for ref.
func waitSessionStates(t *testing.T, e *env, ref string, want map[string]string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := sessionStates(e, ref)
		same := len(got) == len(want)
		for id, st := range want {
			same = same && got[id] == st
		}
		if same {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Dintero's sessions for %s: %v, want %v", ref, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// assertAnsweredWith checks that every result names session id, the first
// one not marked duplicate.
func assertAnsweredWith(t *testing.T, got []messages.SessionResult, id string) {
	t.Helper()
	finals := 0
	for _, r := range got {
		if r.Outcome != messages.OutcomeCreated || r.SessionID != id {
			t.Errorf("result %+v, want created with session %s", r, id)
		}
		if !r.Duplicate {
			finals++
		}
	}
	if finals != 1 {
		t.Errorf("%d results not marked duplicate, want 1: %+v", finals, got)
	}
}

// The loser learns its session's id: worker A passes its fence and is
// paused before its creation is written, while Redis loses A's claim;
// worker B makes and remembers its own session for the publisher's retry;
// then A resumes: Dintero makes A's session and A hears back. A answers
// with B's session and cancels its own.
func TestSessionRaceLoserCancelsItsSession(t *testing.T) {
	e := newEnv(t)
	hold := holdSessions(t, e.sandbox.URL(), true)
	stopA := e.startSlowWorker(e.store(), e.clientAt(hold.URL, 30*time.Second))
	const ref = "race-loser"
	body := i12SessionBody(ref, messages.ProductBamboraCreditcard, dinterotest.TokenAuthorized+"1", 500, "")
	i12PublishSession(e, body)
	hold.waitArrived(t)
	go stopA()
	i12FlushRedis(e)

	e.startWorker(e.store(), e.client(5*time.Second))
	i12PublishSession(e, body)
	winner := e.waitSessionResults(ref, 1, 10*time.Second)[0]
	if winner.Outcome != messages.OutcomeCreated || winner.SessionID == "" {
		t.Fatalf("worker B answered %+v; want created", winner)
	}
	waitSessionStates(t, e, ref, map[string]string{winner.SessionID: dinterotest.SessionOpen}, 5*time.Second)

	hold.answer(t, true) // A resumes: its session is made, and A learns its id
	mine := hold.session(t)
	got := e.waitSessionResults(ref, 2, 10*time.Second)
	assertAnsweredWith(t, got, winner.SessionID)
	waitSessionStates(t, e, ref, map[string]string{mine: dinterotest.SessionCancelled, winner.SessionID: dinterotest.SessionOpen}, 5*time.Second)
	if _, err := e.sandbox.PaySession(mine, "123"); err == nil {
		t.Error("the customer could pay the session nobody was shown")
	}
	e.assertNoMoreSessionResults(ref, 2, 300*time.Millisecond)
}

// The loser never learns its session's id: as above, but A's answer is
// lost. A cannot tell whether Dintero made a session; it answers with B's
// and cancels every other session of the reference.
func TestSessionRaceUnansweredLoserSweeps(t *testing.T) {
	e := newEnv(t)
	hold := holdSessions(t, e.sandbox.URL(), true)
	stopA := e.startSlowWorker(e.store(), e.clientAt(hold.URL, 30*time.Second))
	const ref = "race-unanswered"
	body := i12SessionBody(ref, messages.ProductPayExCreditcard, dinterotest.TokenAuthorized+"1", 700, "")
	i12PublishSession(e, body)
	hold.waitArrived(t)
	go stopA()
	i12FlushRedis(e)

	e.startWorker(e.store(), e.client(5*time.Second))
	i12PublishSession(e, body)
	winner := e.waitSessionResults(ref, 1, 10*time.Second)[0]
	if winner.Outcome != messages.OutcomeCreated || winner.SessionID == "" {
		t.Fatalf("worker B answered %+v; want created", winner)
	}

	hold.answer(t, false) // A's session is made, its answer lost
	mine := hold.session(t)
	got := e.waitSessionResults(ref, 2, 10*time.Second)
	assertAnsweredWith(t, got, winner.SessionID)
	waitSessionStates(t, e, ref, map[string]string{mine: dinterotest.SessionCancelled, winner.SessionID: dinterotest.SessionOpen}, 5*time.Second)
	if n := e.sandbox.Counters().SessionsCreated; n != 2 {
		t.Errorf("Dintero made %d sessions, want 2: a creation that may have succeeded is not repeated", n)
	}
	e.assertNoMoreSessionResults(ref, 2, 300*time.Millisecond)
}

// The worker that takes over cleans up (the chaos run's chaos-1-s00006):
// A is paused past its lease (its renewals do not reach Redis) with its
// session made and the answer unread; B takes the claim over, makes and
// remembers its own session, and cancels A's before A resumes. A's answer
// is then lost.
func TestSessionRacePausedPastLeaseSweptByTakeover(t *testing.T) {
	e := newEnv(t)
	hold := holdSessions(t, e.sandbox.URL(), false)
	paused := &i12FrozenLease{Store: e.store(), resumed: make(chan struct{})}
	stopA := e.startSlowWorker(paused, e.clientAt(hold.URL, 30*time.Second))
	const ref = "race-paused"
	body := i12SessionBody(ref, messages.ProductDinteroPSPCreditcard, dinterotest.TokenAuthorized+"1", 900, "")
	i12PublishSession(e, body)
	mine := hold.session(t)
	go stopA()

	e.startWorker(e.store(), e.client(5*time.Second))
	i12PublishSession(e, body) // the publisher's retry; B waits out A's lease
	winner := e.waitSessionResults(ref, 1, 15*time.Second)[0]
	if winner.SessionID == "" || winner.SessionID == mine {
		t.Fatalf("worker B answered %+v; want a session of its own", winner)
	}
	// B cancelled A's session, with A still paused.
	waitSessionStates(t, e, ref, map[string]string{mine: dinterotest.SessionCancelled, winner.SessionID: dinterotest.SessionOpen}, 5*time.Second)

	close(paused.resumed)
	hold.answer(t, false)
	got := e.waitSessionResults(ref, 2, 15*time.Second)
	assertAnsweredWith(t, got, winner.SessionID)
	waitSessionStates(t, e, ref, map[string]string{mine: dinterotest.SessionCancelled, winner.SessionID: dinterotest.SessionOpen}, time.Second)
	e.assertNoMoreSessionResults(ref, 2, 300*time.Millisecond)
}

// A new claim cleans up too (the chaos run's chaos-1-s00009): A's session
// is made and A never hears back (killed, as far as anyone can tell), and
// Redis loses A's claim. B's claim on the publisher's retry is new, yet B
// cancels A's session: Redis cannot say that nobody made one before.
func TestSessionRaceRedisLostCreatorGoneSweptByNewClaim(t *testing.T) {
	e := newEnv(t)
	hold := holdSessions(t, e.sandbox.URL(), false)
	stopA := e.startSlowWorker(e.store(), e.clientAt(hold.URL, 30*time.Second))
	const ref = "race-creator-gone"
	body := i12SessionBody(ref, messages.ProductBamboraCreditcard, dinterotest.TokenAuthorized+"1", 1100, "")
	i12PublishSession(e, body)
	mine := hold.session(t)
	go stopA()
	i12FlushRedis(e)

	e.startWorker(e.store(), e.client(5*time.Second))
	i12PublishSession(e, body)
	winner := e.waitSessionResults(ref, 1, 10*time.Second)[0]
	if winner.SessionID == "" || winner.SessionID == mine {
		t.Fatalf("worker B answered %+v; want a session of its own", winner)
	}
	waitSessionStates(t, e, ref, map[string]string{mine: dinterotest.SessionCancelled, winner.SessionID: dinterotest.SessionOpen}, 5*time.Second)

	hold.answer(t, false) // let A finish
	assertAnsweredWith(t, e.waitSessionResults(ref, 2, 15*time.Second), winner.SessionID)
}

// In an outage Dintero makes each session asked for and the answers are
// lost. Each delivery makes one (none repeats its call); the one that
// finally hears back is remembered and answered, and every other is
// cancelled.
func TestSessionOutageLeavesOneLiveSession(t *testing.T) {
	e := newEnv(t)
	e.startWorker(e.store(), e.client(400*time.Millisecond))
	const ref = "outage-session"
	e.sandbox.SetOutage(dinterotest.Outage{Duration: 1500 * time.Millisecond, Answer: dinterotest.OutageHang})
	i12PublishSession(e, i12SessionBody(ref, messages.ProductBamboraCreditcard, dinterotest.TokenAuthorized+"1", 300, ""))
	r := e.waitSessionResults(ref, 1, 20*time.Second)[0]
	if r.Outcome != messages.OutcomeCreated || r.SessionID == "" {
		t.Fatalf("result %+v, want created", r)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		states := sessionStates(e, ref)
		live := 0
		for _, st := range states {
			if st != dinterotest.SessionCancelled {
				live++
			}
		}
		if live == 1 && states[r.SessionID] == dinterotest.SessionOpen {
			if len(states) < 2 {
				t.Errorf("Dintero made %d session(s); the outage should have lost at least one answer", len(states))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Dintero's sessions for %s: %v; want %s open and every other cancelled", ref, states, r.SessionID)
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.assertNoMoreSessionResults(ref, 1, 300*time.Millisecond)
}
