package redistest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterOptions configures a Redis Cluster. The zero value is valid: three
// masters without replicas.
type ClusterOptions struct {
	// Dir holds one folder per node (node-1, ...). StartCluster defaults it
	// to tb.TempDir(); NewCluster requires it.
	Dir string
	// Masters is the number of masters; the 16384 slots are split evenly.
	// Default 3.
	Masters int
	// ReplicasPerMaster is the number of replicas of each master. Default 0.
	ReplicasPerMaster int
	// NodeTimeout is cluster-node-timeout. Default 2s.
	NodeTimeout time.Duration
	// AppendOnly, Password and Args apply to every node (see Options).
	AppendOnly bool
	Password   string
	Args       []string
}

// Cluster is a Redis Cluster of redis-server processes on loopback, formed
// by hand (CLUSTER ADDSLOTSRANGE, MEET, REPLICATE), so redis-cli is not
// needed.
type Cluster struct {
	// Nodes are the servers: the first Masters are the masters, then the
	// replicas. Each keeps its nodes.conf in its folder, so a restarted
	// node rejoins.
	Nodes []*Server

	opts     ClusterOptions
	busPorts []int // cluster bus port of each node
}

// StartCluster runs a Redis Cluster in tb.TempDir() (unless opts say
// otherwise), waits until every node reports cluster_state:ok, and stops
// it when the test ends.
func StartCluster(tb testing.TB, opts ClusterOptions) *Cluster {
	tb.Helper()
	if opts.Dir == "" {
		opts.Dir = tb.TempDir()
	}
	c, err := NewCluster(opts)
	if errors.Is(err, ErrNoRedisServer) {
		tb.Fatalf("redis-server not found: run `make test` (installs it) or apt-get install redis-server")
	}
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Logf("redistest: stop cluster: %v", err)
		}
	})
	return c
}

// NewCluster is StartCluster without testing.TB. The caller must call Close.
func NewCluster(opts ClusterOptions) (_ *Cluster, err error) {
	if opts.Dir == "" {
		return nil, errors.New("redistest: ClusterOptions.Dir is required")
	}
	if opts.Masters == 0 {
		opts.Masters = 3
	}
	if opts.NodeTimeout <= 0 {
		opts.NodeTimeout = 2 * time.Second
	}
	bin, err := findBinary()
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("redistest: %w", err)
	}
	c := &Cluster{opts: opts}
	defer func() {
		if err != nil {
			_ = c.Close()
		}
	}()
	n := opts.Masters * (1 + opts.ReplicasPerMaster)
	for i := 1; i <= n; i++ {
		busPort, err := freePort()
		if err != nil {
			return nil, err
		}
		o := Options{AppendOnly: opts.AppendOnly, Password: opts.Password}
		o.Args = append([]string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-port", strconv.Itoa(busPort),
			"--cluster-node-timeout", strconv.FormatInt(opts.NodeTimeout.Milliseconds(), 10),
		}, opts.Args...)
		srv, err := newIn(bin, filepath.Join(dir, "node-"+strconv.Itoa(i)), o, nil)
		if err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, srv)
		c.busPorts = append(c.busPorts, busPort)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.form(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Cluster) nodeClient(srv *Server) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: srv.Addr(), Password: c.opts.Password, DialTimeout: time.Second})
}

// form assigns the slots, introduces the nodes to each other, attaches the
// replicas and waits for cluster_state:ok everywhere.
func (c *Cluster) form(ctx context.Context) error {
	clients := make([]*redis.Client, len(c.Nodes))
	for i, n := range c.Nodes {
		clients[i] = c.nodeClient(n)
		defer clients[i].Close()
	}
	m := c.opts.Masters
	per := 16384 / m
	for i := range m {
		first, last := i*per, (i+1)*per-1
		if i == m-1 {
			last = 16383
		}
		if err := clients[i].ClusterAddSlotsRange(ctx, first, last).Err(); err != nil {
			return fmt.Errorf("redistest: CLUSTER ADDSLOTSRANGE on %s: %w", c.Nodes[i].Addr(), err)
		}
	}
	for i := 1; i < len(c.Nodes); i++ {
		// MEET names the bus port: it is not port+10000 here.
		if err := clients[i].Do(ctx, "CLUSTER", "MEET", "127.0.0.1", c.Nodes[0].port, c.busPorts[0]).Err(); err != nil {
			return fmt.Errorf("redistest: CLUSTER MEET from %s: %w", c.Nodes[i].Addr(), err)
		}
	}
	// Replicas: node m+k replicates master k % m, once it knows that master.
	for i := m; i < len(c.Nodes); i++ {
		masterID, err := clients[(i-m)%m].ClusterMyID(ctx).Result()
		if err != nil {
			return fmt.Errorf("redistest: CLUSTER MYID: %w", err)
		}
		err = poll(ctx, "replicate", func() error {
			return clients[i].ClusterReplicate(ctx, masterID).Err()
		})
		if err != nil {
			return err
		}
	}
	return c.WaitOK(ctx)
}

// WaitOK polls until every running node reports cluster_state:ok and knows
// every node.
func (c *Cluster) WaitOK(ctx context.Context) error {
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		cl := c.nodeClient(n)
		err := poll(ctx, "cluster ok on "+n.Addr(), func() error {
			info, err := cl.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") {
				return errors.New("cluster_state not ok")
			}
			if !strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(len(c.Nodes))+"\r\n") {
				return errors.New("does not know every node yet")
			}
			return nil
		})
		cl.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// Addrs returns every node's "127.0.0.1:port".
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr()
	}
	return out
}

// URL returns go-redis's cluster URL (redis.ParseClusterURL):
// redis://[:password@]<node 1>?addr=<node 2>&addr=...
func (c *Cluster) URL() string {
	addrs := c.Addrs()
	u := url.URL{Scheme: "redis", Host: addrs[0]}
	if c.opts.Password != "" {
		u.User = url.UserPassword("", c.opts.Password)
	}
	if len(addrs) > 1 {
		u.RawQuery = url.Values{"addr": addrs[1:]}.Encode()
	}
	return u.String()
}

// Client returns a cluster client, closed in tb.Cleanup.
func (c *Cluster) Client(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), Password: c.opts.Password})
	tb.Cleanup(func() { _ = cl.Close() })
	return cl
}

// Close stops every node and returns every error.
func (c *Cluster) Close() error {
	var errs []error
	for _, n := range c.Nodes {
		errs = append(errs, n.Close())
	}
	return errors.Join(errs...)
}
