package redistest

import (
	"fmt"
	"strconv"
)

// Kill sends SIGKILL and waits for the process to exit: a crash, as far as
// Redis can tell (no AOF flush, no goodbye to replicas or Sentinels).
// Killing a stopped server is a no-op; Restart starts it again.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	if err := p.cmd.Process.Kill(); err != nil {
		return fmt.Errorf("redistest: kill redis-server on port %d: %w", s.port, err)
	}
	<-p.done
	return nil
}

// Running reports whether the process is running (it may have crashed
// since; Kill and Close then return at once).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil
}

// Port returns the server's port.
func (s *Server) Port() int { return s.port }

// PID returns the process id of the running server, 0 when stopped.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// String returns "redis-server 127.0.0.1:port".
func (s *Server) String() string { return "redis-server 127.0.0.1:" + strconv.Itoa(s.port) }
