package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelOptions configures a Sentinel set. The zero value is valid: one
// primary, one replica and three Sentinels with quorum 2, monitoring
// "payworker", failing over after a second without answer.
type SentinelOptions struct {
	// Dir holds one folder per process (primary, replica-1, sentinel-1,
	// ...). StartSentinel defaults it to tb.TempDir(); NewSentinel requires it.
	Dir string
	// MasterName is the name the Sentinels monitor. Default "payworker".
	MasterName string
	// Replicas is the number of replicas. Default 1.
	Replicas int
	// Sentinels is the number of Sentinel processes. Default 3.
	Sentinels int
	// Quorum is how many Sentinels must agree the primary is down.
	// Default a majority of Sentinels.
	Quorum int
	// DownAfter is Sentinel's down-after-milliseconds. Default 1s.
	DownAfter time.Duration
	// FailoverTimeout is Sentinel's failover-timeout. Default 5s.
	FailoverTimeout time.Duration
	// AppendOnly, Password and Args apply to the primary and the replicas
	// (see Options). With Password, the Sentinels authenticate to them
	// (sentinel auth-pass); the Sentinels themselves take no password.
	AppendOnly bool
	Password   string
	Args       []string
}

func (o *SentinelOptions) setDefaults() {
	if o.MasterName == "" {
		o.MasterName = "payworker"
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.Sentinels == 0 {
		o.Sentinels = 3
	}
	if o.Quorum == 0 {
		o.Quorum = o.Sentinels/2 + 1
	}
	if o.DownAfter <= 0 {
		o.DownAfter = time.Second
	}
	if o.FailoverTimeout <= 0 {
		o.FailoverTimeout = 5 * time.Second
	}
}

// Sentinel is a primary, its replicas and the Sentinels that watch them,
// each a redis-server process on its own loopback port.
type Sentinel struct {
	// Nodes are the data servers: Nodes[0] started as the primary, the
	// others as its replicas. After a failover ask Master which is which.
	Nodes []*Server
	// Sentinels are the redis-server --sentinel processes.
	Sentinels []*Server

	opts SentinelOptions
}

// StartSentinel runs a Sentinel set in tb.TempDir() (unless opts say
// otherwise), waits until the replicas are in sync and every Sentinel
// knows the primary and the other Sentinels, and stops it when the test
// ends.
func StartSentinel(tb testing.TB, opts SentinelOptions) *Sentinel {
	tb.Helper()
	if opts.Dir == "" {
		opts.Dir = tb.TempDir()
	}
	s, err := NewSentinel(opts)
	if errors.Is(err, ErrNoRedisServer) {
		tb.Fatalf("redis-server not found: run `make test` (installs it) or apt-get install redis-server")
	}
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Logf("redistest: stop sentinel set: %v", err)
		}
	})
	return s
}

// NewSentinel is StartSentinel without testing.TB. The caller must call
// Close.
func NewSentinel(opts SentinelOptions) (_ *Sentinel, err error) {
	if opts.Dir == "" {
		return nil, errors.New("redistest: SentinelOptions.Dir is required")
	}
	opts.setDefaults()
	bin, err := findBinary()
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("redistest: %w", err)
	}
	s := &Sentinel{opts: opts}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	// A replica's first sync waits 5s by default (repl-diskless-sync-delay)
	// for more replicas to share it; tests have no time to spare.
	node := Options{AppendOnly: opts.AppendOnly, Password: opts.Password,
		Args: append([]string{"--repl-diskless-sync-delay", "0"}, opts.Args...)}
	primary, err := newIn(bin, filepath.Join(dir, "primary"), node, nil)
	if err != nil {
		return nil, err
	}
	s.Nodes = append(s.Nodes, primary)
	for i := 1; i <= opts.Replicas; i++ {
		o := node
		o.Args = append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(primary.port)}, node.Args...)
		r, err := newIn(bin, filepath.Join(dir, "replica-"+strconv.Itoa(i)), o, nil)
		if err != nil {
			return nil, err
		}
		s.Nodes = append(s.Nodes, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.waitReplicas(ctx, primary); err != nil {
		return nil, err
	}
	for i := 1; i <= opts.Sentinels; i++ {
		sdir := filepath.Join(dir, "sentinel-"+strconv.Itoa(i))
		sen, err := newIn(bin, sdir, Options{}, func(srv *Server) error {
			srv.sentinel = true
			srv.conf = filepath.Join(sdir, "sentinel.conf")
			return os.WriteFile(srv.conf, []byte(s.sentinelConf(primary.port)), 0o644)
		})
		if err != nil {
			return nil, err
		}
		s.Sentinels = append(s.Sentinels, sen)
		// Sentinel asks replicas for INFO every 10s; a test wants a
		// returning old primary turned into a replica sooner. SENTINEL
		// DEBUG (Redis 7.0+) shortens the periods; older servers keep
		// theirs.
		c := redis.NewSentinelClient(&redis.Options{Addr: sen.Addr()})
		_ = c.Process(ctx, redis.NewStatusCmd(ctx, "SENTINEL", "DEBUG", "info-period", "1000", "publish-period", "500", "min-link-reconnect-period", "1000"))
		c.Close()
	}
	if err := s.waitSentinels(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// newIn makes dir and starts a server in it.
func newIn(bin, dir string, opts Options, prepare func(*Server) error) (*Server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("redistest: %w", err)
	}
	opts.Dir = dir
	return newServer(bin, dir, opts, prepare)
}

// sentinelConf is a Sentinel's config file; Sentinel rewrites it with what
// it learns, so a restarted Sentinel keeps its view.
func (s *Sentinel) sentinelConf(primaryPort int) string {
	o := s.opts
	var b strings.Builder
	fmt.Fprintf(&b, "sentinel monitor %s 127.0.0.1 %d %d\n", o.MasterName, primaryPort, o.Quorum)
	fmt.Fprintf(&b, "sentinel down-after-milliseconds %s %d\n", o.MasterName, o.DownAfter.Milliseconds())
	fmt.Fprintf(&b, "sentinel failover-timeout %s %d\n", o.MasterName, o.FailoverTimeout.Milliseconds())
	fmt.Fprintf(&b, "sentinel parallel-syncs %s 1\n", o.MasterName)
	if o.Password != "" {
		fmt.Fprintf(&b, "sentinel auth-pass %s %s\n", o.MasterName, o.Password)
	}
	return b.String()
}

func (s *Sentinel) nodeClient(srv *Server) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: srv.Addr(), Password: s.opts.Password, MaxRetries: -1, DialTimeout: time.Second})
}

// waitReplicas polls until the primary reports every replica online.
func (s *Sentinel) waitReplicas(ctx context.Context, primary *Server) error {
	c := s.nodeClient(primary)
	defer c.Close()
	want := "connected_slaves:" + strconv.Itoa(len(s.Nodes)-1)
	return poll(ctx, "replicas in sync", func() error {
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, want) {
			return errors.New("primary does not report " + want)
		}
		for i := range len(s.Nodes) - 1 {
			if !strings.Contains(info, "slave"+strconv.Itoa(i)+":") || strings.Contains(info, "state=wait_bgsave") {
				return errors.New("replica not online yet")
			}
		}
		return nil
	})
}

// waitSentinels polls until every Sentinel knows the replicas and the
// other Sentinels, so that a failover can start at once.
func (s *Sentinel) waitSentinels(ctx context.Context) error {
	for _, sen := range s.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: sen.Addr(), MaxRetries: -1})
		err := poll(ctx, "sentinel "+sen.Addr()+" ready", func() error {
			m, err := c.Master(ctx, s.opts.MasterName).Result()
			if err != nil {
				return err
			}
			if m["num-slaves"] != strconv.Itoa(len(s.Nodes)-1) {
				return fmt.Errorf("knows %s replicas", m["num-slaves"])
			}
			if m["num-other-sentinels"] != strconv.Itoa(len(s.Sentinels)-1) {
				return fmt.Errorf("knows %s other sentinels", m["num-other-sentinels"])
			}
			return nil
		})
		c.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// poll calls f every 20ms until it returns nil or ctx ends.
func poll(ctx context.Context, what string, f func() error) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redistest: %s: %w (last: %w)", what, context.Cause(ctx), err)
		case <-tick.C:
		}
	}
}

// MasterName returns the name the Sentinels monitor.
func (s *Sentinel) MasterName() string { return s.opts.MasterName }

// SentinelAddrs returns the Sentinels' "127.0.0.1:port" addresses.
func (s *Sentinel) SentinelAddrs() []string {
	out := make([]string, len(s.Sentinels))
	for i, sen := range s.Sentinels {
		out[i] = sen.Addr()
	}
	return out
}

// URL returns go-redis's failover URL (redis.ParseFailoverURL):
// redis://<sentinel 1>/0?master_name=<name>&addr=<sentinel 2>&addr=...,
// with the nodes' password as the password parameter when there is one.
func (s *Sentinel) URL() string {
	addrs := s.SentinelAddrs()
	q := url.Values{"master_name": {s.opts.MasterName}}
	if len(addrs) > 1 {
		q["addr"] = addrs[1:]
	}
	if s.opts.Password != "" {
		q.Set("password", s.opts.Password)
	}
	return "redis://" + addrs[0] + "/0?" + q.Encode()
}

// Client returns a failover client for the set, closed in tb.Cleanup.
func (s *Sentinel) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:    s.opts.MasterName,
		SentinelAddrs: s.SentinelAddrs(),
		Password:      s.opts.Password,
	})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Master asks the Sentinels which node is the primary now, and returns it.
// It is an error when no Sentinel answers or the answer names none of Nodes.
func (s *Sentinel) Master(ctx context.Context) (*Server, error) {
	var errs []error
	for _, sen := range s.Sentinels {
		if !sen.Running() {
			continue
		}
		c := redis.NewSentinelClient(&redis.Options{Addr: sen.Addr(), MaxRetries: -1, DialTimeout: time.Second})
		addr, err := c.GetMasterAddrByName(ctx, s.opts.MasterName).Result()
		c.Close()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		hp := net.JoinHostPort(addr[0], addr[1])
		for _, n := range s.Nodes {
			if n.Addr() == hp {
				return n, nil
			}
		}
		return nil, fmt.Errorf("redistest: sentinel names %s as primary, not one of ours", hp)
	}
	return nil, fmt.Errorf("redistest: no sentinel answered: %w", errors.Join(errs...))
}

// WaitFailover polls until the Sentinels name a primary other than old
// and that node answers as a primary (INFO replication role:master).
func (s *Sentinel) WaitFailover(ctx context.Context, old *Server) (*Server, error) {
	var got *Server
	err := poll(ctx, "failover away from "+old.Addr(), func() error {
		m, err := s.Master(ctx)
		if err != nil {
			return err
		}
		if m == old {
			return errors.New("still the old primary")
		}
		c := s.nodeClient(m)
		defer c.Close()
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "role:master") {
			return errors.New(m.Addr() + " is not master yet")
		}
		got = m
		return nil
	})
	return got, err
}

// WaitReplicaOf polls until srv answers as a replica of primary with its
// link up (after a failover, Sentinel turns a returning old primary into
// a replica).
func (s *Sentinel) WaitReplicaOf(ctx context.Context, srv, primary *Server) error {
	c := s.nodeClient(srv)
	defer c.Close()
	return poll(ctx, srv.Addr()+" replica of "+primary.Addr(), func() error {
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "role:slave") || !strings.Contains(info, "master_port:"+strconv.Itoa(primary.port)+"\r\n") ||
			!strings.Contains(info, "master_link_status:up") {
			return errors.New("not a connected replica yet")
		}
		return nil
	})
}

// Close stops the Sentinels first (so that they start no failover), then
// the data nodes. It returns every error.
func (s *Sentinel) Close() error {
	var errs []error
	for _, sen := range s.Sentinels {
		errs = append(errs, sen.Close())
	}
	for _, n := range s.Nodes {
		errs = append(errs, n.Close())
	}
	return errors.Join(errs...)
}
