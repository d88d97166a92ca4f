package worker

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/messages"
)

// BenchmarkProcessCharge measures the worker's own work for one charge,
// with the network taken out: decoding and validating the request,
// fingerprinting it, building, marshalling and publishing the result, the
// heartbeat, metrics and logging, against a store, a gateway and a
// JetStream that answer at once. It is the part of the per-charge CPU that
// payworker's own code decides (`make bench` measures the whole process);
// compare runs with benchstat:
//
//	go test -run XXX -bench ProcessCharge -count 10 ./worker > new.txt
func BenchmarkProcessCharge(b *testing.B) {
	js := &benchJS{}
	w, err := New(js, &benchStore{}, &benchGateway{}, Config{
		Logger:  slog.New(slog.DiscardHandler),
		Metrics: NewMetrics(prometheus.NewRegistry()),
	})
	if err != nil {
		b.Fatal(err)
	}
	const n = 1024
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = benchBody("bench-"+strconv.Itoa(i), i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m := &benchMsg{data: bodies[i%n], seq: uint64(i + 1)}
		w.process(ctx, m)
		if !m.acked {
			b.Fatalf("message %d not acked", i)
		}
		i++
	}
	if js.published.Load() < int64(i) {
		b.Fatalf("%d results for %d requests", js.published.Load(), i)
	}
}

func benchBody(ref string, i int) []byte {
	products := []string{messages.ProductPayExCreditcard, messages.ProductBamboraCreditcard, messages.ProductDinteroPSPCreditcard}
	product := products[i%len(products)]
	return fmt.Appendf(nil, `{"session":{"customer":{"customer_id":"cust-%s","email":"bench@example.com",`+
		`"tokens":{%q:{"payment_token":"sandbox-ok-%d"}}},"order":{"amount":29900,"currency":"NOK","vat_amount":5980,`+
		`"merchant_reference":%q,"items":[{"id":"item-1","line_id":"1","description":"order line","quantity":1,`+
		`"amount":29900,"vat_amount":5980,"vat":25}]}},"payment":{"payment_product_type":%q,"operation":"unscheduled_purchase"}}`,
		ref, product, i, ref, product)
}

// benchMsg is a first delivery of a request.
type benchMsg struct {
	jetstream.Msg // not called; panics if the worker starts using more
	data          []byte
	seq           uint64
	acked         bool
}

func (m *benchMsg) Data() []byte         { return m.data }
func (m *benchMsg) Subject() string      { return messages.SubjectChargeRequest }
func (m *benchMsg) Headers() nats.Header { return nil }
func (m *benchMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: m.seq, Consumer: m.seq},
		NumDelivered: 1, Timestamp: time.Now()}, nil
}
func (m *benchMsg) Ack() error                       { m.acked = true; return nil }
func (m *benchMsg) InProgress() error                { return nil }
func (m *benchMsg) NakWithDelay(time.Duration) error { return nil }
func (m *benchMsg) Nak() error                       { return nil }
func (m *benchMsg) TermWithReason(string) error      { return nil }
func (m *benchMsg) DoubleAck(context.Context) error  { m.acked = true; return nil }
func (m *benchMsg) Reply() string                    { return "" }
func (m *benchMsg) Term() error                      { return nil }

// benchJS stores nothing and acknowledges every publish.
type benchJS struct {
	jetstream.JetStream
	published atomic.Int64
}

func (j *benchJS) PublishMsg(_ context.Context, m *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	j.published.Add(1)
	return &jetstream.PubAck{Stream: messages.StreamResults, Sequence: uint64(j.published.Load())}, nil
}

// benchStore grants every claim.
type benchStore struct{ Store }

func (benchStore) Claim(context.Context, idempotency.Key, string, uint64) (idempotency.Claim, error) {
	return idempotency.Claim{State: idempotency.StateNew, Attempts: 1, Token: "0123456789abcdef0123456789abcdef"}, nil
}
func (benchStore) Complete(context.Context, idempotency.Key, string, uint64, []byte, bool) error {
	return nil
}
func (benchStore) Extend(context.Context, idempotency.Key, string) error        { return nil }
func (benchStore) Park(context.Context, idempotency.Key, string, uint64) error  { return nil }
func (benchStore) Lease() time.Duration                                         { return 30 * time.Second }
func (benchStore) Release(context.Context, idempotency.Key, string, bool) error { return nil }

// benchGateway authorizes every charge.
type benchGateway struct{ Gateway }

func (benchGateway) PaySession(context.Context, []byte, ...dintero.CallOption) (*dintero.Transaction, error) {
	return &dintero.Transaction{ID: "T12345678.4xYz8Jc6eA7bQvY6nWZRtP", SessionID: "T12345678.4xYz8Jc6eA7bQvY6nWZRtQ",
		Status: dintero.StatusAuthorized, Amount: 29900, Currency: "NOK", CreatedAt: time.Now()}, nil
}
