package service

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	base := map[string]string{
		"DINTERO_ACCOUNT_ID":    "T12345678",
		"DINTERO_CLIENT_ID":     "client",
		"DINTERO_CLIENT_SECRET": "s3cr3t-value",
	}
	cases := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string // substring; "" means success
		check   func(*testing.T, *Config)
	}{
		{name: "defaults", check: func(t *testing.T, c *Config) {
			if c.NATSURL != "nats://127.0.0.1:4222" || c.MaxInFlight != 256 || c.AckWait != 30*time.Second || c.LogFormat != "auto" {
				t.Errorf("defaults not applied: %+v", c)
			}
		}},
		{name: "env read", env: map[string]string{"PAYWORKER_MAX_IN_FLIGHT": "512", "PAYWORKER_ACK_WAIT": "45s"}, check: func(t *testing.T, c *Config) {
			if c.MaxInFlight != 512 || c.AckWait != 45*time.Second {
				t.Errorf("env not read: %+v", c)
			}
		}},
		{name: "flag wins over env", env: map[string]string{"PAYWORKER_MAX_IN_FLIGHT": "512"}, args: []string{"-max-in-flight", "64"}, check: func(t *testing.T, c *Config) {
			if c.MaxInFlight != 64 {
				t.Errorf("MaxInFlight %d, want the flag's 64", c.MaxInFlight)
			}
		}},
		{name: "missing account", env: map[string]string{"DINTERO_ACCOUNT_ID": ""}, wantErr: "DINTERO_ACCOUNT_ID is not set"},
		{name: "missing secret", env: map[string]string{"DINTERO_CLIENT_SECRET": ""}, wantErr: "DINTERO_CLIENT_SECRET is not set"},
		{name: "bad account", env: map[string]string{"DINTERO_ACCOUNT_ID": "X123"}, wantErr: "DINTERO_ACCOUNT_ID: want T or P"},
		{name: "bad duration", env: map[string]string{"PAYWORKER_ACK_WAIT": "soon"}, wantErr: "PAYWORKER_ACK_WAIT: want a positive duration"},
		{name: "bad number from flag", args: []string{"-max-in-flight", "-3"}, wantErr: "-max-in-flight (PAYWORKER_MAX_IN_FLIGHT)"},
		{name: "bad url", env: map[string]string{"DINTERO_API_URL": "checkout.dintero.com"}, wantErr: "DINTERO_API_URL: want an absolute URL"},
		{name: "bad log format", env: map[string]string{"LOG_FORMAT": "xml"}, wantErr: "LOG_FORMAT"},
		{name: "bad log level", env: map[string]string{"LOG_LEVEL": "loud"}, wantErr: "LOG_LEVEL"},
		{name: "stray argument", args: []string{"run"}, wantErr: `unexpected argument "run"`},
		// Issue 12 item 10: a call started before SIGTERM fits in the grace.
		{name: "defaults fit the grace", check: func(t *testing.T, c *Config) {
			if c.ShutdownGrace < c.DinteroTimeout+5*time.Second {
				t.Errorf("default grace %s is not DINTERO_TIMEOUT %s + 5s", c.ShutdownGrace, c.DinteroTimeout)
			}
		}},
		{name: "timeout longer than the grace", env: map[string]string{"DINTERO_TIMEOUT": "30s", "PAYWORKER_SHUTDOWN_GRACE": "25s"},
			wantErr: "PAYWORKER_SHUTDOWN_GRACE (25s) must be at least DINTERO_TIMEOUT (30s) + 5s"},
		{name: "token limits", env: map[string]string{"PAYWORKER_TOKEN_LIMITS": "1h=3,24h=9"}, check: func(t *testing.T, c *Config) {
			if len(c.TokenLimits) != 2 || c.TokenLimits[0].Window != time.Hour || c.TokenLimits[0].Max != 3 || c.TokenLimits[1].Max != 9 {
				t.Errorf("token limits %+v", c.TokenLimits)
			}
			if !c.TokenQuarantine {
				t.Error("quarantine off by default")
			}
		}},
		{name: "token limits off", env: map[string]string{"PAYWORKER_TOKEN_LIMITS": "off", "PAYWORKER_TOKEN_QUARANTINE": "false"}, check: func(t *testing.T, c *Config) {
			if c.TokenLimits == nil || len(c.TokenLimits) != 0 || c.TokenQuarantine {
				t.Errorf("limits %+v quarantine %v, want none", c.TokenLimits, c.TokenQuarantine)
			}
		}},
		{name: "bad token limits", env: map[string]string{"PAYWORKER_TOKEN_LIMITS": "24h:10"}, wantErr: "PAYWORKER_TOKEN_LIMITS: want windows and counts"},
		// Issue 13: several deployments on one NATS account and Redis.
		{name: "no namespace", check: func(t *testing.T, c *Config) {
			if c.Namespace != "" || c.IdempotencyPrefix != "payworker:idem:" {
				t.Errorf("namespace %q, prefix %q; want today's", c.Namespace, c.IdempotencyPrefix)
			}
		}},
		{name: "namespace", env: map[string]string{"PAYWORKER_NAMESPACE": "acct2"}, check: func(t *testing.T, c *Config) {
			if c.Namespace != "acct2" || c.IdempotencyPrefix != "payworker:acct2:idem:" {
				t.Errorf("namespace %q, prefix %q; want acct2 and payworker:acct2:idem:", c.Namespace, c.IdempotencyPrefix)
			}
		}},
		{name: "namespace flag", args: []string{"-namespace", "acct-3"}, check: func(t *testing.T, c *Config) {
			if c.Namespace != "acct-3" || c.IdempotencyPrefix != "payworker:acct-3:idem:" {
				t.Errorf("namespace %q, prefix %q", c.Namespace, c.IdempotencyPrefix)
			}
		}},
		{name: "explicit prefix wins over the namespace's", env: map[string]string{"PAYWORKER_NAMESPACE": "acct2", "PAYWORKER_IDEMPOTENCY_PREFIX": "mine:"}, check: func(t *testing.T, c *Config) {
			if c.Namespace != "acct2" || c.IdempotencyPrefix != "mine:" {
				t.Errorf("namespace %q, prefix %q; want acct2 and mine:", c.Namespace, c.IdempotencyPrefix)
			}
		}},
		{name: "bad namespace", env: map[string]string{"PAYWORKER_NAMESPACE": "Acct.2"}, wantErr: `PAYWORKER_NAMESPACE: namespace "Acct.2": want at most 32 characters of a-z, 0-9`},
		{name: "replicas", env: map[string]string{"PAYWORKER_STREAM_REPLICAS": "2"}, wantErr: "PAYWORKER_STREAM_REPLICAS: want 1, 3 or 5"},
		// Issue 12 item 12: a mistyped URL never prints its password.
		{name: "mistyped NATS URL", env: map[string]string{"NATS_URL": "nats://u:s3cr3t-value@[::1"}, wantErr: `NATS_URL: "nats://xxxxx@[::1" is not a URL`},
		{name: "mistyped callback URL", env: map[string]string{"PAYWORKER_CALLBACK_URL": "https//u:s3cr3t-value@host/cb"}, wantErr: "PAYWORKER_CALLBACK_URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range c.env {
				env[k] = v
			}
			cfg, err := LoadConfig(c.args, func(k string) string { return env[k] }, io.Discard)
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				c.check(t, cfg)
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, c.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			if strings.Contains(err.Error(), "s3cr3t-value") {
				t.Errorf("error leaks the client secret: %q", err)
			}
		})
	}
}
