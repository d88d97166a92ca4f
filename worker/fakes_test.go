package worker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/messages"
)

// In-memory fakes of the worker's seams, for fast tests of its decisions.

// fakeStore answers every Claim with state (and, for completed, result),
// and records what the flow did with the claim.
type fakeStore struct {
	mu     sync.Mutex
	state  idempotency.State
	result []byte // stored result for StateCompleted
	seq    uint64 // stored sequence for StateCompleted
	lease  time.Duration
	lost   bool // Extend answers ErrNotOwner
	calls  []string
}

func (s *fakeStore) record(call string) {
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.mu.Unlock()
}

func (s *fakeStore) log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

func (s *fakeStore) Claim(_ context.Context, _ idempotency.Key, _ string, seq uint64) (idempotency.Claim, error) {
	s.record("claim")
	c := idempotency.Claim{State: s.state, Attempts: 1, Sequence: seq, Token: "tok"}
	if s.state == idempotency.StateCompleted {
		c.Result, c.Sequence, c.Token = s.result, s.seq, ""
	}
	if s.state == idempotency.StateInProgress {
		c.LeaseRemaining, c.Token = 700*time.Millisecond, ""
	}
	return c, nil
}

func (s *fakeStore) Extend(context.Context, idempotency.Key, string) error {
	s.record("extend")
	if s.lost {
		return idempotency.ErrNotOwner
	}
	return nil
}

func (s *fakeStore) Complete(_ context.Context, _ idempotency.Key, _ string, _ uint64, _ []byte, reopenable bool) error {
	if reopenable {
		s.record("complete reopenable")
	} else {
		s.record("complete")
	}
	return nil
}

func (s *fakeStore) Release(_ context.Context, _ idempotency.Key, _ string, maybeSent bool) error {
	if maybeSent {
		s.record("release maybe_sent")
	} else {
		s.record("release")
	}
	return nil
}

func (s *fakeStore) Forget(context.Context, idempotency.Key, string) error {
	s.record("forget")
	return nil
}

func (s *fakeStore) Park(context.Context, idempotency.Key, string, uint64) error {
	s.record("park")
	return nil
}

func (s *fakeStore) Unpark(context.Context, idempotency.Key, string) error {
	s.record("unpark")
	return nil
}

func (s *fakeStore) Hold(_ context.Context, _ idempotency.Key, _ string, _ uint64, _ time.Duration, unpark bool) error {
	if unpark {
		s.record("hold+unpark")
	} else {
		s.record("hold")
	}
	return nil
}

func (s *fakeStore) Lease() time.Duration {
	if s.lease == 0 {
		return 30 * time.Second
	}
	return s.lease
}

// fakeGateway answers with scripted functions and counts pay calls.
type fakeGateway struct {
	mu       sync.Mutex
	pay      func(n int, strict bool) (*dintero.Transaction, error)
	list     func() ([]dintero.Transaction, error)
	get      func(id string) (*dintero.Transaction, error)
	payCalls []bool // strict flag of every pay call that was sent
	lookups  int
	// beforeSend runs before the fence, standing for the token fetch.
	beforeSend func()
}

func (g *fakeGateway) PaySession(ctx context.Context, _ []byte, opts ...dintero.CallOption) (*dintero.Transaction, error) {
	if g.beforeSend != nil {
		g.beforeSend()
	}
	if f := dintero.FenceOf(opts...); f != nil {
		if err := f(ctx); err != nil {
			return nil, &dintero.Error{Op: dintero.OpPay, Kind: dintero.KindTransient, Err: err}
		}
	}
	strict := dintero.StrictReferenceOf(opts...)
	g.mu.Lock()
	g.payCalls = append(g.payCalls, strict)
	n := len(g.payCalls)
	g.mu.Unlock()
	return g.pay(n, strict)
}

func (g *fakeGateway) TransactionsByMerchantReference(context.Context, string) ([]dintero.Transaction, error) {
	g.mu.Lock()
	g.lookups++
	g.mu.Unlock()
	if g.list == nil {
		return nil, nil
	}
	return g.list()
}

func (g *fakeGateway) GetTransaction(_ context.Context, id string, _ ...string) (*dintero.Transaction, error) {
	if g.get == nil {
		return &dintero.Transaction{ID: id}, nil
	}
	return g.get(id)
}

func (g *fakeGateway) CreateSessionProfile(context.Context, []byte, ...dintero.CallOption) (*dintero.SessionCreated, error) {
	return &dintero.SessionCreated{ID: "T12345678.session", URL: "https://checkout.example/v1/view/T12345678.session"}, nil
}

func (g *fakeGateway) SessionsByMerchantReference(context.Context, string) ([]dintero.Session, error) {
	return nil, nil
}

func (g *fakeGateway) CancelSession(_ context.Context, id string) (*dintero.Session, error) {
	return &dintero.Session{ID: id}, nil
}

func (g *fakeGateway) sent() []bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]bool(nil), g.payCalls...)
}

// fakeJS publishes into a list; nothing else of JetStream is used by the
// flow's tests.
type fakeJS struct {
	jetstream.JetStream
	mu        sync.Mutex
	published []*nats.Msg
	fail      error
}

func (j *fakeJS) PublishMsg(_ context.Context, m *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail != nil {
		return nil, j.fail
	}
	j.published = append(j.published, m)
	return &jetstream.PubAck{Sequence: uint64(len(j.published))}, nil
}

func (j *fakeJS) subjects() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []string
	for _, m := range j.published {
		out = append(out, m.Subject)
	}
	return out
}

// fakeMsg is one delivery of a request; it records how it was settled.
type fakeMsg struct {
	jetstream.Msg // not called; panics if the worker starts using more
	subject       string
	data          []byte
	seq           uint64
	delivered     uint64

	mu      sync.Mutex
	settled []string
	delay   time.Duration
}

func (m *fakeMsg) Data() []byte         { return m.data }
func (m *fakeMsg) Subject() string      { return m.subject }
func (m *fakeMsg) Headers() nats.Header { return nil }
func (m *fakeMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: m.seq, Consumer: m.seq},
		NumDelivered: m.delivered, Timestamp: time.Now()}, nil
}
func (m *fakeMsg) settle(op string) error {
	m.mu.Lock()
	m.settled = append(m.settled, op)
	m.mu.Unlock()
	return nil
}
func (m *fakeMsg) Ack() error                      { return m.settle("ack") }
func (m *fakeMsg) Nak() error                      { return m.settle("nak") }
func (m *fakeMsg) Term() error                     { return m.settle("term") }
func (m *fakeMsg) TermWithReason(r string) error   { return m.settle("term") }
func (m *fakeMsg) InProgress() error               { return nil }
func (m *fakeMsg) DoubleAck(context.Context) error { return m.settle("ack") }
func (m *fakeMsg) NakWithDelay(d time.Duration) error {
	m.mu.Lock()
	m.delay = d
	m.mu.Unlock()
	return m.settle("nak")
}

func (m *fakeMsg) ops() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.settled...)
}

// newTestWorker is a worker over the fakes, with quick retry delays.
func newTestWorker(store *fakeStore, gw *fakeGateway, js *fakeJS) *Worker {
	w, err := New(js, store, gw, Config{
		MaxInFlight: 4, MaxDeliver: 3, RetryDelay: 10 * time.Millisecond, MaxRetryDelay: time.Second,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	return w
}

// chargeMsg is a first delivery of a valid charge.
func chargeMsg(ref, token string) *fakeMsg {
	body := `{"session":{"customer":{"tokens":{"payex.creditcard":{"payment_token":"` + token + `"}}},` +
		`"order":{"amount":29900,"currency":"NOK","merchant_reference":"` + ref + `"}},` +
		`"payment":{"payment_product_type":"payex.creditcard","operation":"unscheduled_purchase"}}`
	return &fakeMsg{subject: messages.SubjectChargeRequest, data: []byte(body), seq: 42, delivered: 1}
}

// Transactions as Dintero reports them for the fakes.
func authorized(ref string) *dintero.Transaction {
	return &dintero.Transaction{ID: "T12345678.ok", MerchantReference: ref, Status: dintero.StatusAuthorized,
		Amount: 29900, Currency: "NOK", PaymentProductType: messages.ProductPayExCreditcard,
		PaymentOperation: messages.OperationUnscheduledPurchase}
}

func declined(ref string, retryCode string, after *time.Time) *dintero.Transaction {
	tx := authorized(ref)
	tx.ID, tx.Status = "T12345678.no", dintero.StatusFailed
	tx.Events = []dintero.TransactionEvent{{Event: "AUTHORIZE", TransactionStatus: dintero.StatusFailed,
		Error: &dintero.EventError{Code: "INSUFFICIENT_FUNDS", Message: "insufficient funds", Type: []string{"INSUFFICIENT_FUNDS"},
			RetryPolicy: &dintero.RetryPolicy{RetryCodes: []string{retryCode}, RetryAfter: after}}}}
	return tx
}
