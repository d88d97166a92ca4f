package worker_test

// Issue 12, items 5 to 7: requests that were never answered.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/worker"
)

// Issue 12 item 5: a small invalid request whose validation finds many
// problems with long paths (9 KB: 60 nested keys of escaped quotes, then
// 100 repeated keys) is answered once, at once: the rejected result lists
// at most 20 field errors and counts them all in fields_total, and the
// request leaves the work queue instead of being handed back for ever
// because its result is too large to publish.
func TestIssue12Item5HugeValidationOutputAnswered(t *testing.T) {
	for _, kind := range []string{messages.KindCharge, messages.KindSession} {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t)
			e.startWorker(e.store(), e.client(5*time.Second))
			ref := "i12-5-" + kind
			var body []byte
			if kind == messages.KindCharge {
				body = chargeBody(ref, messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"1", 100)
			} else {
				body = i12SessionBody(ref, messages.ProductPayExCreditcard, dinterotest.TokenAuthorized+"1", 100, "")
			}
			body = i12WithManyLongProblems(body)
			if len(body) > 12<<10 {
				t.Fatalf("the body is %d bytes; the point is a small one", len(body))
			}
			if kind == messages.KindCharge {
				e.publish(body)
			} else {
				i12PublishSession(e, body)
			}

			var code string
			var fields []messages.FieldError
			var total int
			if kind == messages.KindCharge {
				r := e.waitResults(ref, 1, 5*time.Second)[0]
				if r.Outcome != messages.OutcomeRejected || r.Error == nil {
					t.Fatalf("result %+v, want rejected", r)
				}
				code, fields, total = r.Error.Code, r.Error.Fields, r.Error.FieldsTotal
			} else {
				r := e.waitSessionResults(ref, 1, 5*time.Second)[0]
				if r.Outcome != messages.OutcomeRejected || r.Error == nil {
					t.Fatalf("result %+v, want rejected", r)
				}
				code, fields, total = r.Error.Code, r.Error.Fields, r.Error.FieldsTotal
			}
			if code != messages.CodeInvalidRequest || len(fields) != 20 || total < 100 {
				t.Errorf("error code %q, %d fields listed, fields_total %d; want invalid_request, 20, at least 100", code, len(fields), total)
			}
			i12Wait(t, 5*time.Second, "the request leaves the work queue", func() bool { return i12Requests(t, e) == 0 })
			if n := i12Deliveries(t, e); n != 1 {
				t.Errorf("the request was delivered %d times, want once", n)
			}
			dead := i12DeadLetters(t, e)
			if len(dead) != 1 || len(dead[0].reason) > 8<<10 {
				reasons := make([]int, len(dead))
				for i, d := range dead {
					reasons[i] = len(d.reason)
				}
				t.Errorf("%d dead letters with reasons of %v bytes; want 1, its reason header at most 8 KiB", len(dead), reasons)
			}
			if kind == messages.KindCharge {
				e.assertNoMoreResults(ref, 1, 300*time.Millisecond)
			} else {
				e.assertNoMoreSessionResults(ref, 1, 300*time.Millisecond)
			}
		})
	}
}

// i12WithManyLongProblems adds to a request body a member the types do not
// model, holding 60 nested objects whose keys are 64 double quotes each,
// and at the bottom 100 keys given twice: 100 problems, each with a path of
// some 8,000 characters that JSON escapes again.
func i12WithManyLongProblems(body []byte) []byte {
	key := `"` + strings.Repeat(`\"`, 64) + `"`
	var b strings.Builder
	for range 60 {
		b.WriteString("{" + key + ":")
	}
	b.WriteString("{")
	for i := range 100 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"k%d":0,"k%d":0`, i, i)
	}
	b.WriteString("}")
	b.WriteString(strings.Repeat("}", 60))
	s := strings.TrimSpace(string(body))
	return []byte(s[:len(s)-1] + `, "x_padding": ` + b.String() + "}")
}

// Issue 12 item 5 (last resort): when a result cannot be published at all,
// the request still ends after MaxDeliver deliveries, with a dead letter,
// rather than being handed back for ever.
func TestIssue12Item5UnpublishableResultEnds(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Every result is now too large for the results stream.
	s, err := e.js.Stream(ctx, messages.StreamResults)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sc := info.Config
	sc.MaxMsgSize = 16
	if _, err := e.js.UpdateStream(ctx, sc); err != nil {
		t.Fatal(err)
	}
	e.cfg.SkipSetup = true // keep the stream as it is
	e.startWorker(e.store(), e.client(5*time.Second))
	e.publish([]byte(`{"session": "not an object"}`))
	i12Wait(t, 10*time.Second, "the request leaves the work queue after MaxDeliver deliveries", func() bool { return i12Requests(t, e) == 0 })
	if n := i12Deliveries(t, e); n > uint64(e.cfg.MaxDeliver) {
		t.Errorf("delivered %d times, want at most MaxDeliver = %d", n, e.cfg.MaxDeliver)
	}
	if dead := i12DeadLetters(t, e); len(dead) != 1 {
		t.Errorf("%d dead letters, want 1", len(dead))
	}
}

// Issue 12 item 6: a request whose handling panics every time is not
// handed back for ever: after MaxDeliver deliveries it leaves the work
// queue. As the worker never held the claim, it cannot tell whether an
// earlier attempt reached Dintero: it parks the request (one non-final
// unknown event, a scheduled lookup) rather than guess failed (issue 14).
func TestIssue12Item6PanicGivesUpAfterMaxDeliver(t *testing.T) {
	e := newEnv(t)
	const ref = "i12-6-panic"
	store := &i12PanickyClaims{Store: e.store(), ref: ref}
	e.startWorker(store, e.client(5*time.Second))
	e.publish(chargeBody(ref, messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"1", 100))
	r := e.waitResults(ref, 1, 10*time.Second)[0]
	if r.Outcome != messages.OutcomeUnknown || r.Error == nil || r.Error.Code != messages.CodeOutcomeUnknown {
		t.Errorf("result %+v, want the non-final unknown", r)
	}
	i12Wait(t, 5*time.Second, "the request leaves the work queue", func() bool { return i12Requests(t, e) == 0 })
	if n := store.panics.Load(); n < 1 || n > int64(e.cfg.MaxDeliver) {
		t.Errorf("Claim panicked %d times, want from 1 to MaxDeliver = %d", n, e.cfg.MaxDeliver)
	}
	if n := e.sandbox.Counters().PayRequests; n != 0 {
		t.Errorf("%d pay calls, want none", n)
	}
	e.assertNoMoreResults(ref, 1, 300*time.Millisecond)
}

// i12PanickyClaims panics when a reference containing ref is claimed.
type i12PanickyClaims struct {
	*idempotency.Store
	ref    string
	panics atomic.Int64
}

func (s *i12PanickyClaims) Claim(ctx context.Context, key idempotency.Key, fingerprint string, seq uint64) (idempotency.Claim, error) {
	if strings.Contains(key.Ref, s.ref) {
		s.panics.Add(1)
		panic("i12: the store panics")
	}
	return s.Store.Claim(ctx, key, fingerprint, seq)
}

// Issue 12 item 7: with SkipSetup, a consumer set up by someone else whose
// settings break a guarantee is refused at start (Run returns an error
// wrapping ErrConfig that says why) instead of running, or retrying, for
// ever: a server-side MaxDeliver lower than the worker's strands requests
// without a result; an ack policy other than explicit loses them; a filter
// without payments.charge.request never sees the charges.
func TestIssue12Item7SkipSetupRefusesUnsafeConsumer(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, e *env)
		want  []string // each in the error, case-insensitively
	}{
		{"MaxDeliver lower than the worker's", func(t *testing.T, e *env) {
			i12ReplaceConsumer(t, e, func(c *jetstream.ConsumerConfig) { c.MaxDeliver = 3 })
		}, []string{"MaxDeliver", "3", "8"}},
		{"ack policy not explicit", func(t *testing.T, e *env) {
			// A work-queue stream takes only explicit acks, so the requests
			// stream is made a limits stream first.
			i12ReplaceConsumer(t, e, func(c *jetstream.ConsumerConfig) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				s, err := e.js.Stream(ctx, messages.StreamRequests)
				if err != nil {
					t.Fatal(err)
				}
				info, err := s.Info(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if err := e.js.DeleteStream(ctx, messages.StreamRequests); err != nil {
					t.Fatal(err)
				}
				sc := info.Config
				sc.Retention = jetstream.LimitsPolicy
				if _, err := e.js.CreateStream(ctx, sc); err != nil {
					t.Fatal(err)
				}
				c.AckPolicy = jetstream.AckAllPolicy
			})
		}, []string{"ack"}},
		{"filter without the charge subject", func(t *testing.T, e *env) {
			i12ReplaceConsumer(t, e, func(c *jetstream.ConsumerConfig) {
				c.FilterSubjects = nil
				c.FilterSubject = messages.SubjectSessionRequest
			})
		}, []string{messages.SubjectChargeRequest}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tc.setup(t, e)
			cfg := e.cfg
			cfg.SkipSetup = true
			w, err := worker.New(e.js, e.store(), e.client(5*time.Second), cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- w.Run(ctx) }()
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil && !errors.Is(err, worker.ErrConfig) {
					t.Errorf("Run: %v", err)
				}
			})
			select {
			case err = <-done:
				done <- err // for the cleanup
			case <-time.After(5 * time.Second):
				t.Fatalf("Run is still running after 5s on a consumer whose settings break a guarantee (%s); it must refuse to start", tc.name)
			}
			if !errors.Is(err, worker.ErrConfig) {
				t.Fatalf("Run returned %v, want an error wrapping worker.ErrConfig", err)
			}
			for _, w := range tc.want {
				if !containsFold(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// i12ReplaceConsumer deletes the shared consumer and creates it again as
// Setup made it, changed by edit (which may replace the stream too).
func i12ReplaceConsumer(t *testing.T, e *env, edit func(*jetstream.ConsumerConfig)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := e.js.Consumer(ctx, messages.StreamRequests, "payworker")
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cc := info.Config
	if err := e.js.DeleteConsumer(ctx, messages.StreamRequests, "payworker"); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatal(err)
	}
	edit(&cc)
	if _, err := e.js.CreateConsumer(ctx, messages.StreamRequests, cc); err != nil {
		t.Fatalf("creating the consumer by hand: %v", err)
	}
}

// i12Wait polls cond until it holds or within passes.
func i12Wait(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// i12Requests is the number of requests left in the work queue.
func i12Requests(t *testing.T, e *env) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, messages.StreamRequests)
	if err != nil {
		t.Fatal(err)
	}
	// Requests only: the stream also keeps the schedules of parked ones.
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(messages.SubjectRequests))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

// i12DeadLetter is one message of the dead-letter stream.
type i12DeadLetter struct {
	reason, subject string
	data            []byte
}

// i12DeadLetters returns the dead-letter stream's messages.
func i12DeadLetters(t *testing.T, e *env) []i12DeadLetter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, messages.StreamDeadLetters)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []i12DeadLetter
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted
		}
		out = append(out, i12DeadLetter{reason: m.Header.Get(messages.HeaderDeadReason), subject: m.Header.Get(messages.HeaderDeadSubject), data: m.Data})
	}
	return out
}

// i12Deliveries is how many messages the shared consumer delivered,
// redeliveries included.
func i12Deliveries(t *testing.T, e *env) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := e.js.Consumer(ctx, messages.StreamRequests, "payworker")
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.Delivered.Consumer
}
