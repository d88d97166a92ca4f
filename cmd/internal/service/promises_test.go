package service

// Tests of issue 12's broken promises that concern the binary: its
// settings and its HTTP server. Named after their items.

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/payworker/payworker/dintero/dinterotest"
)

// i12Required are the settings without a default.
var i12Required = map[string]string{
	"DINTERO_ACCOUNT_ID":    "T12345678",
	"DINTERO_CLIENT_ID":     "client",
	"DINTERO_CLIENT_SECRET": "client-secret",
}

// i12Env is a getenv with the required settings, and extra.
func i12Env(extra map[string]string) func(string) string {
	env := map[string]string{}
	for k, v := range i12Required {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	return func(k string) string { return env[k] }
}

// Issue 12 item 10: a charge that started before SIGTERM can finish within
// the shutdown grace: the grace must be at least DINTERO_TIMEOUT plus 5s
// (the rest of the request: store, publish, ack). Settings that break this
// stop start-up with one line naming both; the defaults keep it; and the
// Kubernetes termination grace is longer than the grace it configures.
func TestIssue12Item10ShutdownGraceCoversDinteroTimeout(t *testing.T) {
	t.Run("inconsistent settings refused", func(t *testing.T) {
		_, err := LoadConfig(nil, i12Env(map[string]string{"DINTERO_TIMEOUT": "30s", "PAYWORKER_SHUTDOWN_GRACE": "25s"}), io.Discard)
		if err == nil {
			t.Fatal("DINTERO_TIMEOUT=30s with PAYWORKER_SHUTDOWN_GRACE=25s was accepted: SIGTERM would cut off a slow charge")
		}
		for _, name := range []string{"DINTERO_TIMEOUT", "PAYWORKER_SHUTDOWN_GRACE"} {
			if !strings.Contains(err.Error(), name) {
				t.Errorf("error %q does not name %s", err, name)
			}
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("error spans lines: %q", err)
		}
	})
	t.Run("defaults", func(t *testing.T) {
		cfg, err := LoadConfig(nil, i12Env(nil), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.ShutdownGrace < cfg.DinteroTimeout+5*time.Second {
			t.Errorf("default PAYWORKER_SHUTDOWN_GRACE %s is shorter than the default DINTERO_TIMEOUT %s plus 5s", cfg.ShutdownGrace, cfg.DinteroTimeout)
		}
	})
	t.Run("kubernetes", func(t *testing.T) {
		// The settings: payworker.env, which kustomize turns into the
		// ConfigMap (configMapGenerator).
		cm := struct{ Data map[string]string }{Data: map[string]string{}}
		for _, line := range strings.Split(string(readFile(t, "deploy/kubernetes/payworker.env")), "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(k, "#") {
				cm.Data[k] = v
			}
		}
		var dep struct {
			Spec struct {
				Template struct {
					Spec struct {
						TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
						Containers                    []struct {
							Name string `yaml:"name"`
							Env  []struct {
								Name  string `yaml:"name"`
								Value string `yaml:"value"`
							} `yaml:"env"`
						} `yaml:"containers"`
					} `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		if err := yaml.Unmarshal(readFile(t, "deploy/kubernetes/deployment.yaml"), &dep); err != nil {
			t.Fatal(err)
		}
		env := map[string]string{}
		for k, v := range cm.Data {
			env[k] = v
		}
		for _, c := range dep.Spec.Template.Spec.Containers {
			if c.Name != "payworker" {
				continue
			}
			for _, e := range c.Env {
				env[e.Name] = e.Value
			}
		}
		cfg, err := LoadConfig(nil, i12Env(mounted(env)), io.Discard)
		if err != nil {
			t.Fatalf("the Deployment's settings do not load: %v", err)
		}
		if cfg.ShutdownGrace < cfg.DinteroTimeout+5*time.Second {
			t.Errorf("the Deployment's PAYWORKER_SHUTDOWN_GRACE %s is shorter than its DINTERO_TIMEOUT %s plus 5s", cfg.ShutdownGrace, cfg.DinteroTimeout)
		}
		g := dep.Spec.Template.Spec.TerminationGracePeriodSeconds
		if g == nil || time.Duration(*g)*time.Second <= cfg.ShutdownGrace {
			t.Errorf("terminationGracePeriodSeconds %v is not longer than PAYWORKER_SHUTDOWN_GRACE %s", g, cfg.ShutdownGrace)
		}
	})
}

// Issue 12 item 12: a mistyped REDIS_URL or NATS_URL never puts its
// password in the start-up error (or a log line).
func TestIssue12Item12ConfigErrorsHidePasswords(t *testing.T) {
	const password = "s3cr3t"
	cases := map[string]map[string]string{
		"REDIS_URL with a bad port": {"REDIS_URL": "redis://u:" + password + "@host:notaport/0"},
		"REDIS_URL with a bad db":   {"REDIS_URL": "redis://u:" + password + "@127.0.0.1:6379/x"},
		"NATS_URL unclosed bracket": {"NATS_URL": "nats://u:" + password + "@[::1"},
		"NATS_URL, second of two":   {"NATS_URL": "nats://127.0.0.1:4222,nats://u:" + password + "@[::1"},
	}
	for name, env := range cases {
		t.Run(name, func(t *testing.T) {
			env["PAYWORKER_HTTP_ADDR"] = freeAddr(t) // should run get that far
			cfg, err := LoadConfig(nil, i12Env(env), io.Discard)
			var logs syncBuffer
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				err = Run(ctx, cfg, slog.New(slog.NewJSONHandler(&logs, nil)))
				if err == nil {
					t.Fatalf("no start-up error for %v", env)
				}
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("start-up error shows the password: %q", err)
			}
			if strings.Contains(logs.String(), password) {
				t.Errorf("a log line shows the password: %s", logs.String())
			}
		})
	}
}

// Issue 12 item 13: the HTTP server closes idle keep-alive connections (an
// idle timeout), so that thousands of idle clients cannot pile up. No
// constant names the timeout, so the test allows 65 seconds.
func TestIssue12Item13IdleConnectionsClosed(t *testing.T) {
	if testing.Short() {
		t.Skip("waits up to 65s for the server to close idle connections")
	}
	t.Parallel()
	p := startParts(t, dinterotest.Faults{})
	env := p.env()
	cfg, err := LoadConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, NewLogger(os.Stderr, "error", "json")) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitUntil(t, 10*time.Second, "ready", func() bool { code, _ := get(t, "http://"+p.http+"/readyz"); return code == 200 })

	const conns, limit = 5, 65 * time.Second
	start := time.Now()
	var open []net.Conn
	for range conns {
		c, err := net.Dial("tcp", p.http)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: payworker\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("GET /healthz: %d, close %v; want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
		}
		open = append(open, c)
	}
	for i, c := range open {
		_ = c.SetReadDeadline(start.Add(limit))
		n, err := c.Read(make([]byte, 1))
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			t.Fatalf("idle connection %d still open after %s: the server has no idle timeout", i, limit)
		}
		if n != 0 || (!errors.Is(err, io.EOF) && !i12IsReset(err)) {
			t.Fatalf("idle connection %d: read %d bytes, %v; want it closed", i, n, err)
		}
	}
	t.Logf("the server closed %d idle connections after %s", conns, time.Since(start).Round(time.Second))
}

func i12IsReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}
