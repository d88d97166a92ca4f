package stack

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/payworker/payworker/idempotency/redistest"
)

func TestRedisFailoverLosesWritesAfterTheMark(t *testing.T) {
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
	if err := c.Set(ctx, "kept", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	mark, err := r.MarkAOF()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "lost", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	rewritten, err := r.Failover(mark)
	if err != nil || rewritten {
		t.Fatalf("Failover: rewritten %v, %v", rewritten, err)
	}
	if n, err := c.Exists(ctx, "kept").Result(); err != nil || n != 1 {
		t.Errorf("the write before the mark: exists %d, %v; want kept", n, err)
	}
	if n, err := c.Exists(ctx, "lost").Result(); err != nil || n != 0 {
		t.Errorf("the write after the mark: exists %d, %v; want lost", n, err)
	}

	if err := r.FlushAll(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.DBSize(ctx).Result(); n != 0 {
		t.Errorf("after FlushAll: %d keys", n)
	}
}

func TestProcessSignalPausesAndResumes(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	p := shProcess(t, "while :; do date +%s%N; sleep 0.05; done", nil)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill() })
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		fi, err := os.Stat(p.LogPath())
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	time.Sleep(50 * time.Millisecond) // a write under way when the signal came ends
	before := size()
	time.Sleep(300 * time.Millisecond) // the pause itself
	if after := size(); after != before {
		t.Errorf("a stopped process wrote %d bytes", after-before)
	}
	if err := p.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	eventually(t, "output after SIGCONT", func() bool { return size() > before })
	if !p.Running() {
		t.Error("not running after SIGCONT")
	}
	_ = p.Kill()
	if err := p.Signal(syscall.SIGCONT); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Signal to a stopped process: %v, want ErrNotRunning", err)
	}
}
