package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/messages"
)

// Store is what the worker needs of the idempotency store
// (*idempotency.Store implements it).
type Store interface {
	Claim(ctx context.Context, key idempotency.Key, fingerprint string, seq uint64) (idempotency.Claim, error)
	Extend(ctx context.Context, key idempotency.Key, token string) error
	Complete(ctx context.Context, key idempotency.Key, token string, seq uint64, result []byte, reopenable bool) error
	Release(ctx context.Context, key idempotency.Key, token string, maybeSent bool) error
}

// Gateway is what the worker needs of Dintero (*dintero.Client implements it).
type Gateway interface {
	PaySession(ctx context.Context, body []byte, opts ...dintero.CallOption) (*dintero.Transaction, error)
	TransactionsByMerchantReference(ctx context.Context, ref string) ([]dintero.Transaction, error)
	CreateSessionProfile(ctx context.Context, body []byte, opts ...dintero.CallOption) (*dintero.SessionCreated, error)
	GetTransaction(ctx context.Context, id string, includes ...string) (*dintero.Transaction, error)
}

// Worker consumes charge requests. Create it with New and start it with Run.
type Worker struct {
	js    jetstream.JetStream
	store Store
	gw    Gateway
	cfg   Config
	log   *slog.Logger
	m     *Metrics
	now   func() time.Time
	bound atomic.Bool // pulling from the consumer
	// calls holds a token for every call to Dintero in progress: at most
	// MaxInFlight.
	calls chan struct{}
}

// Bound reports whether the worker is bound to its consumer and pulling.
func (w *Worker) Bound() bool { return w.bound.Load() }

// New returns a worker. It does not touch the network until Run.
func New(js jetstream.JetStream, store Store, gw Gateway, cfg Config) (*Worker, error) {
	if js == nil || store == nil || gw == nil {
		return nil, errors.New("worker: JetStream, store and gateway are required")
	}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	return &Worker{js: js, store: store, gw: gw, cfg: cfg, log: cfg.Logger, m: cfg.Metrics, now: time.Now,
		calls: make(chan struct{}, cfg.MaxInFlight)}, nil
}

// Run pulls and handles requests until ctx is cancelled, then stops pulling,
// gives in-flight requests up to Config.ShutdownGrace to finish (publish
// and ack), hands buffered ones back to the server, and returns.
func (w *Worker) Run(ctx context.Context) error {
	cons, err := w.consumer(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started
		}
		return err
	}
	// Pull no more than there are slots for: a buffered message's AckWait
	// is already running. See pullHeartbeat and nextWait for how a silent
	// iterator is woken.
	iter, err := cons.Messages(jetstream.PullMaxMessages(w.cfg.maxHeld()/2+1),
		jetstream.PullHeartbeat(pullHeartbeat))
	if err != nil {
		return fmt.Errorf("worker: pull: %w", err)
	}

	w.bound.Store(true)
	defer w.bound.Store(false)

	// Handlers run on their own context, cancelled only when the grace
	// period after shutdown runs out.
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()

	var wg sync.WaitGroup
	// MaxInFlight bounds the calls to Dintero (see acquireCall); the worker
	// holds a quarter more requests than that, so that the ones being
	// claimed, or having their results stored and published, do not keep
	// a Dintero slot idle.
	slots := make(chan struct{}, w.cfg.maxHeld())
	w.log.Info("worker started", "consumer", w.cfg.Consumer, "max_in_flight", w.cfg.MaxInFlight)
loop:
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		msg, err := iter.Next(jetstream.NextMaxWait(nextWait))
		if err != nil {
			<-slots
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				break loop
			}
			if errors.Is(err, nats.ErrTimeout) {
				continue // nothing to do yet; see nextWait
			}
			w.pullFailed(ctx, cons, err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			w.process(hctx, msg)
		}()
	}

	// Stop pulling, and give back what is buffered so another pod takes it
	// now rather than after AckWait.
	iter.Drain()
	w.bound.Store(false)
	for {
		msg, err := iter.Next(jetstream.NextMaxWait(100 * time.Millisecond))
		if err != nil {
			break
		}
		_ = msg.Nak()
	}

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(w.cfg.ShutdownGrace):
		w.log.Warn("shutdown grace period over; cancelling in-flight requests", "grace", w.cfg.ShutdownGrace)
		hcancel()
		<-done
	}
	w.log.Info("worker stopped")
	return nil
}

// pullHeartbeat is the idle heartbeat asked of the server for every pull
// request. The iterator pulls again after two missed heartbeats, which
// bounds the silence after a pull request lost on the server's side.
const pullHeartbeat = 5 * time.Second

// nextWait bounds every wait for a message. The iterator (nats.go v1.55)
// decides whether to send a new pull request only when Next is called, and
// skips it while its previous request is still being published; if that
// publish is slow (a busy machine) and the buffer runs dry meanwhile, Next
// waits with no request outstanding until the heartbeat check above. A
// Next that returns after nextWait and is called again sends the request.
const nextWait = 250 * time.Millisecond

// pullFailed logs an error of the pull iterator, with the server's view of
// the consumer when the iterator heard nothing for two heartbeats (it then
// sends a new pull request itself).
func (w *Worker) pullFailed(ctx context.Context, cons jetstream.Consumer, err error) {
	if !errors.Is(err, jetstream.ErrNoHeartbeat) {
		w.log.Warn("pull failed", "err", err)
		return
	}
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, ierr := cons.Info(ictx)
	if ierr != nil {
		w.log.Warn("pull failed: no messages and no heartbeat; pulling again", "err", err, "consumer_info_err", ierr)
		return
	}
	w.log.Warn("pull failed: no messages and no heartbeat; pulling again", "err", err,
		"num_pending", info.NumPending, "num_waiting", info.NumWaiting,
		"num_ack_pending", info.NumAckPending, "num_redelivered", info.NumRedelivered)
}

// process handles one message and never lets a panic escape.
func (w *Worker) process(ctx context.Context, msg jetstream.Msg) {
	w.m.inflight(1)
	defer w.m.inflight(-1)
	defer func() {
		if p := recover(); p != nil {
			w.log.Error("panic while handling a request; it will be redelivered",
				"panic", fmt.Sprint(p), "subject", msg.Subject(), "stack", string(debug.Stack()))
			w.m.retry("panic")
			_ = msg.NakWithDelay(w.cfg.RetryDelay)
		}
	}()
	if msg.Subject() == messages.SubjectSessionRequest {
		w.handleSession(ctx, msg)
		return
	}
	w.handleCharge(ctx, msg)
}

// acquireCall waits for one of the MaxInFlight slots for calling Dintero.
// It reports false when ctx ends first; otherwise releaseCall must follow.
func (w *Worker) acquireCall(ctx context.Context) bool {
	select {
	case w.calls <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (w *Worker) releaseCall() { <-w.calls }

// retryDelay is the NakWithDelay for the given delivery count: exponential
// from RetryDelay, capped at MaxRetryDelay, with ±20 % jitter so that
// redeliveries from a burst spread out.
func (w *Worker) retryDelay(delivered uint64) time.Duration {
	d := w.cfg.RetryDelay
	for i := uint64(1); i < delivered && d < w.cfg.MaxRetryDelay; i++ {
		d *= 2
	}
	d = min(d, w.cfg.MaxRetryDelay)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// heartbeat keeps a slow request alive: every AckWait/3 it tells the server
// the message is in progress and renews the claim's lease. The returned
// function stops it and waits for a beat in progress, cancelling it.
//
// It runs on a timer, not on a goroutine of its own: most charges end long
// before the first beat, and starting (and waking) a goroutine for every
// charge was a tenth of the worker's own CPU per charge.
func (w *Worker) heartbeat(ctx context.Context, msg jetstream.Msg, key idempotency.Key, token string) (stop func()) {
	every := w.cfg.AckWait / 3
	hb := &beats{}
	hb.mu.Lock()
	defer hb.mu.Unlock()
	hb.t = time.AfterFunc(every, func() {
		hb.mu.Lock()
		if hb.stopped {
			hb.mu.Unlock()
			return
		}
		bctx, cancel := context.WithCancel(ctx)
		hb.cancel = cancel
		hb.running.Add(1)
		hb.mu.Unlock()
		defer hb.running.Done()
		defer cancel()

		if err := msg.InProgress(); err != nil {
			w.log.Debug("in-progress heartbeat failed", "merchant_reference", key.Ref, "err", err)
		}
		if err := w.store.Extend(bctx, key, token); err != nil && bctx.Err() == nil {
			w.log.Warn("lease renewal failed", "merchant_reference", key.Ref, "err", err)
		}
		hb.mu.Lock()
		hb.cancel = nil
		if !hb.stopped {
			hb.t.Reset(every)
		}
		hb.mu.Unlock()
	})
	return func() {
		hb.mu.Lock()
		hb.stopped = true
		hb.t.Stop()
		if hb.cancel != nil {
			hb.cancel()
		}
		hb.mu.Unlock()
		hb.running.Wait()
	}
}

// beats is the state of one heartbeat.
type beats struct {
	mu      sync.Mutex
	t       *time.Timer
	stopped bool
	cancel  context.CancelFunc // of the beat in progress
	running sync.WaitGroup     // the beat in progress
}
