package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/worker"
	"github.com/payworker/payworker/worker/natstest"
)

// TestPublisherHoldsConflicts publishes a plan with a fake worker that
// answers every request except one original, and checks that the
// conflict on that reference waits for the original's result, and that
// readAll then sees every result.
func TestPublisherHoldsConflicts(t *testing.T) {
	srv := natstest.Start(t, natstest.Options{})
	_, js := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := worker.Setup(ctx, js, worker.Config{}); err != nil {
		t.Fatal(err)
	}
	pl, err := newPlan(planParams{Seed: 1, Requests: 40, DupRate: 0.1, ConflictRate: 0.1, MaxDelay: 3})
	if err != nil {
		t.Fatal(err)
	}
	var target planned // an original whose reference has a conflict
	for _, m := range pl.Msgs {
		if m.Kind == kindConflict {
			target = pl.Msgs[m.Original]
			break
		}
	}

	// The fake worker takes the requests from the consumer Setup made and
	// publishes a succeeded result for each, except for the target's
	// original, which waits for release.
	release := make(chan struct{})
	cons, err := js.Consumer(ctx, messages.StreamRequests, "payworker")
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			t.Errorf("metadata: %v", err)
			return
		}
		ref, seq := messages.MerchantReference(m.Data()), md.Sequence.Stream
		_ = m.Ack()
		if m.Headers().Get(messages.HeaderMsgID) == target.MsgID {
			go func() {
				<-release
				answer(ctx, t, js, ref, seq)
			}()
			return
		}
		answer(ctx, t, js, ref, seq)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()

	tr := newTracker()
	fctx, stopFollow := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = tr.follow(fctx, js) }()
	defer func() { stopFollow(); <-done }()

	pub := newPublisher(js, pl, tr, 2000, slog.New(slog.DiscardHandler))
	if err := pub.runSchedule(ctx); err != nil {
		t.Fatal(err)
	}
	// Everything but the held conflict(s) went out; the target's conflict
	// waits.
	if pub.heldBack() == 0 {
		t.Fatal("no conflict held back although its original has no result")
	}
	for _, p := range pub.published() {
		m := pl.Msgs[p.Index]
		if m.Kind == kindConflict && m.Ref == target.Ref {
			t.Fatalf("conflict on %s published before its original had a result", m.Ref)
		}
	}
	close(release)
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	if err := pub.drainHeld(dctx); err != nil {
		t.Fatalf("drainHeld: %v", err)
	}
	if got, want := len(pub.published()), len(pl.Msgs); got != want {
		t.Fatalf("published %d messages, want %d", got, want)
	}
	deadline := time.Now().Add(10 * time.Second)
	for tr.missing(pub.seqs()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests without a result", tr.missing(pub.seqs()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	all, err := readAll(ctx, js, messages.StreamResults)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(pl.Msgs) {
		t.Errorf("readAll returned %d results, want %d", len(all), len(pl.Msgs))
	}
}

// answer publishes a succeeded result for request seq as the worker would.
func answer(ctx context.Context, t *testing.T, js jetstream.JetStream, ref string, seq uint64) {
	res := messages.ChargeResult{MerchantReference: ref, Outcome: messages.OutcomeSucceeded}
	body, err := json.Marshal(res)
	if err != nil {
		t.Error(err)
		return
	}
	out := &nats.Msg{Subject: messages.ResultSubject(messages.KindCharge, res.Outcome), Data: body, Header: nats.Header{}}
	out.Header.Set(messages.HeaderMsgID, messages.ResultMsgID(ref, res.Outcome, seq))
	if _, err := js.PublishMsg(ctx, out); err != nil {
		t.Errorf("publish result: %v", err)
	}
}
