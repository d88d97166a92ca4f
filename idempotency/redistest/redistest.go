// Package redistest runs a real redis-server as a child process for tests,
// benchmarks and chaos programs: on a free 127.0.0.1 port, in a temporary
// directory, with persistence off unless asked for. The server can be
// stopped and restarted on the same port and directory to test reconnects
// and, with AppendOnly, durability.
//
// StartSentinel runs a primary, its replicas and three Sentinels (failover
// tests); StartCluster runs a Redis Cluster formed by hand (three masters by
// default). Both use the same vocabulary: Start(tb, opts), New(opts), Close.
//
// On Linux the child gets SIGKILL when the process that started it dies, so
// a crashed or timed-out test leaves no orphan behind.
package redistest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNoRedisServer is returned by New when no redis-server binary is
// found on PATH or at /usr/bin/redis-server.
var ErrNoRedisServer = errors.New("redistest: redis-server not found")

const (
	fallbackBinary = "/usr/bin/redis-server"
	readyTimeout   = 10 * time.Second
	stopTimeout    = 10 * time.Second
	portAttempts   = 5
)

// Options configures the server. The zero value is valid.
type Options struct {
	// Dir holds the log and any AOF files; it is created if needed. Start
	// defaults it to tb.TempDir(); New requires it.
	Dir string
	// AppendOnly turns on the append-only file (appendonly yes, appendfsync
	// everysec), so data survives Restart. Default off: no persistence at all.
	AppendOnly bool
	// Password, when set, is required of clients (--requirepass) and
	// used towards a primary when the server is a replica (--masterauth).
	Password string
	// Args are extra redis-server arguments appended to the command line,
	// e.g. []string{"--maxmemory", "10mb"}.
	Args []string
}

// Server is a running (or stopped) redis-server child process.
type Server struct {
	bin  string
	dir  string
	port int // fixed for the life of the Server
	opts Options

	// conf, when set, is a config file passed first on the command line
	// (Sentinel keeps its state there); sentinel runs redis-server
	// --sentinel. Both are set by NewSentinel.
	conf     string
	sentinel bool

	mu   sync.Mutex // serialises Close and Restart
	proc *process   // nil when stopped
}

// process is one run of redis-server.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // cmd.Wait result, valid once done is closed
}

// Start runs redis-server in tb.TempDir() on a free loopback port, waits
// until it answers PING and stops it in tb.Cleanup. It fails the test when
// redis-server is missing or does not start.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if opts.Dir == "" {
		opts.Dir = tb.TempDir()
	}
	s, err := New(opts)
	if errors.Is(err, ErrNoRedisServer) {
		tb.Fatalf("redis-server not found: run `make test` (installs it) or apt-get install redis-server")
	}
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Logf("redistest: stop: %v", err)
		}
	})
	return s
}

// New is Start without testing.TB, for benchmark and chaos programs. The
// caller must call Close.
func New(opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("redistest: Options.Dir is required")
	}
	bin, err := findBinary()
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("redistest: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("redistest: %w", err)
	}
	return newServer(bin, dir, opts, nil)
}

// newServer starts a Server on a free port, trying another port when the
// one chosen was taken meanwhile. prepare, when not nil, sets the server up
// (config file, mode) once its port is known and before it starts.
func newServer(bin, dir string, opts Options, prepare func(*Server) error) (*Server, error) {
	var lastErr error
	for range portAttempts {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{bin: bin, dir: dir, port: port, opts: opts}
		if prepare != nil {
			if err := prepare(s); err != nil {
				return nil, err
			}
		}
		lastErr = s.start()
		if lastErr == nil {
			return s, nil
		}
		if !errors.Is(lastErr, errAddrInUse) {
			return nil, lastErr
		}
	}
	return nil, lastErr
}

func findBinary() (string, error) {
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	if fi, err := os.Stat(fallbackBinary); err == nil && !fi.IsDir() {
		return fallbackBinary, nil
	}
	return "", ErrNoRedisServer
}

// freePort asks the kernel for a free loopback port. Another process may take
// it before redis-server binds it; New then retries with a new one.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redistest: find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("redistest: find a free port: %w", err)
	}
	return port, nil
}

// Addr returns "127.0.0.1:port".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns "redis://127.0.0.1:port/0", for redis.ParseURL.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Dir returns the server's working directory (log file, AOF files).
func (s *Server) Dir() string { return s.dir }

// Client returns a new client for the server, closed in tb.Cleanup.
func (s *Server) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), Password: s.opts.Password})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

var errAddrInUse = errors.New("address already in use")

// start launches the process on s.port and waits until it answers PING.
func (s *Server) start() error {
	appendonly := "no"
	if s.opts.AppendOnly {
		appendonly = "yes"
	}
	var args []string
	if s.conf != "" {
		args = append(args, s.conf)
	}
	if s.sentinel {
		args = append(args, "--sentinel")
	}
	args = append(args,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--daemonize", "no",
		"--logfile", filepath.Join(s.dir, "redis.log"),
	)
	if !s.sentinel {
		args = append(args, "--save", "", "--appendonly", appendonly)
	}
	if s.opts.AppendOnly {
		args = append(args, "--appendfsync", "everysec")
	}
	if s.opts.Password != "" && !s.sentinel {
		args = append(args, "--requirepass", s.opts.Password, "--masterauth", s.opts.Password)
	}
	args = append(args, s.opts.Args...)

	// Output before the log file is opened (bad arguments) goes here.
	out, err := os.OpenFile(filepath.Join(s.dir, "redis.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("redistest: %w", err)
	}
	defer out.Close() // the child keeps its own descriptor

	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	cmd.Stdout = out
	cmd.Stderr = out
	setParentDeathSignal(cmd)
	logStart := fileSize(filepath.Join(s.dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: start %s: %w", s.bin, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()

	if err := s.waitReady(p.done, cmd.Process.Pid); err != nil {
		_ = cmd.Process.Kill() // harmless if it already exited
		<-p.done
		tail := s.logTail(logStart)
		if bytes.Contains(tail, []byte("Address already in use")) {
			return fmt.Errorf("redistest: port %d: %w", s.port, errAddrInUse)
		}
		return fmt.Errorf("redistest: redis-server on port %d: %w; log: %s", s.port, err, bytes.TrimSpace(tail))
	}
	s.proc = p
	return nil
}

// waitReady polls until the server is ready (see ping), the process exits or
// readyTimeout passes.
func (s *Server) waitReady(done <-chan struct{}, pid int) error {
	deadline := time.Now().Add(readyTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return errors.New("exited before answering PING")
		case <-tick.C:
		}
		if ping(s.Addr(), pid, s.opts.Password) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no PONG within %v", readyTimeout)
		}
	}
}

// ping reports whether the server on addr is the process pid and ready: it
// answers PING with +PONG (not -LOADING) and INFO server names pid, so a
// foreign server that grabbed the port in the meantime is not mistaken for
// ours.
func ping(addr string, pid int, password string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	c, err := new(net.Dialer).DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	r := bufio.NewReader(c)
	if password != "" {
		if _, err := fmt.Fprintf(c, "*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n", len(password), password); err != nil {
			return false
		}
		if line, err := r.ReadString('\n'); err != nil || line != "+OK\r\n" {
			return false
		}
	}
	if _, err := c.Write([]byte("PING\r\nINFO server\r\n")); err != nil {
		return false
	}
	if line, err := r.ReadString('\n'); err != nil || line != "+PONG\r\n" {
		return false
	}
	head, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(head, "$") {
		return false
	}
	n, err := strconv.Atoi(strings.TrimSpace(head[1:]))
	if err != nil || n < 0 || n > 1<<20 {
		return false
	}
	info := make([]byte, n)
	if _, err := io.ReadFull(r, info); err != nil {
		return false
	}
	return bytes.Contains(info, []byte("\r\nprocess_id:"+strconv.Itoa(pid)+"\r\n"))
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logTail returns what the server wrote since offset in redis.log, plus
// redis.out, limited to the last 2 KiB.
func (s *Server) logTail(offset int64) []byte {
	var b []byte
	if data, err := os.ReadFile(filepath.Join(s.dir, "redis.log")); err == nil && int64(len(data)) >= offset {
		b = append(b, data[offset:]...)
	}
	if data, err := os.ReadFile(filepath.Join(s.dir, "redis.out")); err == nil {
		b = append(b, data...)
	}
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return b
}

// Close sends SIGTERM and waits for the process to exit (SIGKILL after 10s).
// Closing a stopped server is a no-op; Restart starts it again.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopLocked()
}

func (s *Server) stopLocked() error {
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("redistest: redis-server on port %d ignored SIGTERM for %v, killed", s.port, stopTimeout)
	}
	if p.err != nil {
		return fmt.Errorf("redistest: redis-server on port %d: %w", s.port, p.err)
	}
	return nil
}

// Restart stops the server and starts it again on the same port and
// directory. With AppendOnly the data is kept.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.stopLocked(); err != nil {
		return err
	}
	// The port was ours a moment ago; retry briefly in case the kernel has
	// not released it yet.
	var err error
	for range portAttempts {
		if err = s.start(); !errors.Is(err, errAddrInUse) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}
