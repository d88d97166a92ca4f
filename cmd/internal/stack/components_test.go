package stack

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/payworker/payworker/idempotency/redistest"
)

func TestRedisRestartKeepsData(t *testing.T) {
	r, err := StartRedis(t.TempDir())
	if errors.Is(err, redistest.ErrNoRedisServer) {
		t.Skip("redis-server not installed")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Stop() })
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	pid1, err := r.PID()
	if err != nil || pid1 <= 0 {
		t.Fatalf("PID() = %d, %v", pid1, err)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.PID(); err == nil {
		t.Error("PID() of a stopped server succeeded")
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Errorf("after restart GET k = %q, %v; want v (AOF)", got, err)
	}
	if pid2, _ := r.PID(); pid2 == pid1 {
		t.Errorf("restarted server kept pid %d", pid1)
	}
}

func TestNATSRestartKeepsStreamAndPort(t *testing.T) {
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Skip("no nats-server on PATH (BuildBinaries builds one; this test does not, to stay fast)")
	}
	dir := t.TempDir()
	n, err := NewNATS(bin, filepath.Join(dir, "nats"), filepath.Join(dir, "nats.log"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop() })
	nc, js, err := n.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "s", []byte("before")); err != nil {
		t.Fatal(err)
	}
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The same connection reconnects to the same URL and finds the data.
	var info *jetstream.StreamInfo
	for {
		s, err := js.Stream(ctx, "S")
		if err == nil {
			if info, err = s.Info(ctx); err == nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stream not back after restart: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if info.State.Msgs != 1 {
		t.Errorf("stream has %d messages after restart, want 1", info.State.Msgs)
	}
}
