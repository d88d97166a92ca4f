package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/idempotency/redistest"
	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/worker"
	"github.com/payworker/payworker/worker/natstest"
)

func payctl(t *testing.T, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(ctx, args, &out, &errOut)
	return out.String() + errOut.String(), err
}

func TestPayctl(t *testing.T) {
	ns := natstest.Start(t, natstest.Options{})
	_, js := ns.Connect(t)
	ctx := context.Background()
	if err := worker.Setup(ctx, js, worker.Config{}); err != nil {
		t.Fatal(err)
	}
	srv := redistest.Start(t, redistest.Options{})

	t.Run("charge sample", func(t *testing.T) {
		out, err := payctl(t, ctx, "charge", "--nats", ns.URL(), "--sample", "--ref", "ctl-1", "--card-token", "sandbox-ok-secret9")
		if err != nil || !strings.Contains(out, "published ctl-1 to payments.charge.request as PAYMENT_REQUESTS #") {
			t.Fatalf("out %q err %v", out, err)
		}
		if strings.Contains(out, "secret9") {
			t.Fatalf("output shows the token: %q", out)
		}
		out, _ = payctl(t, ctx, "charge", "--nats", ns.URL(), "--sample", "--ref", "ctl-1")
		if !strings.Contains(out, "duplicate Nats-Msg-Id") {
			t.Fatalf("a republish with the same id should say JetStream dropped it: %q", out)
		}
	})

	t.Run("session sample", func(t *testing.T) {
		out, err := payctl(t, ctx, "session", "--nats", ns.URL(), "--sample", "--ref", "ctl-s1")
		if err != nil || !strings.Contains(out, "published ctl-s1 to payments.session.request") {
			t.Fatalf("out %q err %v", out, err)
		}
	})

	t.Run("watch", func(t *testing.T) {
		wctx, cancel := context.WithCancel(ctx)
		var out bytes.Buffer
		var mu sync.Mutex
		done := make(chan error, 1)
		go func() {
			var b bytes.Buffer
			err := run(wctx, []string{"watch", "--nats", ns.URL(), "--outcome", "declined"}, &b, &bytes.Buffer{})
			mu.Lock()
			out = b
			mu.Unlock()
			done <- err
		}()
		time.Sleep(300 * time.Millisecond) // let the watcher subscribe
		for _, o := range []messages.Outcome{messages.OutcomeSucceeded, messages.OutcomeDeclined} {
			m := nats.NewMsg(messages.ResultSubject(messages.KindCharge, o))
			m.Data = []byte(`{"merchant_reference":"w-` + string(o) + `","outcome":"` + string(o) + `"}`)
			if _, err := js.PublishMsg(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(300 * time.Millisecond)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if !strings.Contains(out.String(), "w-declined") || strings.Contains(out.String(), "w-succeeded") {
			t.Fatalf("watch --outcome declined printed %q", out.String())
		}
	})

	t.Run("status", func(t *testing.T) {
		store, err := idempotency.New(srv.Client(t), idempotency.Options{})
		if err != nil {
			t.Fatal(err)
		}
		c, err := store.Claim(ctx, idempotency.ChargeKey("ctl-st"), "fp", 7)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Complete(ctx, idempotency.ChargeKey("ctl-st"), c.Token, 7, []byte(`{"outcome":"succeeded"}`), false); err != nil {
			t.Fatal(err)
		}
		out, err := payctl(t, ctx, "status", "--redis", srv.URL(), "ctl-st")
		if err != nil || !strings.Contains(out, "completed") || !strings.Contains(out, `{"outcome":"succeeded"}`) || !strings.Contains(out, "request sequence    7") {
			t.Fatalf("out %q err %v", out, err)
		}
		if _, err := payctl(t, ctx, "status", "--redis", srv.URL(), "nope"); err == nil || !strings.Contains(err.Error(), "no record") {
			t.Fatalf("unknown reference: %v", err)
		}
	})

	t.Run("dlq list and replay", func(t *testing.T) {
		m := nats.NewMsg(messages.SubjectDeadLetters)
		m.Data = []byte(`{"session":{"order":{"merchant_reference":"ctl-dead"},"customer":{"tokens":{"payex.creditcard":{"payment_token":"sandbox-ok-hidden"}}}}}`)
		m.Header.Set(messages.HeaderDeadReason, "gave up after 20 deliveries")
		m.Header.Set(messages.HeaderDeadSubject, messages.SubjectChargeRequest)
		ack, err := js.PublishMsg(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		out, err := payctl(t, ctx, "dlq", "list", "--nats", ns.URL())
		if err != nil || !strings.Contains(out, "ctl-dead") || !strings.Contains(out, "gave up after 20 deliveries") {
			t.Fatalf("list: %q %v", out, err)
		}
		if strings.Contains(out, "hidden") {
			t.Fatalf("dlq list shows a token: %q", out)
		}
		reqs, _ := js.Stream(ctx, messages.StreamRequests)
		before, _ := reqs.Info(ctx)
		out, err = payctl(t, ctx, "dlq", "replay", "--nats", ns.URL(), strconv.FormatUint(ack.Sequence, 10))
		if err != nil || !strings.Contains(out, "replayed dead letter") {
			t.Fatalf("replay: %q %v", out, err)
		}
		after, _ := reqs.Info(ctx)
		if after.State.Msgs != before.State.Msgs+1 {
			t.Fatalf("requests stream went from %d to %d messages, want one more", before.State.Msgs, after.State.Msgs)
		}
		dead, _ := js.Stream(ctx, messages.StreamDeadLetters)
		if _, err := dead.GetMsg(ctx, ack.Sequence); err == nil {
			t.Fatal("the replayed dead letter is still there")
		}
	})

	t.Run("usage errors", func(t *testing.T) {
		for _, args := range [][]string{{}, {"frobnicate"}, {"charge", "--nats", ns.URL()}, {"status"}, {"dlq"}, {"dlq", "replay", "--nats", ns.URL()}} {
			if _, err := payctl(t, ctx, args...); err == nil {
				t.Errorf("payctl %v: no error", args)
			}
		}
	})
}
