package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/messages"
)

// maxPendingPublishes bounds the load generator's asynchronous publishes
// awaiting their PubAck: "as fast as JetStream takes them".
const maxPendingPublishes = 4096

var (
	products   = []string{messages.ProductPayExCreditcard, messages.ProductBamboraCreditcard, messages.ProductDinteroPSPCreditcard}
	operations = []string{messages.OperationRecurringPurchase, messages.OperationUnscheduledPurchase}
)

// load is n charge requests whose references are prefix-0000000, ....
type load struct {
	prefix string
	refs   []string
	bodies [][]byte
}

// newLoad builds n valid charge requests paying with the sandbox's
// authorizing card, cycling through the providers and operations.
func newLoad(prefix string, n int) (*load, error) {
	l := &load{prefix: prefix, refs: make([]string, n), bodies: make([][]byte, n)}
	for i := range n {
		ref := fmt.Sprintf("%s-%07d", prefix, i)
		product, op := products[i%len(products)], operations[i%len(operations)]
		amount := int64(100 + i%99_900)
		vat := amount / 5
		qty, rate := 1.0, 25.0
		token := dinterotest.TokenAuthorized + strconv.Itoa(i)
		tokens := messages.CardTokens{PaymentToken: token}
		if product == messages.ProductPayExCreditcard && op == messages.OperationRecurringPurchase {
			tokens = messages.CardTokens{RecurrenceToken: token}
		}
		req := messages.ChargeRequest{
			Session: messages.PaySession{
				Customer: &messages.Customer{
					CustomerID: "cust-" + ref, Email: "bench@example.com",
					Tokens: map[string]messages.CardTokens{product: tokens},
				},
				Order: messages.Order{
					Amount: amount, Currency: "NOK", VATAmount: &vat, MerchantReference: ref,
					Items: []messages.OrderItem{{
						ID: "item-1", LineID: "1", Description: "benchmark order line",
						Quantity: &qty, Amount: amount, VATAmount: &vat, VAT: &rate,
					}},
				},
			},
			Payment: messages.Payment{PaymentProductType: product, Operation: op},
		}
		if err := req.Validate(); err != nil {
			return nil, fmt.Errorf("load %s: %w", ref, err)
		}
		b, err := json.Marshal(&req)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", ref, err)
		}
		l.refs[i], l.bodies[i] = ref, b
	}
	return l, nil
}

// index returns the position of ref in the load, or -1.
func (l *load) index(ref string) int {
	rest, ok := strings.CutPrefix(ref, l.prefix+"-")
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(rest)
	if err != nil || i < 0 || i >= len(l.refs) {
		return -1
	}
	return i
}

// tracker records when each request was published and when its first
// result (or, for the raw ceiling, its delivery) arrived.
type tracker struct {
	mu       sync.Mutex
	pubAt    []time.Time
	doneAt   []time.Time
	count    int
	outcomes map[string]int
	done     chan struct{}
}

func newTracker(n int) *tracker {
	return &tracker{pubAt: make([]time.Time, n), doneAt: make([]time.Time, n), outcomes: map[string]int{}, done: make(chan struct{})}
}

func (t *tracker) published(i int, at time.Time) {
	t.mu.Lock()
	t.pubAt[i] = at
	t.mu.Unlock()
}

// finished records the first completion of request i; later ones (a
// republished result) are ignored.
func (t *tracker) finished(i int, outcome string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i < 0 || !t.doneAt[i].IsZero() {
		return
	}
	t.doneAt[i] = at
	t.outcomes[outcome]++
	t.count++
	if t.count == len(t.doneAt) {
		close(t.done)
	}
}

func (t *tracker) completed() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.count
}

// span returns the first publish, the last completion and the sorted
// latencies of the completed requests.
func (t *tracker) span() (first, last time.Time, lat []time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, p := range t.pubAt {
		if !p.IsZero() && (first.IsZero() || p.Before(first)) {
			first = p
		}
		d := t.doneAt[i]
		if d.IsZero() || p.IsZero() {
			continue
		}
		if d.After(last) {
			last = d
		}
		lat = append(lat, d.Sub(p))
	}
	slices.Sort(lat)
	return first, last, lat
}

// followResults feeds every result published on the results subjects into
// t. A core subscription sees each result as the worker publishes it,
// without a JetStream consumer's overhead.
func followResults(nc *nats.Conn, l *load, t *tracker) (*nats.Subscription, error) {
	sub, err := nc.Subscribe(messages.SubjectResults, func(m *nats.Msg) {
		now := time.Now()
		ref, outcome, ok := splitResultID(m.Header.Get(messages.HeaderMsgID))
		if !ok {
			return
		}
		t.finished(l.index(ref), outcome, now)
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe results: %w", err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return nil, err
	}
	return sub, nc.Flush()
}

// splitResultID splits "<ref>:<outcome>:<seq>" (messages.ResultMsgID).
func splitResultID(id string) (ref, outcome string, ok bool) {
	i := strings.LastIndexByte(id, ':')
	if i < 0 {
		return "", "", false
	}
	j := strings.LastIndexByte(id[:i], ':')
	if j < 0 {
		return "", "", false
	}
	return id[:j], id[j+1 : i], true
}

// publishAll publishes every body of l on subject as fast as JetStream
// acknowledges them (at most maxPendingPublishes outstanding), with the
// reference as Nats-Msg-Id, and waits for every PubAck. A publish that
// failed is sent again; the stream de-duplicates it.
func publishAll(ctx context.Context, js jetstream.JetStream, subject string, l *load, t *tracker) error {
	futs := make([]jetstream.PubAckFuture, len(l.bodies))
	for i := range l.bodies {
		if err := publishOne(ctx, js, subject, l, t, futs, i); err != nil {
			return err
		}
	}
	return awaitPubAcks(ctx, js, subject, l, futs)
}

// publishOpenLoop publishes the bodies of l open loop: request i at its
// own arrival time, the arrivals a Poisson process of rate per second
// (exponential gaps, from a fixed seed so that runs compare), whether or
// not earlier requests are done. A publish late for its time (the machine
// was busy) goes out at once; the latency is measured from the actual
// publish. Then it waits for every PubAck, as publishAll does.
func publishOpenLoop(ctx context.Context, js jetstream.JetStream, subject string, l *load, t *tracker, rate float64) error {
	if rate <= 0 {
		return fmt.Errorf("open loop: rate %v", rate)
	}
	arrivals := poissonArrivals(len(l.bodies), rate)
	futs := make([]jetstream.PubAckFuture, len(l.bodies))
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for i, at := range arrivals {
		if wait := time.Until(start.Add(at)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		if err := publishOne(ctx, js, subject, l, t, futs, i); err != nil {
			return err
		}
	}
	return awaitPubAcks(ctx, js, subject, l, futs)
}

// poissonArrivals returns n arrival times, from 0, of a Poisson process of
// rate per second: independent exponential gaps of mean 1/rate, drawn
// from a fixed seed so that runs compare.
func poissonArrivals(n int, rate float64) []time.Duration {
	rng := rand.New(rand.NewPCG(17, 1280))
	out := make([]time.Duration, n)
	var at time.Duration
	for i := range out {
		out[i] = at
		at += time.Duration(rng.ExpFloat64() / rate * float64(time.Second))
	}
	return out
}

// publishOne publishes request i asynchronously, recording the time, and
// keeps its PubAck future in futs[i].
func publishOne(ctx context.Context, js jetstream.JetStream, subject string, l *load, t *tracker, futs []jetstream.PubAckFuture, i int) error {
	for {
		m := &nats.Msg{Subject: subject, Data: l.bodies[i], Header: nats.Header{messages.HeaderMsgID: []string{l.refs[i]}}}
		t.published(i, time.Now())
		f, err := js.PublishMsgAsync(m)
		if err == nil {
			futs[i] = f
			return nil
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		time.Sleep(time.Millisecond) // too many pending: let the acks catch up
	}
}

// awaitPubAcks waits for the PubAck of every request and publishes again,
// synchronously, those whose publish failed.
func awaitPubAcks(ctx context.Context, js jetstream.JetStream, subject string, l *load, futs []jetstream.PubAckFuture) error {
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	for i, f := range futs {
		select {
		case <-f.Ok():
			continue
		case <-f.Err(): //nolint:errcheck // the failure is handled by republishing
			// Republish synchronously until the stream has it.
			for {
				var err error
				m := &nats.Msg{Subject: subject, Data: l.bodies[i], Header: nats.Header{messages.HeaderMsgID: []string{l.refs[i]}}}
				pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err = js.PublishMsg(pctx, m)
				cancel()
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					return context.Cause(ctx)
				}
			}
		}
	}
	return nil
}
