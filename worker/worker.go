package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/idempotency"
)

// Store is what the worker needs of the idempotency store.
type Store interface {
	Claim(ctx context.Context, key idempotency.Key, fingerprint string, seq uint64) (idempotency.Claim, error)
	Extend(ctx context.Context, key idempotency.Key, token string) error
	Complete(ctx context.Context, key idempotency.Key, token string, seq uint64, result []byte, reopenable bool) error
	Release(ctx context.Context, key idempotency.Key, token string, maybeSent bool) error
	Forget(ctx context.Context, key idempotency.Key, token string) error
	Park(ctx context.Context, key idempotency.Key, token string, seq uint64) error
	Unpark(ctx context.Context, key idempotency.Key, token string) error
	Hold(ctx context.Context, key idempotency.Key, token string, seq uint64, d time.Duration, unpark bool) error
	// Lease is how long a claim stays exclusive without Extend.
	Lease() time.Duration
}

// Gateway is what the worker needs of Dintero.
type Gateway interface {
	PaySession(ctx context.Context, body []byte, opts ...dintero.CallOption) (*dintero.Transaction, error)
	TransactionsByMerchantReference(ctx context.Context, ref string) ([]dintero.Transaction, error)
	CreateSessionProfile(ctx context.Context, body []byte, opts ...dintero.CallOption) (*dintero.SessionCreated, error)
	SessionsByMerchantReference(ctx context.Context, ref string) ([]dintero.Session, error)
	CancelSession(ctx context.Context, id string) (*dintero.Session, error)
	GetTransaction(ctx context.Context, id string, includes ...string) (*dintero.Transaction, error)
}

var (
	_ Store             = (*idempotency.Store)(nil)
	_ Deliveries        = (*idempotency.Store)(nil)
	_ Gateway           = (*dintero.Client)(nil)
	_ TransactionGetter = (*dintero.Client)(nil)
	_ Publisher         = jetstream.JetStream(nil)
)

// Worker consumes requests. Create it with New and start it with Run.
type Worker struct {
	js       jetstream.JetStream // binds the consumer; setup
	pub      Publisher           // results and dead letters
	store    Store
	gw       Gateway
	cfg      Config
	log      *slog.Logger
	m        *Metrics
	now      func() time.Time
	names    names            // of Config.Namespace
	kinds    map[string]*kind // by request subject
	sessions *sessionLog
	bound    atomic.Bool // pulling from the consumer
	// calls holds a token for every call to Dintero in progress: at most
	// MaxInFlight, and within the throttle's limit (throttle.go).
	calls    chan struct{}
	throttle *throttle
}

// New returns a worker. It does not touch the network until Run.
func New(js jetstream.JetStream, store Store, gw Gateway, cfg Config) (*Worker, error) {
	if js == nil || store == nil || gw == nil {
		return nil, errors.New("worker: JetStream, store and gateway are required")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	w := &Worker{js: js, pub: js, store: store, cfg: cfg, log: cfg.Logger, m: cfg.Metrics, now: time.Now,
		calls: make(chan struct{}, cfg.MaxInFlight),
		gw:    tracedGateway{Gateway: gw, tracer: cfg.Tracer, propagator: cfg.Propagator}}
	w.names = namesOf(cfg.Namespace)
	w.kinds = map[string]*kind{}
	for _, k := range []*kind{chargeKind, sessionKind} {
		w.kinds[w.names.Subject(k.subject)] = k
	}
	w.throttle = newThrottle(cfg.MaxInFlight, cfg.Metrics)
	return w, nil
}

// Bound reports whether the worker is bound to its consumer and pulling.
func (w *Worker) Bound() bool { return w.bound.Load() }

// Run pulls and handles requests until ctx is cancelled, then stops pulling,
// gives in-flight requests up to Config.ShutdownGrace to finish (publish
// and ack), hands buffered ones back to the server, and returns. It
// returns early with an error when the streams or the consumer cannot be
// set up or bound; an error wrapping ErrConfig means their settings must
// be fixed first.
func (w *Worker) Run(ctx context.Context) error {
	cons, err := w.bind(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started
		}
		return err
	}
	p, err := w.startPull(cons)
	if err != nil {
		return err
	}
	w.bound.Store(true)
	defer w.bound.Store(false)

	// Requests are handled on their own context, cancelled only when the
	// grace period after shutdown runs out.
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()

	var wg sync.WaitGroup
	// MaxInFlight bounds the calls to Dintero (see acquireCall); the worker
	// holds a quarter more requests than that, so that the ones being
	// claimed, or having their results stored and published, do not keep
	// a Dintero slot idle.
	slots := make(chan struct{}, w.cfg.maxHeld())
	go w.countParked(hctx)
	w.log.Info("worker started", "namespace", w.cfg.Namespace, "stream", w.names.StreamRequests, "consumer", w.cfg.Consumer, "max_in_flight", w.cfg.MaxInFlight)
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		msg, err := p.next(ctx)
		if err != nil {
			<-slots
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				break
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			w.process(hctx, msg)
		}()
	}

	w.stop(p, &wg, hcancel)
	return nil
}

// stop stops pulling, gives back what is buffered (so another pod takes it
// now rather than after AckWait), and waits for the requests in flight,
// cancelling them when the grace period runs out.
func (w *Worker) stop(p *pull, inFlight *sync.WaitGroup, cancel context.CancelFunc) {
	w.bound.Store(false)
	p.handBack()
	done := make(chan struct{})
	go func() { inFlight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(w.cfg.ShutdownGrace):
		w.log.Warn("shutdown grace period over; cancelling in-flight requests", "grace", w.cfg.ShutdownGrace)
		cancel()
		<-done
	}
	w.log.Info("worker stopped")
}

// pullHeartbeat is the idle heartbeat asked of the server for every pull
// request.
const pullHeartbeat = 5 * time.Second

// nextWait bounds every wait for a message. The iterator (nats.go v1.55)
// decides whether to send a new pull request only when Next is called, and
// skips it while its previous request is still being published; if that
// publish is slow (a busy machine) and the buffer runs dry meanwhile, Next
// waits with no request outstanding. A Next that returns after nextWait and
// is called again sends the request.
const nextWait = 250 * time.Millisecond

// pullSilence is how long the worker goes without a message before it asks
// the server whether its pull request still stands. The iterator's own
// missed-heartbeat check runs inside each Next call, and Next never waits
// longer than nextWait, so a pull request lost with the server node that
// held it (the consumer's leader dying) would never be noticed otherwise.
const pullSilence = 2 * pullHeartbeat

// A pull is the worker's pull subscription to its consumer, renewed when it
// goes silent while the consumer has work.
type pull struct {
	w    *Worker
	cons jetstream.Consumer
	iter jetstream.MessagesContext
	last time.Time // last message, or last check
}

func (w *Worker) startPull(cons jetstream.Consumer) (*pull, error) {
	p := &pull{w: w, cons: cons, last: time.Now()}
	return p, p.subscribe()
}

// subscribe starts the iterator. It pulls no more than there are slots
// for: a buffered message's AckWait is already running.
func (p *pull) subscribe() error {
	iter, err := p.cons.Messages(jetstream.PullMaxMessages(p.w.cfg.maxHeld()/2+1), jetstream.PullHeartbeat(pullHeartbeat))
	if err != nil {
		return fmt.Errorf("worker: pull: %w", err)
	}
	p.iter = iter
	return nil
}

// next returns the next message, or an error when there is none yet (the
// caller calls again) or the iterator is closed.
func (p *pull) next(ctx context.Context) (jetstream.Msg, error) {
	msg, err := p.iter.Next(jetstream.NextMaxWait(nextWait))
	switch {
	case err == nil:
		p.last = time.Now()
		return msg, nil
	case ctx.Err() != nil, errors.Is(err, jetstream.ErrMsgIteratorClosed):
		return nil, err
	case errors.Is(err, nats.ErrTimeout):
		if time.Since(p.last) > pullSilence {
			p.check(ctx)
		}
	default:
		p.w.log.Warn("pull failed", "err", err)
	}
	return nil, err
}

// check asks the server about the consumer after a silence, and starts a
// new pull subscription when the consumer has messages this worker is not
// getting, no pull request is waiting for it, or its leader does not
// answer.
func (p *pull) check(ctx context.Context) {
	p.last = time.Now()
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := p.cons.Info(ictx)
	if err == nil && info.NumPending == 0 && info.NumWaiting > 0 {
		return // idle, and a pull request is waiting
	}
	attrs := []any{"err", err}
	if err == nil {
		attrs = []any{"num_pending", info.NumPending, "num_waiting", info.NumWaiting, "num_ack_pending", info.NumAckPending}
	}
	p.w.log.Warn("no message for a while; pulling anew", attrs...)
	p.iter.Stop()
	if err := p.subscribe(); err != nil {
		p.w.log.Warn("pull failed", "err", err)
	}
}

// handBack stops the pull subscription and hands back at once what it
// buffered.
func (p *pull) handBack() {
	p.iter.Drain()
	for {
		msg, err := p.iter.Next(jetstream.NextMaxWait(100 * time.Millisecond))
		if err != nil {
			return
		}
		p.w.nak(&delivery{msg: msg, log: p.w.log}, "shutdown", 0)
	}
}
