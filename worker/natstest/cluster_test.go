package natstest

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestClusterLeaderDiesAndReturns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := StartCluster(t, ClusterOptions{})
	if len(c.Servers) != 3 || len(strings.Split(c.URL(), ",")) != 3 {
		t.Fatalf("servers %d, URL %q", len(c.Servers), c.URL())
	}
	_, js := c.Connect(t)
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3, Retention: jetstream.WorkQueuePolicy})
	if err != nil {
		t.Fatal(err)
	}
	if info, err := st.Info(ctx); err != nil || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream info %+v, %v; want a leader and two replicas", info, err)
	}
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "w", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	publish := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if _, err := js.Publish(ctx, "r3.x", []byte(strconv.Itoa(i))); err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
		}
	}
	publish(0, 10)

	old, err := c.WaitStreamLeader(ctx, "R3")
	if err != nil {
		t.Fatal(err)
	}
	if cl, err := c.WaitConsumerLeader(ctx, "R3", "w"); err != nil || cl == nil {
		t.Fatalf("consumer leader: %v", err)
	}
	old.Close()
	if old.Running() {
		t.Fatal("closed server still running")
	}
	nl, err := c.WaitStreamLeader(ctx, "R3")
	if err != nil {
		t.Fatal(err)
	}
	if nl == old {
		t.Fatal("the closed node still leads")
	}
	publish(10, 20) // acknowledged by the two nodes left

	if err := old.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	// The consumer gets all 20, in order, whoever leads now.
	batch, err := cons.Fetch(20, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range batch.Messages() {
		if string(m.Data()) != strconv.Itoa(n) {
			t.Errorf("message %d is %q", n, m.Data())
		}
		_ = m.Ack()
		n++
	}
	if n != 20 {
		t.Errorf("fetched %d of 20 (%v)", n, batch.Error())
	}
	// The restarted node caught up with the writes it missed.
	err = poll(ctx, "restarted replica current", func() error {
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		for _, r := range info.Cluster.Replicas {
			if r.Name == old.Name() && (!r.Current || r.Offline) {
				return errors.New(r.Name + " not current")
			}
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	if c.Server(old.Name()) != old || c.Server("nope") != nil {
		t.Error("Server(name)")
	}
}
