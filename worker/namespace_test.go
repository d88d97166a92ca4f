package worker_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/idempotency/redistest"
	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/messages/publish"
	"github.com/payworker/payworker/worker"
	"github.com/payworker/payworker/worker/natstest"
)

// A shared is one NATS server, one redis-server and one Dintero sandbox,
// for several deployments.
type shared struct {
	t       *testing.T
	nats    *natstest.Server
	js      jetstream.JetStream
	rdb     *redis.Client
	sandbox *dinterotest.Server
}

func newShared(t *testing.T, sandbox dinterotest.Options) *shared {
	t.Helper()
	s := &shared{t: t, nats: natstest.Start(t, natstest.Options{}), sandbox: dinterotest.Start(t, sandbox)}
	_, s.js = s.nats.Connect(t)
	s.rdb = redistest.Start(t, redistest.Options{}).Client(t)
	return s
}

// nsConfig is a test worker's config in namespace ns.
func nsConfig(ns string) worker.Config {
	return worker.Config{
		Namespace:     ns,
		MaxInFlight:   8,
		AckWait:       2 * time.Second,
		MaxDeliver:    8,
		RetryDelay:    50 * time.Millisecond,
		MaxRetryDelay: 300 * time.Millisecond,
		ShutdownGrace: 5 * time.Second,
	}
}

// nsStore is the idempotency store of namespace ns, under the prefix
// payworker uses for it by default (payworker:<ns>:idem:).
func (s *shared) nsStore(ns string) *idempotency.Store {
	st, err := idempotency.New(s.rdb, idempotency.Options{Prefix: idempotency.NamespacePrefix(ns), Lease: 1500 * time.Millisecond})
	if err != nil {
		s.t.Fatal(err)
	}
	return st
}

func (s *shared) client() *dintero.Client {
	c, err := dintero.New(dintero.Config{
		AccountID: dinterotest.DefaultAccountID, ClientID: dinterotest.DefaultClientID,
		ClientSecret: dinterotest.DefaultClientSecret, APIURL: s.sandbox.URL(), Timeout: time.Second,
		Retry: dintero.RetryConfig{InitialInterval: 10 * time.Millisecond, MaxInterval: 50 * time.Millisecond,
			MaxElapsedTime: 300 * time.Millisecond, MaxRetryAfter: 50 * time.Millisecond, MaxAttempts: 3},
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

// deploy sets up cfg's streams, bucket and consumer and runs a worker in
// it on its own connection until the test ends; Run must return nil.
func (s *shared) deploy(cfg worker.Config, gw worker.Gateway) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := worker.Setup(ctx, s.js, cfg); err != nil {
		s.t.Fatalf("setup of namespace %q: %v", cfg.Namespace, err)
	}
	_, js := s.nats.Connect(s.t)
	w, err := worker.New(js, s.nsStore(cfg.Namespace), gw, cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(rctx) }()
	var once sync.Once
	s.t.Cleanup(func() {
		once.Do(func() {
			stop()
			if err := <-done; err != nil {
				s.t.Errorf("worker.Run in namespace %q: %v", cfg.Namespace, err)
			}
		})
	})
}

// streamMsgs returns every message the stream holds.
func (s *shared) streamMsgs(name string) []*jetstream.RawStreamMsg {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, name)
	if err != nil {
		s.t.Fatalf("stream %s: %v", name, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			s.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// streamCount is how many messages the stream holds.
func (s *shared) streamCount(name string) uint64 {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, name)
	if err != nil {
		s.t.Fatalf("stream %s: %v", name, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	return info.State.Msgs
}

// waitFor polls cond until it holds.
func (s *shared) waitFor(within time.Duration, what string, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// chargeResults decodes the charge results in namespace ns's results
// stream, and checks every result's subject is ns's.
func (s *shared) chargeResults(names messages.Names) []messages.ChargeResult {
	s.t.Helper()
	var out []messages.ChargeResult
	for _, m := range s.streamMsgs(names.StreamResults) {
		if !strings.HasPrefix(m.Subject, names.Subject("payments.charge.result.")) {
			continue
		}
		var r messages.ChargeResult
		if err := json.Unmarshal(m.Data, &r); err != nil {
			s.t.Fatalf("result on %s: %v", m.Subject, err)
		}
		if want := names.ResultSubject(messages.KindCharge, r.Outcome); m.Subject != want {
			s.t.Errorf("%s's %s result on %s, want %s", r.MerchantReference, r.Outcome, m.Subject, want)
		}
		out = append(out, r)
	}
	return out
}

// Issue 13: deployments in the default namespace and in namespaces "a" and
// "b" share one NATS server (one account) and one Redis. Each sets up its
// own streams, bucket and consumer without error (no "filtered consumer
// not unique on workqueue stream"), takes only its own requests and
// publishes its results only to its own stream; the sandbox charges every
// request once.
func TestNamespacesShareOneNATSAccount(t *testing.T) {
	s := newShared(t, dinterotest.Options{Seed: 1})
	namespaces := []string{"", "a", "b"}
	for _, ns := range namespaces {
		s.deploy(nsConfig(ns), s.client())
	}
	// Namespaces named like the default subjects' first tokens overlap
	// nothing either: JetStream would refuse their streams.
	for _, ns := range []string{"payworker", "charge", "result"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := worker.Setup(ctx, s.js, nsConfig(ns)); err != nil {
			t.Errorf("setup of namespace %q beside the others: %v", ns, err)
		}
		cancel()
	}

	const charges = 3
	ref := func(ns string, i int) string { return fmt.Sprintf("ns-%s-%d", cmp.Or(ns, "default"), i) }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, ns := range namespaces {
		for i := range charges {
			body := chargeBody(ref(ns, i), messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"1", 100)
			if _, err := publish.ChargeBody(ctx, s.js, body, "", publish.Namespace(ns)); err != nil {
				t.Fatal(err)
			}
		}
		body := fmt.Appendf(nil, `{"url": {"return_url": "https://example.com/thanks", "callback_url": "https://example.com/cb"},
  "order": {"amount": 100, "currency": "NOK", "merchant_reference": %q},
  "customer": {"tokens": {"payex.creditcard": {"payment_token": "sandbox-ok-1"}}}, "profile_id": "default"}`, ref(ns, 99))
		if _, err := publish.SessionBody(ctx, s.js, body, "", publish.Namespace(ns)); err != nil {
			t.Fatal(err)
		}
	}

	for _, ns := range namespaces {
		names := messages.NamesFor(ns)
		// Results are published before their requests are acked: once
		// the work queue is empty every result is out.
		s.waitFor(20*time.Second, "namespace "+ns+" drained", func() bool {
			return s.streamCount(names.StreamRequests) == 0 && s.streamCount(names.StreamResults) >= charges+1
		})
		if n := s.streamCount(names.StreamResults); n != charges+1 {
			t.Errorf("%s holds %d results, want %d", names.StreamResults, n, charges+1)
		}
		var refs []string
		for _, r := range s.chargeResults(names) {
			if r.Outcome != messages.OutcomeSucceeded || r.Duplicate {
				t.Errorf("namespace %q: %+v, want succeeded", ns, r)
			}
			refs = append(refs, r.MerchantReference)
		}
		slices.Sort(refs)
		if want := []string{ref(ns, 0), ref(ns, 1), ref(ns, 2)}; !slices.Equal(refs, want) {
			t.Errorf("%s has the charge results of %v, want %v", names.StreamResults, refs, want)
		}
		created := 0
		for _, m := range s.streamMsgs(names.StreamResults) {
			var r messages.SessionResult
			if m.Subject == names.ResultSubject(messages.KindSession, messages.OutcomeCreated) &&
				json.Unmarshal(m.Data, &r) == nil && r.MerchantReference == ref(ns, 99) {
				created++
			}
		}
		if created != 1 {
			t.Errorf("%s has %d created session results of %s, want 1", names.StreamResults, created, ref(ns, 99))
		}
		if n := s.streamCount(names.StreamDeadLetters); n != 0 {
			t.Errorf("%s holds %d dead letters", names.StreamDeadLetters, n)
		}
		kv, err := s.js.KeyValue(ctx, names.Stream(worker.SessionsBucket))
		if err != nil {
			t.Fatal(err)
		}
		if st, err := kv.Status(ctx); err != nil || st.Values() != 1 {
			t.Errorf("bucket %s: %v values, %v; want the 1 session", names.Stream(worker.SessionsBucket), st.Values(), err)
		}
		if _, err := s.js.Consumer(ctx, names.StreamRequests, "payworker"); err != nil {
			t.Errorf("consumer payworker on %s: %v", names.StreamRequests, err)
		}
		// The records are under the namespace's Redis prefix.
		rec, err := s.nsStore(ns).Get(ctx, idempotency.ChargeKey(ref(ns, 0)))
		if err != nil || rec.Result == nil {
			t.Errorf("record of %s in namespace %q: %+v, %v", ref(ns, 0), ns, rec, err)
		}
	}
	ledger := map[string]int{}
	for _, c := range s.sandbox.Ledger() {
		ledger[c.MerchantReference]++
	}
	for _, ns := range namespaces {
		for i := range charges {
			if n := ledger[ref(ns, i)]; n != 1 {
				t.Errorf("sandbox ledger: %d charges of %s, want 1", n, ref(ns, i))
			}
		}
	}
	if len(s.sandbox.Ledger()) != len(namespaces)*charges {
		t.Errorf("sandbox ledger holds %d charges, want %d", len(s.sandbox.Ledger()), len(namespaces)*charges)
	}
}

// Issue 13: a charge parked in namespace "a" (its outcome unknown) has its
// schedule in a's requests stream, on a's schedule subject, due back on a's
// request subject, and is resolved there; a dunning attempt goes the same
// way through a's retry subject. The default deployment on the same server
// sees none of it.
func TestScheduleRoundTripsInNamespace(t *testing.T) {
	s := newShared(t, dinterotest.Options{Seed: 1, RetryAfterDelay: 2 * time.Second})
	gw := &outageGateway{Gateway: s.client()}
	gw.down.Store(true)
	cfg := nsConfig("a")
	cfg.MaxDeliver = 3
	cfg.ResolveSchedule = []time.Duration{2 * time.Second, 2 * time.Second}
	cfg.ReviewEvery = 2 * time.Second
	s.deploy(cfg, gw)
	s.deploy(nsConfig(""), s.client())
	names := messages.NamesFor("a")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const ref = "parked-in-a"
	body := chargeBody(ref, messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.TokenAuthorized+"7", 100)
	ack, err := publish.ChargeBody(ctx, s.js, body, "", publish.Namespace("a"))
	if err != nil {
		t.Fatal(err)
	}
	s.waitFor(15*time.Second, "the unknown event", func() bool { return len(s.chargeResults(names)) == 1 })
	if r := s.chargeResults(names)[0]; r.Outcome != messages.OutcomeUnknown {
		t.Fatalf("first event %+v, want unknown", r)
	}
	// The schedule: found with payctl's wildcard, in the namespace. While
	// Dintero is down a lookup that fires schedules again on the same
	// subject, so it is polled for.
	want := names.Subject(worker.ScheduleSubject(messages.KindCharge, ref, ack.Sequence))
	if !strings.HasPrefix(want, "a.payworker.schedule.charge.") {
		t.Fatalf("schedule subject %s", want)
	}
	requests, err := s.js.Stream(ctx, names.StreamRequests)
	if err != nil {
		t.Fatal(err)
	}
	var schedule *jetstream.RawStreamMsg
	s.waitFor(10*time.Second, "the schedule in "+names.StreamRequests, func() bool {
		info, err := requests.Info(ctx, jetstream.WithSubjectFilter(names.Subject(worker.ScheduleSubjects(messages.KindCharge, ref))))
		if err != nil || len(info.State.Subjects) != 1 {
			return false
		}
		if _, ok := info.State.Subjects[want]; !ok {
			t.Fatalf("schedules %v, want %s", info.State.Subjects, want)
		}
		schedule, err = requests.GetLastMsgForSubject(ctx, want)
		return err == nil
	})
	if got := schedule.Header.Get("Nats-Schedule-Target"); got != names.SubjectChargeRequest {
		t.Errorf("the schedule is due back on %q, want %q", got, names.SubjectChargeRequest)
	}
	gw.down.Store(false)
	s.waitFor(20*time.Second, "the resolved result", func() bool { return len(s.chargeResults(names)) == 2 })
	if r := s.chargeResults(names)[1]; r.Outcome != messages.OutcomeSucceeded || r.Duplicate || r.MerchantReference != ref {
		t.Fatalf("final %+v, want succeeded", r)
	}

	// Dunning: a soft decline, retried through a.payworker.retry.
	const soft = "dunning-in-a"
	body = chargeBody(soft, messages.ProductPayExCreditcard, messages.OperationUnscheduledPurchase, dinterotest.SoftDeclineToken(1, "ns"), 100)
	ack, err = publish.ChargeBody(ctx, s.js, body, "", publish.Namespace("a"), publish.RetryUntil(time.Now().Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	retry := names.Subject(worker.RetrySubject(messages.KindCharge, soft, ack.Sequence))
	s.waitFor(10*time.Second, "the retry schedule on "+retry, func() bool {
		_, err := requests.GetLastMsgForSubject(ctx, retry)
		return err == nil
	})
	s.waitFor(20*time.Second, "the retried charge", func() bool {
		rs := s.chargeResults(names)
		return len(rs) == 4 && rs[3].Outcome == messages.OutcomeSucceeded
	})
	if r := s.chargeResults(names)[2]; r.Outcome != messages.OutcomeRetryScheduled || r.MerchantReference != soft {
		t.Errorf("third event %+v, want retry_scheduled of %s", r, soft)
	}
	for ref, want := range map[string]int{ref: 1, soft: 1} {
		n := 0
		for _, c := range s.sandbox.Ledger() {
			if c.MerchantReference == ref {
				n++
			}
		}
		if n != want {
			t.Errorf("ledger: %d charges of %s, want %d", n, ref, want)
		}
	}
	def := messages.NamesFor("")
	for _, stream := range []string{def.StreamRequests, def.StreamResults, def.StreamDeadLetters} {
		if n := s.streamCount(stream); n != 0 {
			t.Errorf("the default deployment's %s holds %d messages", stream, n)
		}
	}
}

// Issue 13: a namespace that cannot be a subject token and a stream name
// prefix stops New with one error naming the setting.
func TestNamespaceValidated(t *testing.T) {
	for _, ns := range []string{"Acct2", "acct.2", "acct*", "acct 2", strings.Repeat("n", messages.MaxNamespaceLen+1)} {
		_, err := worker.New(stubJS{}, stubStore{}, stubGateway{}, worker.Config{Namespace: ns})
		if err == nil || !strings.Contains(err.Error(), "Namespace") || strings.Count(err.Error(), "\n") > 0 {
			t.Errorf("New with namespace %q: %v; want one line naming Namespace", ns, err)
		}
		if _, err := worker.NewCallbacks(stubJS{}, stubGateway{}, stubDeliveries{}, worker.CallbackConfig{
			Secret: []byte("s"), AccountID: "T12345678", Namespace: ns}); err == nil {
			t.Errorf("NewCallbacks with namespace %q: no error", ns)
		}
	}
	cfg := worker.Config{Namespace: "acct2"}
	streams := worker.Streams(cfg)
	var got []string
	for _, s := range streams {
		got = append(got, s.Name+" "+strings.Join(s.Subjects, ","))
	}
	want := []string{
		"ACCT2_PAYMENT_REQUESTS acct2.payments.*.request,acct2.payworker.schedule.>,acct2.payworker.retry.>",
		"ACCT2_PAYMENT_RESULTS acct2.payments.*.result.>",
		"ACCT2_PAYMENT_DEADLETTERS acct2.payments.deadletter",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Streams in acct2:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if f := worker.ConsumerConfig(cfg).FilterSubjects; !slices.Equal(f, []string{"acct2.payments.charge.request", "acct2.payments.session.request"}) {
		t.Errorf("consumer filters in acct2: %v", f)
	}
	if f := worker.ConsumerConfig(worker.Config{}).FilterSubjects; !slices.Equal(f, []string{messages.SubjectChargeRequest, messages.SubjectSessionRequest}) {
		t.Errorf("default consumer filters: %v", f)
	}
}

// Stubs for constructors that touch nothing.
type (
	stubJS         struct{ jetstream.JetStream }
	stubStore      struct{ worker.Store }
	stubGateway    struct{ worker.Gateway }
	stubDeliveries struct{ worker.Deliveries }
)

// Issue 13: the callback endpoint of a deployment in namespace "a"
// publishes a customer's completed payment to a's result subject.
func TestCallbackResultInNamespace(t *testing.T) {
	s := newShared(t, dinterotest.Options{Seed: 1, CallbackSecret: []byte(callbackSecret)})
	names := messages.NamesFor("a")
	cb, err := worker.NewCallbacks(s.js, s.client(), s.nsStore("a"), worker.CallbackConfig{
		Secret: []byte(callbackSecret), AccountID: dinterotest.DefaultAccountID, Namespace: "a"})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(worker.CallbackPath, cb)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	cfg := nsConfig("a")
	cfg.CallbackURL = srv.URL + worker.CallbackPath
	s.deploy(cfg, s.client())
	s.deploy(nsConfig(""), s.client())

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const ref = "cit-in-a"
	body := fmt.Appendf(nil, `{"url": {"return_url": "https://example.com/thanks"},
  "order": {"amount": 500, "currency": "NOK", "merchant_reference": %q},
  "customer": {"tokens": {"bambora.creditcard": {"payment_token": "sandbox-ok-1"}}}, "profile_id": "default"}`, ref)
	if _, err := publish.SessionBody(ctx, s.js, body, "", publish.Namespace("a")); err != nil {
		t.Fatal(err)
	}
	sessionResults := func() map[string]messages.SessionResult {
		out := map[string]messages.SessionResult{}
		for _, m := range s.streamMsgs(names.StreamResults) {
			var r messages.SessionResult
			if json.Unmarshal(m.Data, &r) == nil && r.MerchantReference == ref {
				out[m.Subject] = r
			}
		}
		return out
	}
	created := names.ResultSubject(messages.KindSession, messages.OutcomeCreated)
	s.waitFor(10*time.Second, "the created result on "+created, func() bool { _, ok := sessionResults()[created]; return ok })
	if _, err := s.sandbox.PaySession(sessionResults()[created].SessionID, "123"); err != nil {
		t.Fatalf("customer pays: %v", err)
	}
	completed := names.ResultSubject(messages.KindSession, messages.OutcomeCompleted)
	s.waitFor(10*time.Second, "the completed result on "+completed, func() bool { _, ok := sessionResults()[completed]; return ok })
	if n := s.streamCount(messages.StreamResults); n != 0 {
		t.Errorf("the default deployment's %s holds %d results", messages.StreamResults, n)
	}
}
