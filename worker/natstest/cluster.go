package natstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ClusterOptions configures a JetStream cluster. The zero value is valid:
// three nodes named n1, n2, n3 in cluster "pw".
type ClusterOptions struct {
	// Nodes is the number of servers. Default 3.
	Nodes int
	// Dir holds one store folder per server (n1, n2, ...). StartCluster
	// defaults it to tb.TempDir(); NewCluster requires it.
	Dir string
	// Name is the cluster's name. Default "pw".
	Name string
}

// Cluster is a JetStream cluster of embedded servers, each with its own
// client port, route port and store, all on 127.0.0.1. A node can be shut
// down and restarted (Server.Close, Server.Restart) on the same ports and
// store, as a crashed and restarted pod would be.
type Cluster struct {
	// Servers are the nodes, in name order (n1, n2, ...).
	Servers []*Server
	name    string
}

// StartCluster runs a JetStream cluster in tb.TempDir() (unless opts say
// otherwise), waits until it has a meta leader and every node is current,
// and shuts it down when the test ends.
func StartCluster(tb testing.TB, opts ClusterOptions) *Cluster {
	tb.Helper()
	if opts.Dir == "" {
		opts.Dir = tb.TempDir()
	}
	c, err := NewCluster(opts)
	if err != nil {
		tb.Fatalf("natstest: %v", err)
	}
	tb.Cleanup(c.Close)
	return c
}

// NewCluster is StartCluster without testing.TB. The caller must call Close.
func NewCluster(opts ClusterOptions) (_ *Cluster, err error) {
	if opts.Dir == "" {
		return nil, errors.New("natstest: ClusterOptions.Dir is required")
	}
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.Name == "" {
		opts.Name = "pw"
	}
	// Ports are fixed up front: routes name them, and a restarted node
	// must come back where its peers look for it.
	clientPorts, routePorts := make([]int, opts.Nodes), make([]int, opts.Nodes)
	var routes []string
	for i := range opts.Nodes {
		if clientPorts[i], err = freePort(); err != nil {
			return nil, err
		}
		if routePorts[i], err = freePort(); err != nil {
			return nil, err
		}
		routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(routePorts[i]))
	}
	c := &Cluster{name: opts.Name}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	for i := range opts.Nodes {
		name := "n" + strconv.Itoa(i+1)
		dir := filepath.Join(opts.Dir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("natstest: %w", err)
		}
		s := &Server{opts: &server.Options{
			ServerName: name,
			Host:       "127.0.0.1",
			Port:       clientPorts[i],
			JetStream:  true,
			StoreDir:   dir,
			Cluster: server.ClusterOpts{
				Name: opts.Name,
				Host: "127.0.0.1",
				Port: routePorts[i],
			},
			Routes: server.RoutesFromStr(strings.Join(routes, ",")),
			NoLog:  true,
			NoSigs: true,
		}}
		// Start without waiting: a node's JetStream waits for its peers.
		if err := s.launch(); err != nil {
			return nil, err
		}
		c.Servers = append(c.Servers, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("natstest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// launch creates and starts the server without waiting for clients.
func (s *Server) launch() error {
	srv, err := server.NewServer(s.opts)
	if err != nil {
		return err
	}
	go srv.Start()
	s.srv = srv
	return nil
}

// Name returns the server's name (n1, n2, ... in a Cluster).
func (s *Server) Name() string { return s.opts.ServerName }

// Running reports whether the server is up.
func (s *Server) Running() bool { return s.srv != nil && s.srv.Running() }

// Embedded returns the nats-server itself, for what this package does not
// wrap (JetStreamIsStreamLeader, monitoring structures, ...).
func (s *Server) Embedded() *server.Server { return s.srv }

// WaitReady polls until every running node accepts clients, a meta leader
// is elected and every running node's JetStream is current.
func (c *Cluster) WaitReady(ctx context.Context) error {
	return poll(ctx, "cluster ready", func() error {
		leader := false
		for _, s := range c.Servers {
			if !s.Running() {
				continue
			}
			if !s.srv.ReadyForConnections(10 * time.Millisecond) {
				return fmt.Errorf("%s not accepting clients", s.Name())
			}
			if !s.srv.JetStreamIsCurrent() {
				return fmt.Errorf("%s: JetStream not current", s.Name())
			}
			leader = leader || s.srv.JetStreamIsLeader()
		}
		if !leader {
			return errors.New("no meta leader")
		}
		return nil
	})
}

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
			return fmt.Errorf("natstest: %s: %w (last: %w)", what, context.Cause(ctx), err)
		case <-tick.C:
		}
	}
}

// URLs returns the client URLs of every node.
func (c *Cluster) URLs() []string {
	out := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		out[i] = "nats://127.0.0.1:" + strconv.Itoa(s.opts.Port)
	}
	return out
}

// URL returns the client URLs comma-separated, as NATS_URL lists them.
func (c *Cluster) URL() string { return strings.Join(c.URLs(), ",") }

// Server returns the node named name, or nil.
func (c *Cluster) Server(name string) *Server {
	for _, s := range c.Servers {
		if s.Name() == name {
			return s
		}
	}
	return nil
}

// StreamLeader returns the running node that leads stream (in the global
// account), or nil when none does right now.
func (c *Cluster) StreamLeader(stream string) *Server {
	for _, s := range c.Servers {
		if s.Running() && s.srv.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return s
		}
	}
	return nil
}

// ConsumerLeader returns the running node that leads the consumer, or nil.
func (c *Cluster) ConsumerLeader(stream, consumer string) *Server {
	for _, s := range c.Servers {
		if s.Running() && s.srv.JetStreamIsConsumerLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream, consumer) {
			return s
		}
	}
	return nil
}

// WaitStreamLeader polls until a running node leads stream and returns it.
func (c *Cluster) WaitStreamLeader(ctx context.Context, stream string) (*Server, error) {
	var l *Server
	err := poll(ctx, "leader of stream "+stream, func() error {
		if l = c.StreamLeader(stream); l == nil {
			return errors.New("no leader")
		}
		return nil
	})
	return l, err
}

// WaitConsumerLeader polls until a running node leads the consumer and
// returns it.
func (c *Cluster) WaitConsumerLeader(ctx context.Context, stream, consumer string) (*Server, error) {
	var l *Server
	err := poll(ctx, "leader of consumer "+stream+"/"+consumer, func() error {
		if l = c.ConsumerLeader(stream, consumer); l == nil {
			return errors.New("no leader")
		}
		return nil
	})
	return l, err
}

// Connect opens a client connection to every node's URL that retries
// forever on disconnect and is closed when the test ends, and returns it
// with its JetStream context.
func (c *Cluster) Connect(tb testing.TB) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		tb.Fatalf("natstest: connect: %v", err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("natstest: jetstream: %v", err)
	}
	return nc, js
}

// Close shuts every node down.
func (c *Cluster) Close() {
	for _, s := range c.Servers {
		s.Close()
	}
}
