package stack

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func shProcess(t *testing.T, script string, mod func(*ProcessConfig)) *Process {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	cfg := ProcessConfig{Name: "sh", Path: sh, Args: []string{"-c", script}, Dir: dir, LogPath: filepath.Join(dir, "out.log")}
	if mod != nil {
		mod(&cfg)
	}
	p, err := NewProcess(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill() })
	return p
}

// eventually polls cond until it holds or 10s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNewProcessValidates(t *testing.T) {
	for _, cfg := range []ProcessConfig{
		{Path: "x", LogPath: "y"},
		{Name: "x", LogPath: "y"},
		{Name: "x", Path: "y"},
	} {
		if _, err := NewProcess(cfg); err == nil {
			t.Errorf("NewProcess(%+v) succeeded, want an error", cfg)
		}
	}
}

func TestProcessLifecycle(t *testing.T) {
	ready := false
	p := shProcess(t, "touch ready; exec sleep 60", func(c *ProcessConfig) {
		c.Ready = func(context.Context) error {
			if _, err := os.Stat(filepath.Join(c.Dir, "ready")); err != nil {
				return err
			}
			ready = true
			return nil
		}
	})
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if !ready || !p.Running() {
		t.Fatalf("after Start: ready %v, running %v", ready, p.Running())
	}
	if err := p.Launch(); err == nil {
		t.Error("second Launch of a running process succeeded")
	}
	pid1, err := p.PID()
	if err != nil || pid1 <= 0 {
		t.Fatalf("PID() = %d, %v", pid1, err)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if p.Running() {
		t.Error("running after Kill")
	}
	if _, err := p.PID(); !errors.Is(err, ErrNotRunning) {
		t.Errorf("PID after Kill: err = %v, want ErrNotRunning", err)
	}
	if err := p.Kill(); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Kill of a killed process: err = %v, want ErrNotRunning", err)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("Stop of a stopped process: %v", err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	pid3, _ := p.PID()
	if pid3 == pid1 {
		t.Errorf("restarted process kept pid %d", pid1)
	}
	if n := p.Starts(); n != 3 {
		t.Errorf("Starts() = %d, want 3", n)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if ex := p.Exits(); len(ex) != 0 {
		t.Errorf("Exits() = %v, want none: every exit was asked for", ex)
	}
}

func TestProcessUnexpectedExit(t *testing.T) {
	p := shProcess(t, "echo hello from the child; exit 3", nil)
	if err := p.Launch(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the exit", func() bool { return len(p.Exits()) == 1 })
	ex := p.Exits()[0]
	var ee *exec.ExitError
	if !errors.As(ex.Err, &ee) || ee.ExitCode() != 3 || ex.Name != "sh" || ex.PID <= 0 {
		t.Errorf("exit = %+v, want sh with status 3", ex)
	}
	if p.Running() {
		t.Error("running after it exited")
	}
	b, err := os.ReadFile(p.LogPath())
	if err != nil || !strings.Contains(string(b), "hello from the child") {
		t.Errorf("log = %q, %v; want the child's output", b, err)
	}
}

func TestProcessNotReady(t *testing.T) {
	for _, tc := range []struct {
		name, script, want string
	}{
		{"exits first", "exit 1", "exited before it was ready"},
		{"never ready", "exec sleep 60", "not ready"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := shProcess(t, tc.script, func(c *ProcessConfig) {
				c.Ready = func(context.Context) error { return errors.New("nope") }
				c.ReadyTimeout = 300 * time.Millisecond
			})
			err := p.Start(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Start: err = %v, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestProcessStopEscalates(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("process groups and /proc: Linux only")
	}
	p := shProcess(t, `trap "" TERM; echo $$ > pid; sleep 60 & echo $! > child; wait; wait`, func(c *ProcessConfig) {
		c.StopTimeout = 300 * time.Millisecond
	})
	if err := p.Launch(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(p.LogPath())
	var child int
	eventually(t, "the child's pid", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "child"))
		if err != nil {
			return false
		}
		child, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	err := p.Stop()
	if err == nil || !strings.Contains(err.Error(), "ignored SIGTERM") {
		t.Errorf("Stop: err = %v, want it to say the process ignored SIGTERM", err)
	}
	if p.Running() {
		t.Error("running after Stop")
	}
	// The grandchild was in the same process group: it died too.
	eventually(t, "the grandchild to die", func() bool { return !alive(child) })
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestFreePort(t *testing.T) {
	a, err := FreePort()
	if err != nil || a <= 0 || a > 65535 {
		t.Fatalf("FreePort() = %d, %v", a, err)
	}
}

func TestSandboxArgs(t *testing.T) {
	args := strings.Join(SandboxConfig{ErrorRate: 0.05, RateLimitRate: 0.03, Latency: 100 * time.Millisecond}.Args("127.0.0.1:1"), " ")
	for _, want := range []string{"-addr 127.0.0.1:1", "-error-rate 0.05", "-rate-limit-rate 0.03", "-latency 100ms", "-hang-limit 5s", "-retry-after 1s"} {
		if !strings.Contains(args, want) {
			t.Errorf("Args() = %q, missing %q", args, want)
		}
	}
	if strings.Contains(args, "-rate-limit ") {
		t.Errorf("Args() = %q: a rate limit that was not asked for", args)
	}
	args = strings.Join(SandboxConfig{RateLimit: 500, RateBurst: 50}.Args("127.0.0.1:1"), " ")
	if !strings.Contains(args, "-rate-limit 500 -rate-burst 50") {
		t.Errorf("Args() = %q, missing the rate limit", args)
	}
}
