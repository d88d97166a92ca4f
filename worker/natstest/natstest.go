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

// Start runs a JetStream server on 127.0.0.1 with a random port and its
// store in tb.TempDir(), and shuts it down when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := StartServer(tb.TempDir(), "127.0.0.1", -1)
	if err != nil {
		tb.Fatalf("natstest: %v", err)
	}
	tb.Cleanup(s.Shutdown)
	return s
}

// StartServer runs a JetStream server with its store in dir, on host and
// port (-1 picks a free port). The caller must call Shutdown.
func StartServer(dir, host string, port int) (*Server, error) {
	opts := &server.Options{
		ServerName: "payworker-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoLog:      true,
		NoSigs:     true,
	}
	s := &Server{opts: opts}
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

// Shutdown stops the server and waits for it to finish.
func (s *Server) Shutdown() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
	}
}

// Restart stops the server and starts it again on the same port with the
// same store: streams, consumers and unacknowledged messages survive.
func (s *Server) Restart() error {
	s.Shutdown()
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
