package stack

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/worker"
)

// natsServerBinary returns the nats-server of go.mod's version that
// BuildBinaries keeps in its cache (make chaos and make bench build it),
// building it when it is not there yet: the one on PATH may be too old for
// the worker's consumer (Debian ships 2.9). The build costs about a minute
// on a fresh machine, once; the chaos runs reuse it.
func natsServerBinary(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b, err := BuildBinaries(ctx, BuildOptions{ModuleDir: filepath.Join("..", "..", "..")})
	if err != nil {
		t.Fatalf("building nats-server: %v", err)
	}
	return b.NATSServer
}

func TestNATSClusterLeaderKilled(t *testing.T) {
	bin := natsServerBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	c, err := NewNATSCluster(bin, dir, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(filepath.Join(dir, "n2", "nats.conf"))
	if err != nil || !strings.Contains(string(conf), "server_name: n2") || strings.Count(string(conf), "nats://127.0.0.1:") != 3 {
		t.Errorf("n2's config:\n%s (%v)", conf, err)
	}
	nc, js, err := c.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	cfg := worker.Config{MaxInFlight: 8, AckWait: 5 * time.Second}
	if err := SetupStreams(ctx, js, cfg, 3); err != nil {
		t.Fatal(err)
	}
	if err := WaitReplicated(ctx, js, "payworker", 3); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{messages.StreamRequests, messages.StreamResults, messages.StreamDeadLetters} {
		s, err := js.Stream(ctx, name)
		if err != nil || s.CachedInfo().Config.Replicas != 3 {
			t.Fatalf("stream %s: %v", name, err)
		}
	}
	cons, err := js.Consumer(ctx, messages.StreamRequests, "payworker")
	if err != nil || cons.CachedInfo().Config.Replicas != 3 || cons.CachedInfo().Config.AckPolicy != jetstream.AckExplicitPolicy {
		t.Fatalf("consumer: %+v, %v", cons.CachedInfo().Config, err)
	}

	leader, err := c.StreamLeader(ctx, js, messages.StreamRequests)
	if err != nil {
		t.Fatal(err)
	}
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	for {
		// Each try has its own deadline: a request lost with the dead node
		// would wait for ctx.
		tctx, tcancel := context.WithTimeout(ctx, 2*time.Second)
		next, err := c.StreamLeader(tctx, js, messages.StreamRequests)
		tcancel()
		if err == nil && next != leader {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no new leader: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if _, err := js.Publish(ctx, messages.SubjectChargeRequest, []byte("{}")); err != nil {
		t.Fatalf("publish with a node down: %v", err)
	}
	if err := leader.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := WaitReplicated(ctx, js, "payworker", 3); err != nil {
		t.Fatal(err)
	}
}
