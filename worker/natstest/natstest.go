// Package natstest runs a real NATS server with JetStream inside the test
// process, on a free loopback port with its data in a temporary folder.
//
// The server is nats-server/v2 itself, embedded, so tests need nothing
// installed. Restart keeps the port and the store, so reconnect and
// redelivery behaviour can be tested against the same data.
package natstest

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server is an embedded NATS JetStream server.
type Server struct {
	opts *server.Options
	srv  *server.Server
}

// Options configures a Server. The zero value is valid.
type Options struct {
	// Dir holds the JetStream store. Start defaults it to tb.TempDir();
	// New requires it.
	Dir string
	// Host is the listen address. Default "127.0.0.1".
	Host string
	// Port is the client port. Default 0: a free port, kept across Restart.
	Port int
}

// Start runs a JetStream server on a free loopback port with its store in
// tb.TempDir() (unless opts say otherwise), and closes it when the test
// ends.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if opts.Dir == "" {
		opts.Dir = tb.TempDir()
	}
	s, err := New(opts)
	if err != nil {
		tb.Fatalf("natstest: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// New is Start without testing.TB, for programs (payworker-dev, benchmarks).
// The caller must call Close.
func New(opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("natstest: Options.Dir is required")
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == 0 {
		opts.Port = -1 // nats-server: a free port
	}
	sopts := &server.Options{
		ServerName: "payworker-embedded",
		Host:       opts.Host,
		Port:       opts.Port,
		JetStream:  true,
		StoreDir:   opts.Dir,
		NoLog:      true,
		NoSigs:     true,
	}
	s := &Server{opts: sopts}
	if err := s.start(); err != nil {
		return nil, err
	}
	// Pin the port, so that Restart comes back where clients reconnect.
	if addr, ok := s.srv.Addr().(*net.TCPAddr); ok {
		s.opts.Port = addr.Port
	}
	return s, nil
}

func (s *Server) start() error {
	srv, err := server.NewServer(s.opts)
	if err != nil {
		return err
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return errors.New("nats server not ready after 10s")
	}
	s.srv = srv
	return nil
}

// URL is the client URL, nats://127.0.0.1:port.
func (s *Server) URL() string { return s.srv.ClientURL() }

// Close stops the server and waits for it to finish.
func (s *Server) Close() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
	}
}

// Restart stops the server and starts it again on the same port with the
// same store: streams, consumers and unacknowledged messages survive.
func (s *Server) Restart() error {
	s.Close()
	return s.start()
}

// Connect opens a client connection that retries forever on disconnect and
// is closed when the test ends, and returns it with its JetStream context.
func (s *Server) Connect(tb testing.TB) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := nats.Connect(s.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
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
