package redistest

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestStartStopRestart(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		opts       Options
		keptAfter  bool // data survives Restart
		wantConfig map[string]string
	}{
		{"memory only", Options{}, false, map[string]string{"appendonly": "no", "save": ""}},
		{"append only", Options{AppendOnly: true}, true, map[string]string{"appendonly": "yes", "appendfsync": "everysec"}},
		{"extra args", Options{Args: []string{"--maxmemory", "10mb"}}, false, map[string]string{"maxmemory": "10485760"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Start(t, tt.opts)
			if !strings.HasPrefix(s.Addr(), "127.0.0.1:") || s.URL() != "redis://"+s.Addr()+"/0" {
				t.Fatalf("Addr %q URL %q", s.Addr(), s.URL())
			}
			opt, err := redis.ParseURL(s.URL())
			if err != nil || opt.Addr != s.Addr() {
				t.Fatalf("ParseURL(%q) = %v, %v", s.URL(), opt, err)
			}
			c := s.Client(t)
			for k, want := range tt.wantConfig {
				got, err := c.ConfigGet(ctx, k).Result()
				if err != nil || got[k] != want {
					t.Errorf("CONFIG GET %s = %v, %v; want %q", k, got, err, want)
				}
			}
			if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
				t.Fatal(err)
			}

			if err := s.Close(); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			if conn, err := net.Dial("tcp", s.Addr()); err == nil {
				conn.Close()
				t.Fatal("server still accepts connections after Stop")
			}
			if err := s.Close(); err != nil {
				t.Errorf("second Stop: %v", err)
			}

			if err := s.Restart(); err != nil {
				t.Fatalf("Restart: %v", err)
			}
			got, err := c.Get(ctx, "k").Result() // the client reconnects by itself
			switch {
			case tt.keptAfter && (err != nil || got != "v"):
				t.Errorf("after restart GET k = %q, %v; want v", got, err)
			case !tt.keptAfter && !errors.Is(err, redis.Nil):
				t.Errorf("after restart GET k = %q, %v; want nil (no persistence)", got, err)
			}
			if _, err := os.Stat(filepath.Join(s.Dir(), "redis.log")); err != nil {
				t.Errorf("log file: %v", err)
			}
		})
	}
}

func TestNewPortInUse(t *testing.T) {
	bin, err := findBinary()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		occupy func(t *testing.T) int // returns the taken port
	}{
		{"silent listener", func(t *testing.T) int {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return l.Addr().(*net.TCPAddr).Port
		}},
		{"another redis-server", func(t *testing.T) int {
			// It answers PING, but it is not our process.
			return Start(t, Options{}).port
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{bin: bin, dir: t.TempDir(), port: tt.occupy(t)}
			err := s.start()
			if !errors.Is(err, errAddrInUse) {
				_ = s.Close()
				t.Fatalf("start on a used port = %v, want errAddrInUse", err)
			}
			if s.proc != nil {
				t.Error("failed start left a process behind")
			}
		})
	}
}

func TestNewBadArgs(t *testing.T) {
	_, err := New(Options{Dir: t.TempDir(), Args: []string{"--no-such-option", "x"}})
	if err == nil || errors.Is(err, errAddrInUse) {
		t.Fatalf("New with a bad option = %v, want a start error", err)
	}
	if !strings.Contains(err.Error(), "no-such-option") {
		t.Errorf("error does not show the server's complaint: %v", err)
	}
}

func TestNew(t *testing.T) {
	s, err := New(Options{Dir: filepath.Join(t.TempDir(), "sub", "dir")})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
}
