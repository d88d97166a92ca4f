package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/idempotency/redistest"
	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/worker"
)

// NATSNode is one nats-server of a NATSCluster: its own config file,
// store, client, route and monitoring ports, all kept across restarts.
type NATSNode struct {
	*Process
	Name        string // server_name: n1, n2, ...
	Port        int    // clients
	RoutePort   int    // cluster routes
	MonitorPort int    // HTTP monitoring (/healthz, /jsz)
	StoreDir    string
}

// URL returns "nats://127.0.0.1:port".
func (n *NATSNode) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.Port) }

// MonitorURL returns "http://127.0.0.1:monitor-port".
func (n *NATSNode) MonitorURL() string { return "http://127.0.0.1:" + strconv.Itoa(n.MonitorPort) }

// NATSCluster is a JetStream cluster of nats-server processes on loopback,
// each started from a config file with server_name, jetstream { store_dir }
// and cluster { name, listen, routes }.
type NATSCluster struct {
	Nodes []*NATSNode
	Name  string // the cluster's name
}

// NewNATSCluster writes the config files of n stopped nodes under dir
// (dir/n1/nats.conf, dir/n1/store, ...; logs in dir/n1.log ...).
func NewNATSCluster(bin, dir string, n int, log *slog.Logger) (*NATSCluster, error) {
	if n < 1 {
		return nil, errors.New("stack: a NATS cluster needs at least one node")
	}
	c := &NATSCluster{Name: "pw"}
	var routes []string
	for i := range n {
		node := &NATSNode{Name: "n" + strconv.Itoa(i+1)}
		var err error
		for _, p := range []*int{&node.Port, &node.RoutePort, &node.MonitorPort} {
			if *p, err = FreePort(); err != nil {
				return nil, err
			}
		}
		routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(node.RoutePort))
		c.Nodes = append(c.Nodes, node)
	}
	for _, node := range c.Nodes {
		ndir := filepath.Join(dir, node.Name)
		node.StoreDir = filepath.Join(ndir, "store")
		if err := os.MkdirAll(node.StoreDir, 0o755); err != nil {
			return nil, fmt.Errorf("stack: %w", err)
		}
		conf := filepath.Join(ndir, "nats.conf")
		if err := os.WriteFile(conf, []byte(natsClusterConf(node, c.Name, routes)), 0o644); err != nil {
			return nil, fmt.Errorf("stack: %w", err)
		}
		var err error
		node.Process, err = NewProcess(ProcessConfig{
			Name:    "nats-" + node.Name,
			Path:    bin,
			Args:    []string{"-c", conf},
			LogPath: filepath.Join(dir, node.Name+".log"),
			Ready:   func(ctx context.Context) error { return httpOK(ctx, node.MonitorURL()+"/healthz") },
			// A node that has to catch up on a stream after a restart
			// takes longer than a single server.
			ReadyTimeout: time.Minute,
			Logger:       log,
		})
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

func natsClusterConf(n *NATSNode, cluster string, routes []string) string {
	return fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream {
  store_dir: %q
}
cluster {
  name: %s
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, n.Name, n.Port, n.MonitorPort, n.StoreDir, cluster, n.RoutePort, strings.Join(routes, ", "))
}

// Start launches every node, waits until each is healthy (/healthz), then
// until every node names the same JetStream meta leader (/jsz), so that
// the JetStream API answers at once.
func (c *NATSCluster) Start(ctx context.Context) error {
	for _, n := range c.Nodes {
		if err := n.Launch(); err != nil {
			return err
		}
	}
	for _, n := range c.Nodes {
		if err := n.WaitReady(ctx); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := c.metaLeader(ctx); err == nil {
			return nil
		} else if ctx.Err() != nil {
			return fmt.Errorf("stack: NATS cluster has no meta leader: %w (last: %w)", context.Cause(ctx), err)
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

// metaLeader returns the JetStream meta leader every node names.
func (c *NATSCluster) metaLeader(ctx context.Context) (string, error) {
	var leader string
	for _, n := range c.Nodes {
		var jsz struct {
			Meta *struct {
				Leader string `json:"leader"`
			} `json:"meta_cluster"`
		}
		if err := GetJSON(ctx, n.MonitorURL()+"/jsz", &jsz); err != nil {
			return "", err
		}
		switch {
		case jsz.Meta == nil || jsz.Meta.Leader == "":
			return "", fmt.Errorf("%s knows no meta leader", n.Name)
		case leader != "" && jsz.Meta.Leader != leader:
			return "", fmt.Errorf("nodes disagree on the meta leader: %s and %s", leader, jsz.Meta.Leader)
		}
		leader = jsz.Meta.Leader
	}
	return leader, nil
}

// Stop stops every node; it returns every error.
func (c *NATSCluster) Stop() error {
	var errs []error
	for _, n := range c.Nodes {
		errs = append(errs, n.Stop())
	}
	return errors.Join(errs...)
}

// URLs returns every node's client URL.
func (c *NATSCluster) URLs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.URL()
	}
	return out
}

// URL returns the client URLs comma-separated, as NATS_URL lists them.
func (c *NATSCluster) URL() string { return strings.Join(c.URLs(), ",") }

// Node returns the node named name (a server_name), or nil.
func (c *NATSCluster) Node(name string) *NATSNode {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Connect returns a connection to the cluster that reconnects forever and
// its JetStream context. The caller closes the connection.
func (c *NATSCluster) Connect(opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	opts = append([]nats.Option{
		nats.Name("stack"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
	}, opts...)
	nc, err := nats.Connect(c.URL(), opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("stack: connect %s: %w", c.URL(), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("stack: jetstream: %w", err)
	}
	return nc, js, nil
}

// StreamLeader returns the node leading stream, as the stream's info
// names it. Give ctx a short deadline: a request lost with a dying node
// waits for it.
func (c *NATSCluster) StreamLeader(ctx context.Context, js jetstream.JetStream, stream string) (*NATSNode, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	return c.leader(info.Cluster)
}

// ConsumerLeader returns the node leading the consumer (ctx as for
// StreamLeader).
func (c *NATSCluster) ConsumerLeader(ctx context.Context, js jetstream.JetStream, stream, consumer string) (*NATSNode, error) {
	cons, err := js.Consumer(ctx, stream, consumer)
	if err != nil {
		return nil, err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, err
	}
	return c.leader(info.Cluster)
}

func (c *NATSCluster) leader(ci *jetstream.ClusterInfo) (*NATSNode, error) {
	if ci == nil || ci.Leader == "" {
		return nil, errors.New("stack: no leader right now")
	}
	if n := c.Node(ci.Leader); n != nil {
		return n, nil
	}
	return nil, fmt.Errorf("stack: leader %q is not one of ours", ci.Leader)
}

// SetupStreams creates the streams, the sessions bucket and the consumer
// with the given replicas, as a worker with PAYWORKER_STREAM_REPLICAS does
// (for runs whose workers skip setup).
func SetupStreams(ctx context.Context, js jetstream.JetStream, cfg worker.Config, replicas int) error {
	cfg.StreamReplicas = max(replicas, 1)
	if err := worker.Setup(ctx, js, cfg); err != nil {
		return fmt.Errorf("stack: setup: %w", err)
	}
	return nil
}

// WaitReplicated polls until the three streams and the consumer report
// replicas-1 current peers each, i.e. every copy exists.
func WaitReplicated(ctx context.Context, js jetstream.JetStream, consumer string, replicas int) error {
	if replicas <= 1 {
		return nil
	}
	check := func() error {
		// A request sent on a connection to a node that just died is
		// lost; without a timeout of its own it would wait for ctx.
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		for _, name := range []string{messages.StreamRequests, messages.StreamResults, messages.StreamDeadLetters} {
			s, err := js.Stream(ctx, name)
			if err != nil {
				return err
			}
			if err := current(s.CachedInfo().Cluster, replicas); err != nil {
				return fmt.Errorf("stream %s: %w", name, err)
			}
		}
		cons, err := js.Consumer(ctx, messages.StreamRequests, consumer)
		if err != nil {
			return err
		}
		if err := current(cons.CachedInfo().Cluster, replicas); err != nil {
			return fmt.Errorf("consumer %s: %w", consumer, err)
		}
		return nil
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stack: not replicated: %w (last: %w)", context.Cause(ctx), err)
		case <-tick.C:
		}
	}
}

func current(ci *jetstream.ClusterInfo, replicas int) error {
	if ci == nil || ci.Leader == "" {
		return errors.New("no leader")
	}
	n := 0
	for _, r := range ci.Replicas {
		if r.Current && !r.Offline {
			n++
		}
	}
	if n != replicas-1 {
		return fmt.Errorf("%d of %d replicas current", n, replicas-1)
	}
	return nil
}

// RedisSentinel is redis-server primary + replica with the append-only file
// and three Sentinels (package redistest), for the cluster stack.
type RedisSentinel struct {
	*redistest.Sentinel
}

// StartRedisSentinel starts the set in dir.
func StartRedisSentinel(dir string) (*RedisSentinel, error) {
	s, err := redistest.NewSentinel(redistest.SentinelOptions{Dir: dir, AppendOnly: true})
	if err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	return &RedisSentinel{s}, nil
}

// Stop stops the Sentinels and the nodes.
func (r *RedisSentinel) Stop() error { return r.Close() }

// ClusterOptions configures StartCluster. The zero value of every field
// except Binaries means the default in its comment.
type ClusterOptions struct {
	// Binaries are the programs to run (see BuildBinaries). Required.
	Binaries Binaries
	// Dir holds every data folder and log file. Default: a new folder
	// under os.TempDir().
	Dir string
	// NATSNodes is the size of the NATS cluster; default 3.
	NATSNodes int
	// Replicas of the streams and the consumer; default NATSNodes.
	Replicas int
	// Workers is how many payworker processes to run; default 3.
	Workers int
	// Sandbox are the sandbox's faults and settings.
	Sandbox SandboxConfig
	// Setup is the worker configuration (Consumer, MaxInFlight, AckWait)
	// with which the stack creates the streams and the consumer before the
	// workers start, when SkipSetup is set.
	Setup worker.Config
	// SkipSetup: the stack creates the streams (R Replicas) and the
	// consumer and the workers get PAYWORKER_SKIP_SETUP=true; otherwise the
	// workers create them, with PAYWORKER_STREAM_REPLICAS.
	SkipSetup bool
	// RedisDirect gives the workers the Redis primary's own URL instead of
	// the Sentinel URL, for workers that cannot read a Sentinel URL yet. A
	// failover then leaves them writing to a replica.
	RedisDirect bool
	// WorkerEnv are extra KEY=VALUE settings for every worker, applied
	// last.
	WorkerEnv []string
	// Logger gets lifecycle events; nil discards.
	Logger *slog.Logger
}

// ClusterStack is a running clustered stack: a NATS JetStream cluster,
// Redis with Sentinel, the sandbox and the workers.
type ClusterStack struct {
	Dir     string
	NATS    *NATSCluster
	Redis   *RedisSentinel
	Sandbox *Sandbox
	Workers []*Worker

	log *slog.Logger
}

// StartCluster starts Redis (primary, replica, Sentinels), the NATS cluster,
// the sandbox, the streams (with SkipSetup) and the workers, waiting for
// each, and for every stream and the consumer to have all its replicas.
// On error everything started is stopped; the stack returned, when not
// nil, still names the folder with the logs.
func StartCluster(ctx context.Context, o ClusterOptions) (_ *ClusterStack, err error) {
	b := o.Binaries
	if b.NATSServer == "" || b.Payworker == "" || b.Sandbox == "" {
		return nil, errors.New("stack: ClusterOptions.Binaries is incomplete; see BuildBinaries")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.NATSNodes == 0 {
		o.NATSNodes = 3
	}
	if o.Replicas == 0 {
		o.Replicas = o.NATSNodes
	}
	if o.Workers == 0 {
		o.Workers = 3
	}
	if o.Setup.Consumer == "" {
		o.Setup.Consumer = "payworker"
	}
	dir := o.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "paystack-cluster-"); err != nil {
			return nil, fmt.Errorf("stack: %w", err)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	s := &ClusterStack{Dir: dir, log: log}
	defer func() {
		if err != nil {
			_ = s.Stop()
		}
	}()

	log.Info("starting cluster stack", "dir", dir, "nats_nodes", o.NATSNodes, "replicas", o.Replicas)
	if s.Redis, err = StartRedisSentinel(filepath.Join(dir, "redis")); err != nil {
		return s, err
	}
	if s.NATS, err = NewNATSCluster(b.NATSServer, filepath.Join(dir, "nats"), o.NATSNodes, log); err != nil {
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
	nc, js, err := s.NATS.Connect()
	if err != nil {
		return s, err
	}
	defer nc.Close()
	env := []string{"PAYWORKER_STREAM_REPLICAS=" + strconv.Itoa(o.Replicas), "PAYWORKER_CONSUMER=" + o.Setup.Consumer}
	if o.SkipSetup {
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		err = SetupStreams(sctx, js, o.Setup, o.Replicas)
		cancel()
		if err != nil {
			return s, err
		}
		env = append(env, "PAYWORKER_SKIP_SETUP=true")
	}
	redisURL := s.Redis.URL()
	if o.RedisDirect {
		redisURL = s.Redis.Nodes[0].URL()
	}
	for i := 1; i <= o.Workers; i++ {
		w, err := NewWorker(b.Payworker, WorkerConfig{
			ID:       i,
			NATSURL:  s.NATS.URL(),
			RedisURL: redisURL,
			APIURL:   s.Sandbox.URL(),
			LogPath:  filepath.Join(dir, "worker-"+strconv.Itoa(i)+".log"),
			Env:      append(append([]string(nil), env...), o.WorkerEnv...),
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
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := WaitReplicated(wctx, js, o.Setup.Consumer, o.Replicas); err != nil {
		return s, err
	}
	log.Info("cluster stack ready", "nats", s.NATS.URL(), "redis", redisURL, "sandbox", s.Sandbox.URL(), "workers", len(s.Workers))
	return s, nil
}

// Processes returns every child process this package runs (the nats
// nodes, the sandbox, the workers; Redis is run by package redistest).
func (s *ClusterStack) Processes() []*Process {
	var ps []*Process
	if s.NATS != nil {
		for _, n := range s.NATS.Nodes {
			if n.Process != nil {
				ps = append(ps, n.Process)
			}
		}
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
func (s *ClusterStack) Exits() []Exit {
	var out []Exit
	for _, p := range s.Processes() {
		out = append(out, p.Exits()...)
	}
	return out
}

// Stop stops the workers first, then the sandbox, the NATS nodes and Redis;
// it returns every error. The folder stays; see RemoveDir.
func (s *ClusterStack) Stop() error {
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
		for _, n := range s.NATS.Nodes {
			if n.Process != nil {
				errs = append(errs, n.Stop())
			}
		}
	}
	if s.Redis != nil {
		errs = append(errs, s.Redis.Stop())
	}
	s.log.Info("cluster stack stopped", "dir", s.Dir)
	return errors.Join(errs...)
}

// RemoveDir deletes the stack's folder. Call it after Stop.
func (s *ClusterStack) RemoveDir() error { return os.RemoveAll(s.Dir) }
