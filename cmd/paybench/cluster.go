package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/cmd/internal/stack"
	"github.com/payworker/payworker/messages"
)

// cluster is one scenario's processes. It is assembled from package
// stack's components rather than stack.Start because the benchmark needs
// nats-server's monitoring port (for /connz and /varz), one worker of its
// own configuration, or none.
type cluster struct {
	dir      string
	redis    *stack.Redis
	nats     *stack.Process
	natsPort int
	monPort  int
	sandbox  *stack.Sandbox
	worker   *stack.Worker   // the (first) payworker under test, or nil
	workers  []*stack.Worker // every payworker under test
	// naive is the naive worker, or nil.
	naive    *stack.Process
	log      *slog.Logger
	keep     bool
	stopDone bool
}

// clusterOptions says what to run.
type clusterOptions struct {
	Dir       string
	Binaries  stack.Binaries
	Sandbox   *stack.SandboxConfig // nil: no sandbox
	WorkerEnv []string             // with Worker: extra settings
	Worker    bool                 // run the real payworker
	Workers   int                  // with Worker: how many processes; 0 means 1
	Naive     bool                 // run `paybench naive-worker`
	NaiveEnv  []string
	Keep      bool
	Logger    *slog.Logger
}

// startCluster starts redis-server, nats-server and what o asks for, and
// waits until each is ready and the streams exist.
func startCluster(ctx context.Context, o clusterOptions) (_ *cluster, err error) {
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	c := &cluster{dir: o.Dir, log: o.Logger, keep: o.Keep}
	defer func() {
		if err != nil {
			c.keep = true // the caller names the folder: keep the logs
			c.stop()
		}
	}()
	if c.redis, err = stack.StartRedis(filepath.Join(o.Dir, "redis")); err != nil {
		return c, err
	}
	if c.natsPort, err = stack.FreePort(); err != nil {
		return c, err
	}
	if c.monPort, err = stack.FreePort(); err != nil {
		return c, err
	}
	store := filepath.Join(o.Dir, "nats")
	if err := os.MkdirAll(store, 0o755); err != nil {
		return c, err
	}
	c.nats, err = stack.NewProcess(stack.ProcessConfig{
		Name: "nats-server",
		Path: o.Binaries.NATSServer,
		Args: []string{"-a", "127.0.0.1", "-p", strconv.Itoa(c.natsPort), "-m", strconv.Itoa(c.monPort),
			"-js", "-sd", store},
		LogPath: filepath.Join(o.Dir, "nats.log"),
		Ready:   c.natsReady,
		Logger:  o.Logger,
	})
	if err != nil {
		return c, err
	}
	if err := c.nats.Start(ctx); err != nil {
		return c, err
	}
	if o.Sandbox != nil {
		if c.sandbox, err = stack.NewSandbox(o.Binaries.Sandbox, *o.Sandbox, filepath.Join(o.Dir, "sandbox.log"), o.Logger); err != nil {
			return c, err
		}
		if err := c.sandbox.Start(ctx); err != nil {
			return c, err
		}
	}
	if o.Worker {
		for id := 1; id <= max(o.Workers, 1); id++ {
			log := "worker.log"
			if id > 1 {
				log = fmt.Sprintf("worker-%d.log", id)
			}
			w, err := stack.NewWorker(o.Binaries.Payworker, stack.WorkerConfig{
				ID: id, NATSURL: c.natsURL(), RedisURL: c.redis.URL(), APIURL: c.sandbox.URL(),
				LogPath: filepath.Join(o.Dir, log), Env: o.WorkerEnv, Logger: o.Logger,
			})
			if err != nil {
				return c, err
			}
			c.workers = append(c.workers, w)
			if err := w.Start(ctx); err != nil {
				return c, err
			}
		}
		c.worker = c.workers[0]
	}
	if o.Naive {
		exe, err := os.Executable()
		if err != nil {
			return c, err
		}
		account, client, secret := stack.SandboxAccount()
		c.naive, err = stack.NewProcess(stack.ProcessConfig{
			Name: "naive-worker",
			Path: exe,
			Args: []string{"naive-worker"},
			Env: append([]string{
				"NATS_URL=" + c.natsURL(), "REDIS_URL=" + c.redis.URL(), "DINTERO_API_URL=" + c.sandbox.URL(),
				"DINTERO_ACCOUNT_ID=" + account, "DINTERO_CLIENT_ID=" + client, "DINTERO_CLIENT_SECRET=" + secret,
			}, o.NaiveEnv...),
			LogPath: filepath.Join(o.Dir, "naive.log"),
			Ready:   c.naiveReady,
			Logger:  o.Logger,
		})
		if err != nil {
			return c, err
		}
		if err := c.naive.Start(ctx); err != nil {
			return c, err
		}
	}
	if o.Worker {
		if err := c.waitStreams(ctx, 30*time.Second); err != nil {
			return c, err
		}
	}
	return c, nil
}

func (c *cluster) natsURL() string { return "nats://127.0.0.1:" + strconv.Itoa(c.natsPort) }
func (c *cluster) monURL() string  { return "http://127.0.0.1:" + strconv.Itoa(c.monPort) }

// connect returns a connection for the load generator and its JetStream
// context, which allows maxPending asynchronous publishes in flight.
func (c *cluster) connect(maxPending int) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(c.natsURL(), nats.Name("paybench"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, nil, fmt.Errorf("connect %s: %w", c.natsURL(), err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(maxPending))
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

func (c *cluster) natsReady(ctx context.Context) error { return stack.JetStreamReady(ctx, c.natsURL()) }

// naiveReady: the naive worker has created its consumer.
func (c *cluster) naiveReady(ctx context.Context) error {
	nc, err := nats.Connect(c.natsURL(), nats.Timeout(time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	_, err = js.Consumer(ctx, messages.StreamRequests, naiveConsumer)
	return err
}

// waitStreams waits until the worker has created its streams.
func (c *cluster) waitStreams(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nc, js, err := c.connect(1)
	if err != nil {
		return err
	}
	defer nc.Close()
	for _, name := range []string{messages.StreamRequests, messages.StreamResults, messages.StreamDeadLetters} {
		for {
			if _, err := js.Stream(ctx, name); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("stream %s not created: %w", name, context.Cause(ctx))
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// stop stops everything, workers first, and removes the folder unless
// asked to keep it.
func (c *cluster) stop() {
	if c.stopDone {
		return
	}
	c.stopDone = true
	var errs []error
	for _, p := range c.procs() {
		errs = append(errs, p.Stop())
	}
	if c.redis != nil {
		errs = append(errs, c.redis.Stop())
	}
	if err := errors.Join(errs...); err != nil {
		c.log.Warn("stopping the cluster", "err", err)
	}
	if c.keep {
		c.log.Info("data and logs kept", "dir", c.dir)
		return
	}
	if err := os.RemoveAll(c.dir); err != nil {
		c.log.Warn("removing the folder", "dir", c.dir, "err", err)
	}
}

// procs lists the processes other than redis-server, workers first.
func (c *cluster) procs() []*stack.Process {
	var out []*stack.Process
	if c.naive != nil {
		out = append(out, c.naive)
	}
	for _, w := range c.workers {
		out = append(out, w.Process)
	}
	for _, p := range []*stack.Process{c.sandboxProc(), c.nats} {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}

func (c *cluster) sandboxProc() *stack.Process {
	if c.sandbox == nil {
		return nil
	}
	return c.sandbox.Process
}

// exits lists the processes that died without being asked to.
func (c *cluster) exits() []stack.Exit {
	var out []stack.Exit
	for _, p := range c.procs() {
		out = append(out, p.Exits()...)
	}
	return out
}

// natsConn is one connection of nats-server's /connz.
type natsConn struct {
	Name    string `json:"name"`
	InMsgs  int64  `json:"in_msgs"`
	OutMsgs int64  `json:"out_msgs"`
}

// connMsgs returns in_msgs+out_msgs summed over the connections named name.
func (c *cluster) connMsgs(ctx context.Context, name string) (int64, error) {
	var cz struct {
		Connections []natsConn `json:"connections"`
	}
	if err := stack.GetJSON(ctx, c.monURL()+"/connz?limit=4096", &cz); err != nil {
		return 0, err
	}
	var n int64
	found := false
	for _, conn := range cz.Connections {
		if conn.Name == name {
			n += conn.InMsgs + conn.OutMsgs
			found = true
		}
	}
	if !found {
		return 0, fmt.Errorf("no NATS connection named %q in /connz", name)
	}
	return n, nil
}

// serverMsgs returns nats-server's in_msgs+out_msgs from /varz.
func (c *cluster) serverMsgs(ctx context.Context) (int64, error) {
	var vz struct {
		InMsgs  int64 `json:"in_msgs"`
		OutMsgs int64 `json:"out_msgs"`
	}
	if err := stack.GetJSON(ctx, c.monURL()+"/varz", &vz); err != nil {
		return 0, err
	}
	return vz.InMsgs + vz.OutMsgs, nil
}
