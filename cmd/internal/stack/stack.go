package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/messages"
)

// Options configures Start. The zero value of every field except Binaries
// means the default named in its comment.
type Options struct {
	// Binaries are the programs to run (see BuildBinaries). Required.
	Binaries Binaries
	// Dir holds every data folder and log file. Default: a new folder
	// under os.TempDir(), which RemoveDir deletes.
	Dir string
	// Workers is how many payworker processes to run; default 3, -1 for
	// none.
	Workers int
	// Sandbox are the sandbox's faults and settings.
	Sandbox SandboxConfig
	// WorkerEnv are extra KEY=VALUE settings for every worker, applied
	// after the stack's own (NATS_URL, REDIS_URL, DINTERO_*,
	// PAYWORKER_HTTP_ADDR, LOG_FORMAT=json), so they win.
	WorkerEnv []string
	// Logger gets lifecycle events; nil discards.
	Logger *slog.Logger
}

// Stack is a running set of processes. Its fields do not change after Start.
type Stack struct {
	Dir     string
	NATS    *NATS
	Redis   *Redis
	Sandbox *Sandbox
	Workers []*Worker

	log *slog.Logger
}

// Start builds the folder layout and starts redis-server, nats-server, the
// sandbox and the workers, in that order, waiting until each is ready (for
// workers: /readyz answers 200) and the workers have created the streams.
// On error everything started so far is stopped; the Stack returned with
// the error, when not nil, still names the folder that holds the logs.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	b := o.Binaries
	if b.NATSServer == "" || b.Payworker == "" || b.Sandbox == "" {
		return nil, errors.New("stack: Options.Binaries is incomplete; see BuildBinaries")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir := o.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "paystack-"); err != nil {
			return nil, fmt.Errorf("stack: %w", err)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	s := &Stack{Dir: dir, log: log}
	defer func() {
		if err != nil {
			_ = s.Stop()
		}
	}()

	log.Info("starting stack", "dir", dir)
	if s.Redis, err = StartRedis(filepath.Join(dir, "redis")); err != nil {
		return s, err
	}
	if s.NATS, err = NewNATS(b.NATSServer, filepath.Join(dir, "nats"), filepath.Join(dir, "nats.log"), log); err != nil {
		return s, err
	}
	if err = s.NATS.Start(ctx); err != nil {
		return s, err
	}
	if s.Sandbox, err = NewSandbox(b.Sandbox, o.Sandbox, filepath.Join(dir, "sandbox.log"), log); err != nil {
		return s, err
	}
	if err = s.Sandbox.Start(ctx); err != nil {
		return s, err
	}
	n := o.Workers
	if n == 0 {
		n = 3
	}
	for i := 1; i <= n; i++ {
		w, err := NewWorker(b.Payworker, WorkerConfig{
			ID:       i,
			NATSURL:  s.NATS.URL(),
			RedisURL: s.Redis.URL(),
			APIURL:   s.Sandbox.URL(),
			LogPath:  filepath.Join(dir, "worker-"+strconv.Itoa(i)+".log"),
			Env:      o.WorkerEnv,
			Logger:   log,
		})
		if err != nil {
			return s, err
		}
		s.Workers = append(s.Workers, w)
		if err := w.Launch(); err != nil {
			return s, err
		}
	}
	for _, w := range s.Workers {
		if err := w.WaitReady(ctx); err != nil {
			return s, err
		}
	}
	if len(s.Workers) > 0 {
		if err := s.WaitSetup(ctx, 30*time.Second); err != nil {
			return s, err
		}
	}
	log.Info("stack ready", "nats", s.NATS.URL(), "redis", s.Redis.URL(), "sandbox", s.Sandbox.URL(), "workers", len(s.Workers))
	return s, nil
}

// WaitSetup waits until the three payworker streams exist, which the
// workers create at start.
func (s *Stack) WaitSetup(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nc, js, err := s.NATS.Connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	for _, name := range []string{messages.StreamRequests, messages.StreamResults, messages.StreamDeadLetters} {
		for {
			_, err := js.Stream(ctx, name)
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("stack: stream %s not there: %w (last error: %w)", name, context.Cause(ctx), err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// Processes returns every child process except redis-server (which
// package redistest runs): nats-server, the sandbox and the workers.
func (s *Stack) Processes() []*Process {
	var ps []*Process
	if s.NATS != nil {
		ps = append(ps, s.NATS.Process)
	}
	if s.Sandbox != nil {
		ps = append(ps, s.Sandbox.Process)
	}
	for _, w := range s.Workers {
		ps = append(ps, w.Process)
	}
	return ps
}

// Exits returns the unexpected exits of every process.
func (s *Stack) Exits() []Exit {
	var out []Exit
	for _, p := range s.Processes() {
		out = append(out, p.Exits()...)
	}
	return out
}

// Stop stops the workers first (so they drain while their dependencies are
// still up), then the sandbox, nats-server and redis-server. It returns the
// first error but always tries every component. The folder stays; see
// RemoveDir.
func (s *Stack) Stop() error {
	var errs []error
	done := make(chan error, len(s.Workers))
	for _, w := range s.Workers {
		go func() { done <- w.Stop() }()
	}
	for range s.Workers {
		errs = append(errs, <-done)
	}
	if s.Sandbox != nil {
		errs = append(errs, s.Sandbox.Stop())
	}
	if s.NATS != nil {
		errs = append(errs, s.NATS.Stop())
	}
	if s.Redis != nil {
		errs = append(errs, s.Redis.Stop())
	}
	s.log.Info("stack stopped", "dir", s.Dir)
	return errors.Join(errs...)
}

// RemoveDir deletes the stack's folder, logs and data included. Call it
// after Stop.
func (s *Stack) RemoveDir() error {
	return os.RemoveAll(s.Dir)
}

// SandboxAccount returns the credentials every worker uses.
func SandboxAccount() (accountID, clientID, clientSecret string) {
	return dinterotest.DefaultAccountID, dinterotest.DefaultClientID, dinterotest.DefaultClientSecret
}
