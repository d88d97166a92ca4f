package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Default timeouts of a Process.
const (
	DefaultReadyTimeout = 30 * time.Second
	DefaultStopTimeout  = 15 * time.Second
)

// ErrNotRunning is returned by Kill and PID of a process that is not running.
var ErrNotRunning = errors.New("stack: process not running")

// Exit describes a process that ended without being asked to: a crash.
type Exit struct {
	Name string
	PID  int
	At   time.Time
	Err  error // from exec.Cmd.Wait; nil for a clean exit
}

// ProcessConfig describes one child process. The zero value of every
// optional field means the default named in its comment.
type ProcessConfig struct {
	Name    string   // for logs and errors, e.g. "worker-1" (required)
	Path    string   // binary (required)
	Args    []string // arguments
	Env     []string // KEY=VALUE added to this program's environment; later wins
	Dir     string   // working directory; default: this program's
	LogPath string   // stdout and stderr are appended here (required)
	// Ready reports nil once the process serves; Start polls it until
	// ReadyTimeout. Nil: ready as soon as it is started.
	Ready        func(ctx context.Context) error
	ReadyTimeout time.Duration // default DefaultReadyTimeout
	StopTimeout  time.Duration // SIGTERM grace before SIGKILL; default DefaultStopTimeout
	Logger       *slog.Logger  // lifecycle events; nil discards
}

// Process is a child process that can be started, stopped, killed and
// started again with the same command line. Its methods are safe for
// concurrent use.
type Process struct {
	cfg ProcessConfig
	log *slog.Logger

	mu     sync.Mutex // serialises Launch, Stop and Kill
	cur    *run       // nil when not running
	starts int
	exits  []Exit // unexpected exits, guarded by mu
}

// run is one life of the process.
type run struct {
	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited
	err      error         // Wait result, valid after done
	expected bool          // we stopped or killed it; guarded by Process.mu
}

// NewProcess returns a stopped process.
func NewProcess(cfg ProcessConfig) (*Process, error) {
	if cfg.Name == "" || cfg.Path == "" || cfg.LogPath == "" {
		return nil, errors.New("stack: ProcessConfig needs Name, Path and LogPath")
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Process{cfg: cfg, log: log.With("process", cfg.Name)}, nil
}

// Name returns the process name.
func (p *Process) Name() string { return p.cfg.Name }

// LogPath returns the file that collects the output of every run.
func (p *Process) LogPath() string { return p.cfg.LogPath }

// Start launches the process and waits until it is ready.
func (p *Process) Start(ctx context.Context) error {
	if err := p.Launch(); err != nil {
		return err
	}
	return p.WaitReady(ctx)
}

// Launch starts the process without waiting for it to be ready. Launching a
// running process is an error.
func (p *Process) Launch() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil {
		return fmt.Errorf("stack: %s is already running (pid %d)", p.cfg.Name, p.cur.cmd.Process.Pid)
	}
	out, err := os.OpenFile(p.cfg.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("stack: %s: %w", p.cfg.Name, err)
	}
	defer out.Close() // the child has its own descriptor
	cmd := exec.Command(p.cfg.Path, p.cfg.Args...)
	cmd.Dir = p.cfg.Dir
	cmd.Env = append(os.Environ(), p.cfg.Env...)
	cmd.Stdout = out
	cmd.Stderr = out
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("stack: start %s: %w", p.cfg.Name, err)
	}
	r := &run{cmd: cmd, done: make(chan struct{})}
	p.cur = r
	p.starts++
	p.log.Debug("started", "pid", cmd.Process.Pid)
	go p.wait(r)
	return nil
}

func (p *Process) wait(r *run) {
	r.err = r.cmd.Wait()
	close(r.done)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == r {
		p.cur = nil
	}
	if !r.expected {
		p.exits = append(p.exits, Exit{Name: p.cfg.Name, PID: r.cmd.Process.Pid, At: time.Now(), Err: r.err})
		p.log.Warn("exited unexpectedly", "pid", r.cmd.Process.Pid, "err", r.err, "log", p.cfg.LogPath)
	}
}

// WaitReady polls the Ready check until it passes, the process exits, ctx
// ends or ReadyTimeout passes.
func (p *Process) WaitReady(ctx context.Context) error {
	p.mu.Lock()
	r := p.cur
	p.mu.Unlock()
	if r == nil {
		return fmt.Errorf("stack: %s: %w", p.cfg.Name, ErrNotRunning)
	}
	if p.cfg.Ready == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ReadyTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		last = p.cfg.Ready(cctx)
		ccancel()
		if last == nil {
			return nil
		}
		select {
		case <-r.done:
			//nolint:errorlint // r.err is nil after exit status 0, which %w would print as %!w(<nil>)
			return fmt.Errorf("stack: %s exited before it was ready: %v (see %s)", p.cfg.Name, r.err, p.cfg.LogPath)
		case <-ctx.Done():
			return fmt.Errorf("stack: %s not ready: %w (last check: %w; see %s)", p.cfg.Name, context.Cause(ctx), last, p.cfg.LogPath)
		case <-tick.C:
		}
	}
}

// Stop sends SIGTERM to the process group and waits for the process to
// exit, sending SIGKILL after StopTimeout. Stopping a stopped process is a
// no-op.
func (p *Process) Stop() error {
	return p.halt(syscall.SIGTERM)
}

// Kill sends SIGKILL to the process group and waits for the process to
// exit: a crash, as far as the process can tell.
func (p *Process) Kill() error {
	return p.halt(syscall.SIGKILL)
}

func (p *Process) halt(sig syscall.Signal) error {
	p.mu.Lock()
	r := p.cur
	if r == nil {
		p.mu.Unlock()
		if sig == syscall.SIGKILL {
			return fmt.Errorf("stack: kill %s: %w", p.cfg.Name, ErrNotRunning)
		}
		return nil
	}
	r.expected = true
	p.mu.Unlock()

	pid := r.cmd.Process.Pid
	_ = signalGroup(r.cmd, sig)
	timer := time.NewTimer(p.cfg.StopTimeout)
	defer timer.Stop()
	var err error
	select {
	case <-r.done:
	case <-timer.C:
		_ = signalGroup(r.cmd, syscall.SIGKILL)
		<-r.done
		err = fmt.Errorf("stack: %s (pid %d) ignored SIGTERM for %v, killed", p.cfg.Name, pid, p.cfg.StopTimeout)
	}
	p.mu.Lock()
	if p.cur == r {
		p.cur = nil
	}
	p.mu.Unlock()
	p.log.Debug("stopped", "pid", pid, "signal", sig.String())
	return err
}

// Restart stops the process (gracefully) and starts it again.
func (p *Process) Restart(ctx context.Context) error {
	if err := p.Stop(); err != nil {
		return err
	}
	return p.Start(ctx)
}

// PID returns the process id of the running process.
func (p *Process) PID() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return 0, fmt.Errorf("stack: %s: %w", p.cfg.Name, ErrNotRunning)
	}
	return p.cur.cmd.Process.Pid, nil
}

// Running reports whether the process is running.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur != nil
}

// Starts returns how many times the process was launched.
func (p *Process) Starts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts
}

// Exits returns the exits nobody asked for (crashes), oldest first.
func (p *Process) Exits() []Exit {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Exit(nil), p.exits...)
}

// FreePort asks the kernel for a free port on 127.0.0.1. Another program
// may take it before it is used; Start then fails and can be retried.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("stack: find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("stack: find a free port: %w", err)
	}
	return port, nil
}
