package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/idempotency/redistest"
)

// NATS is a nats-server with JetStream on disk, on a fixed loopback port.
// Stop and Start keep the port and the store, so clients reconnect.
type NATS struct {
	*Process
	Port     int
	StoreDir string
}

// NewNATS returns a stopped nats-server that will listen on a free port
// and keep JetStream data in storeDir.
func NewNATS(bin, storeDir, logPath string, log *slog.Logger) (*NATS, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	n := &NATS{Port: port, StoreDir: storeDir}
	n.Process, err = NewProcess(ProcessConfig{
		Name:    "nats-server",
		Path:    bin,
		Args:    []string{"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", storeDir},
		LogPath: logPath,
		Ready:   n.ready,
		Logger:  log,
	})
	return n, err
}

// URL returns "nats://127.0.0.1:port".
func (n *NATS) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.Port) }

// Connect returns a connection that reconnects forever (every 250ms) and
// its JetStream context. The caller closes the connection.
func (n *NATS) Connect(opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	opts = append([]nats.Option{
		nats.Name("stack"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
	}, opts...)
	nc, err := nats.Connect(n.URL(), opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("stack: connect %s: %w", n.URL(), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("stack: jetstream: %w", err)
	}
	return nc, js, nil
}

// ready: JetStream answers an account info request.
func (n *NATS) ready(ctx context.Context) error { return JetStreamReady(ctx, n.URL()) }

// JetStreamReady reports whether the NATS server at url answers a
// JetStream account info request.
func JetStreamReady(ctx context.Context, url string) error {
	nc, err := nats.Connect(url, nats.Timeout(time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	_, err = js.AccountInfo(ctx)
	return err
}

// Redis is a redis-server with the append-only file (fsync every second),
// run by package redistest on a fixed loopback port.
type Redis struct {
	srv *redistest.Server
}

// StartRedis starts redis-server in dir on a free port.
func StartRedis(dir string) (*Redis, error) {
	srv, err := redistest.New(redistest.Options{Dir: dir, AppendOnly: true})
	if err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	return &Redis{srv: srv}, nil
}

// URL returns "redis://127.0.0.1:port/0".
func (r *Redis) URL() string { return r.srv.URL() }

// Addr returns "127.0.0.1:port".
func (r *Redis) Addr() string { return r.srv.Addr() }

// LogPath returns redis-server's log file.
func (r *Redis) LogPath() string { return filepath.Join(r.srv.Dir(), "redis.log") }

// Stop shuts redis-server down (SIGTERM: the AOF is flushed). Stopping a
// stopped server is a no-op.
func (r *Redis) Stop() error { return r.srv.Close() }

// Start starts a stopped redis-server again on the same port and data.
func (r *Redis) Start() error { return r.srv.Restart() }

// Restart stops and starts redis-server; with the AOF the data is kept.
func (r *Redis) Restart() error { return r.srv.Restart() }

// PID asks the running server for its process id.
func (r *Redis) PID() (int, error) {
	dctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := new(net.Dialer).DialContext(dctx, "tcp", r.Addr())
	if err != nil {
		return 0, fmt.Errorf("stack: redis: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, "INFO server\r\n"); err != nil {
		return 0, fmt.Errorf("stack: redis: %w", err)
	}
	buf := make([]byte, 64<<10)
	n, _ := io.ReadAtLeast(c, buf, 1)
	const key = "\r\nprocess_id:"
	s := string(buf[:n])
	if i := strings.Index(s, key); i >= 0 {
		rest := s[i+len(key):]
		if j := strings.Index(rest, "\r\n"); j >= 0 {
			return strconv.Atoi(rest[:j])
		}
	}
	return 0, fmt.Errorf("stack: redis: no process_id in INFO server")
}

// SandboxConfig are the dintero-sandbox settings. Zero means none of that
// fault; HangLimit defaults to 5s and RetryAfter to 1s.
type SandboxConfig struct {
	Latency                time.Duration // added to every API call
	LatencyJitter          time.Duration // random extra latency in [0, jitter)
	ErrorRate              float64       // fraction answered 500/503
	RateLimitRate          float64       // fraction answered 429
	RetryAfter             time.Duration // Retry-After of the 429s
	TimeoutAfterChargeRate float64       // fraction of charges recorded but not answered
	HangLimit              time.Duration // longest hang of such an answer
	ResetRate              float64       // fraction of connections dropped
	Seed                   int64         // fault randomness; 0: time based
	RateLimit              float64       // requests per second over every API call; 0: none
	RateBurst              int           // with RateLimit: calls at once; 0: the sandbox's default
	RetryAfterDelay        time.Duration // retry_after of soft declines, from the call; 0: the sandbox's default (24h)
}

// Args returns the dintero-sandbox command line for c on addr.
func (c SandboxConfig) Args(addr string) []string {
	if c.HangLimit <= 0 {
		c.HangLimit = 5 * time.Second
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = time.Second
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	var extra []string
	if c.RetryAfterDelay > 0 {
		extra = append(extra, "-retry-after-delay", c.RetryAfterDelay.String())
	}
	if c.RateLimit > 0 {
		extra = append(extra, "-rate-limit", f(c.RateLimit), "-rate-burst", strconv.Itoa(c.RateBurst))
	}
	return append([]string{
		"-addr", addr,
		"-latency", c.Latency.String(),
		"-latency-jitter", c.LatencyJitter.String(),
		"-error-rate", f(c.ErrorRate),
		"-rate-limit-rate", f(c.RateLimitRate),
		"-retry-after", c.RetryAfter.String(),
		"-timeout-after-charge-rate", f(c.TimeoutAfterChargeRate),
		"-hang-limit", c.HangLimit.String(),
		"-reset-rate", f(c.ResetRate),
		"-seed", strconv.FormatInt(c.Seed, 10),
	}, extra...)
}

// Sandbox is the dintero-sandbox binary. Its ledger lives in memory: a
// restart loses it.
type Sandbox struct {
	*Process
	Port int
}

// NewSandbox returns a stopped sandbox on a free port.
func NewSandbox(bin string, c SandboxConfig, logPath string, log *slog.Logger) (*Sandbox, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	s := &Sandbox{Port: port}
	s.Process, err = NewProcess(ProcessConfig{
		Name:    "dintero-sandbox",
		Path:    bin,
		Args:    c.Args("127.0.0.1:" + strconv.Itoa(port)),
		LogPath: logPath,
		Ready:   func(ctx context.Context) error { return httpOK(ctx, s.AdminURL()) },
		Logger:  log,
	})
	return s, err
}

// URL returns the API base URL, "http://127.0.0.1:port".
func (s *Sandbox) URL() string { return "http://127.0.0.1:" + strconv.Itoa(s.Port) }

// AdminURL returns the admin index, ".../__sandbox/"; the ledger is at
// AdminURL()+"ledger".
func (s *Sandbox) AdminURL() string { return s.URL() + dinterotest.AdminPrefix }

// WorkerConfig configures one payworker process.
type WorkerConfig struct {
	ID       int    // 1, 2, ...: names the process "worker-<ID>"
	NATSURL  string // required
	RedisURL string // required
	APIURL   string // Dintero (sandbox) base URL, required
	LogPath  string // required
	// Env are extra KEY=VALUE settings, applied last.
	Env    []string
	Logger *slog.Logger
}

// Worker is one payworker process with its health endpoint on a free
// loopback port.
type Worker struct {
	*Process
	ID       int
	HTTPPort int
}

// NewWorker returns a stopped worker. It uses the sandbox's default
// credentials and JSON logs.
func NewWorker(bin string, c WorkerConfig) (*Worker, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	account, client, secret := SandboxAccount()
	env := append([]string{
		"NATS_URL=" + c.NATSURL,
		"REDIS_URL=" + c.RedisURL,
		"DINTERO_API_URL=" + c.APIURL,
		"DINTERO_ACCOUNT_ID=" + account,
		"DINTERO_CLIENT_ID=" + client,
		"DINTERO_CLIENT_SECRET=" + secret,
		"PAYWORKER_HTTP_ADDR=127.0.0.1:" + strconv.Itoa(port),
		"LOG_FORMAT=json",
	}, c.Env...)
	w := &Worker{ID: c.ID, HTTPPort: port}
	w.Process, err = NewProcess(ProcessConfig{
		Name:    "worker-" + strconv.Itoa(c.ID),
		Path:    bin,
		Env:     env,
		LogPath: c.LogPath,
		Ready:   func(ctx context.Context) error { return httpOK(ctx, w.HealthURL()+"/readyz") },
		Logger:  c.Logger,
	})
	return w, err
}

// HealthURL returns "http://127.0.0.1:port"; /healthz and /readyz are below.
func (w *Worker) HealthURL() string { return "http://127.0.0.1:" + strconv.Itoa(w.HTTPPort) }

func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// Get fetches url and returns its body; a status other than 200 is an error.
// The caller closes the body.
func Get(ctx context.Context, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return resp.Body, nil
}

// GetJSON fetches url and decodes its JSON body into v (monitoring and
// admin endpoints); a status other than 200 is an error.
func GetJSON(ctx context.Context, url string, v any) error {
	body, err := Get(ctx, url)
	if err != nil {
		return err
	}
	defer body.Close()
	if err := json.NewDecoder(body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}
