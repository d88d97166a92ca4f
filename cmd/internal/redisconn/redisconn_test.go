package redisconn

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/payworker/payworker/cmd/internal/certtest"
	"github.com/payworker/payworker/idempotency/redistest"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// roundTrip writes and reads a key through a client made from e.
func roundTrip(t *testing.T, e map[string]string) (redis.UniversalClient, error) {
	t.Helper()
	cfg, err := FromEnv(env(e))
	if err != nil {
		return nil, err
	}
	c, err := cfg.NewClient(8)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Set(ctx, "redisconn-test", "v", time.Minute).Err(); err != nil {
		return c, cfg.Redact(err)
	}
	if got, err := c.Get(ctx, "redisconn-test").Result(); err != nil || got != "v" {
		return c, cfg.Redact(errors.Join(err, errors.New("GET returned "+got)))
	}
	return c, nil
}

func TestSingleNodePasswordAndACL(t *testing.T) {
	const nodePW, aclPW = "node-secret-pw", "acl-secret-pw"
	srv := redistest.Start(t, redistest.Options{
		Password: nodePW,
		Args:     []string{"--user", "payworker", "on", ">" + aclPW, "~*", "&*", "+@all"},
	})
	addr := srv.Addr()
	tests := []struct {
		name string
		env  map[string]string
		ok   bool
	}{
		{"password in the URL", map[string]string{EnvURL: "redis://:" + nodePW + "@" + addr + "/0"}, true},
		{"REDIS_PASSWORD_FILE", map[string]string{EnvURL: "redis://" + addr + "/0", EnvPasswordFile: writeFile(t, "pw", nodePW+"\n")}, true},
		{"REDIS_PASSWORD replaces the URL's", map[string]string{EnvURL: "redis://:stale-pw@" + addr + "/0", EnvPassword: nodePW}, true},
		{"ACL user in the URL, password from the env", map[string]string{EnvURL: "redis://payworker@" + addr + "/0", EnvPassword: aclPW}, true},
		{"ACL user and password in the URL", map[string]string{EnvURL: "redis://payworker:" + aclPW + "@" + addr + "/0"}, true},
		{"no password", map[string]string{EnvURL: "redis://" + addr + "/0"}, false},
		{"wrong password", map[string]string{EnvURL: "redis://" + addr + "/0", EnvPassword: "wrong-" + nodePW}, false},
		{"ACL user with the node password", map[string]string{EnvURL: "redis://payworker@" + addr + "/0", EnvPassword: nodePW}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := roundTrip(t, tt.env)
			if tt.ok && err != nil {
				t.Fatal(err)
			}
			if !tt.ok {
				if err == nil {
					t.Fatal("succeeded, want a refusal")
				}
				t.Logf("refused as it should: %v", err)
				if strings.Contains(err.Error(), nodePW) || strings.Contains(err.Error(), aclPW) {
					t.Errorf("error shows a password: %v", err)
				}
				return
			}
			if _, ok := c.(*redis.Client); !ok {
				t.Errorf("client is %T, want *redis.Client", c)
			}
		})
	}
}

func TestTLS(t *testing.T) {
	pki := certtest.New(t)
	tlsPort := freePort(t)
	redistest.Start(t, redistest.Options{Args: []string{
		"--tls-port", strconv.Itoa(tlsPort),
		"--tls-cert-file", pki.ServerCert, "--tls-key-file", pki.ServerKey,
		"--tls-ca-cert-file", pki.CAFile, // and tls-auth-clients yes: a client certificate is required
	}})
	url := "rediss://127.0.0.1:" + strconv.Itoa(tlsPort) + "/0"
	good := map[string]string{EnvURL: url, EnvCA: pki.CAFile, EnvCert: pki.ClientCert, EnvKey: pki.ClientKey}
	if _, err := roundTrip(t, good); err != nil {
		t.Fatalf("rediss with CA and client certificate: %v", err)
	}
	for name, e := range map[string]map[string]string{
		"no client certificate":      {EnvURL: url, EnvCA: pki.CAFile},
		"another CA":                 {EnvURL: url, EnvCA: pki.OtherCAFile, EnvCert: pki.ClientCert, EnvKey: pki.ClientKey},
		"plain text to the TLS port": {EnvURL: "redis://127.0.0.1:" + strconv.Itoa(tlsPort) + "/0"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := roundTrip(t, e); err == nil {
				t.Fatal("succeeded, want a refusal")
			} else {
				t.Logf("refused as it should: %v", err)
			}
		})
	}
}

func TestSentinel(t *testing.T) {
	const pw = "sentinel-nodes-pw"
	s := redistest.StartSentinel(t, redistest.SentinelOptions{Password: pw})
	// The URL as a manifest has it: no password; that comes from a Secret.
	u := "redis://" + s.SentinelAddrs()[0] + "/0?master_name=" + s.MasterName() + "&addr=" + s.SentinelAddrs()[1] + "&addr=" + s.SentinelAddrs()[2]
	cfg, err := FromEnv(env(map[string]string{EnvURL: u, EnvPasswordFile: writeFile(t, "pw", pw)}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mode() != Sentinel {
		t.Fatalf("Mode = %v", cfg.Mode())
	}
	c, err := roundTrip(t, map[string]string{EnvURL: u, EnvPassword: pw})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := CheckEviction(ctx, c, false); err != nil {
		t.Errorf("CheckEviction on a noeviction primary: %v", err)
	}
	primary, err := s.Master(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pc := redis.NewClient(&redis.Options{Addr: primary.Addr(), Password: pw})
	defer pc.Close()
	if err := pc.ConfigSet(ctx, "maxmemory-policy", "allkeys-lru").Err(); err != nil {
		t.Fatal(err)
	}
	err = CheckEviction(ctx, c, false)
	if !errors.Is(err, ErrEvictingPolicy) || !strings.Contains(err.Error(), "allkeys-lru") {
		t.Errorf("CheckEviction on allkeys-lru = %v", err)
	}
	if err := CheckEviction(ctx, c, true); err != nil {
		t.Errorf("CheckEviction allowed: %v", err)
	}
	if _, err := roundTrip(t, map[string]string{EnvURL: u, EnvPassword: "wrong"}); err == nil {
		t.Error("wrong node password accepted")
	}
}

func TestCluster(t *testing.T) {
	cl := redistest.StartCluster(t, redistest.ClusterOptions{Password: "cluster-pw"})
	u := cl.URL() + "&cluster=true" // redis://:cluster-pw@node1?addr=node2&addr=node3&cluster=true
	cfg, err := FromEnv(env(map[string]string{EnvURL: u}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mode() != Cluster || strings.Contains(cfg.String(), "cluster-pw") {
		t.Fatalf("Mode %v, String %q", cfg.Mode(), cfg)
	}
	c, err := roundTrip(t, map[string]string{EnvURL: u})
	if err != nil {
		t.Fatal(err)
	}
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("client is %T", c)
	}
	if got := cc.Options().PoolSize; got != 8 {
		t.Errorf("PoolSize = %d, want the minimum passed, 8", got)
	}
	ctx := context.Background()
	if err := CheckEviction(ctx, c, false); err != nil {
		t.Errorf("CheckEviction: %v", err)
	}
	// One master of three with volatile-lru is enough to refuse.
	nc := redis.NewClient(&redis.Options{Addr: cl.Nodes[2].Addr(), Password: "cluster-pw"})
	defer nc.Close()
	if err := nc.ConfigSet(ctx, "maxmemory-policy", "volatile-lru").Err(); err != nil {
		t.Fatal(err)
	}
	err = CheckEviction(ctx, c, false)
	if !errors.Is(err, ErrEvictingPolicy) || !strings.Contains(err.Error(), cl.Nodes[2].Addr()) || !strings.Contains(err.Error(), "volatile-lru") {
		t.Errorf("CheckEviction with one volatile-lru master = %v", err)
	}
	t.Logf("refused as it should: %v", err)
}

func TestSingleEviction(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Args: []string{"--maxmemory-policy", "allkeys-lfu"}})
	cfg, err := FromEnv(env(map[string]string{EnvURL: srv.URL()}))
	if err != nil {
		t.Fatal(err)
	}
	c, err := cfg.NewClient(1)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	err = CheckEviction(ctx, c, cfg.AllowEviction)
	want := "redis " + srv.Addr() + " has maxmemory-policy allkeys-lfu: it may evict idempotency records"
	if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Errorf("CheckEviction = %v, want one line starting %q", err, want)
	}
	cfg, err = FromEnv(env(map[string]string{EnvURL: srv.URL(), EnvAllowEviction: "true"}))
	if err != nil || !cfg.AllowEviction {
		t.Fatal(cfg, err)
	}
	if err := CheckEviction(ctx, c, cfg.AllowEviction); err != nil {
		t.Errorf("with %s=true: %v", EnvAllowEviction, err)
	}
	// CONFIG disabled (as on managed services): INFO still answers.
	srv2 := redistest.Start(t, redistest.Options{Args: []string{"--rename-command", "CONFIG", ""}})
	c2 := redis.NewClient(&redis.Options{Addr: srv2.Addr()})
	defer c2.Close()
	if err := c2.ConfigGet(ctx, "maxmemory-policy").Err(); err == nil {
		t.Fatal("CONFIG still works")
	}
	if err := CheckEviction(ctx, c2, false); err != nil {
		t.Errorf("CheckEviction without CONFIG: %v", err)
	}
}

func TestModesAndPool(t *testing.T) {
	for _, tt := range []struct {
		url  string
		mode Mode
		pool int
	}{
		{"", Single, 64},
		{"redis://h:6379/2", Single, 64},
		{"rediss://h:6379/0?pool_size=10", Single, 10},
		{"redis://s1:26379/0?master_name=pw&addr=s2:26379", Sentinel, 64},
		{"redis://n1:6379?addr=n2:6379&cluster=true", Cluster, 64},
		{"redis://n1:6379?cluster=true&pool_size=5", Cluster, 5},
		{"redis://n1:6379/0?cluster=false", Single, 64},
	} {
		cfg, err := FromEnv(env(map[string]string{EnvURL: tt.url}))
		if err != nil {
			t.Errorf("%q: %v", tt.url, err)
			continue
		}
		if cfg.Mode() != tt.mode {
			t.Errorf("%q: Mode %v, want %v", tt.url, cfg.Mode(), tt.mode)
		}
		c, err := cfg.NewClient(64)
		if err != nil {
			t.Errorf("%q: %v", tt.url, err)
			continue
		}
		var pool int
		switch c := c.(type) {
		case *redis.Client:
			pool = c.Options().PoolSize
		case *redis.ClusterClient:
			pool = c.Options().PoolSize
		}
		c.Close()
		if pool != tt.pool {
			t.Errorf("%q: PoolSize %d, want %d", tt.url, pool, tt.pool)
		}
	}
}

func TestErrorsHideSecrets(t *testing.T) {
	const secret = "very-secret-pw"
	pwFile := writeFile(t, "pw", secret)
	for _, tt := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"unknown option", map[string]string{EnvURL: "redis://u:" + secret + "@h:6379/0?bogus=1"}, "unexpected option: bogus"},
		{"sentinel unknown option", map[string]string{EnvURL: "redis://h:26379/0?master_name=pw&password=" + secret + "&bogus=" + secret}, "unexpected option"},
		{"bad scheme", map[string]string{EnvURL: "http://u:" + secret + "@h:6379/0"}, "invalid URL scheme"},
		{"cluster with a database", map[string]string{EnvURL: "redis://u:" + secret + "@h:6379/3?cluster=true"}, "only database 0"},
		{"empty master name", map[string]string{EnvURL: "redis://h:26379/0?master_name="}, "master_name is empty"},
		{"password twice", map[string]string{EnvPassword: secret, EnvPasswordFile: pwFile}, "REDIS_PASSWORD and REDIS_PASSWORD_FILE are both set"},
		{"cert without key", map[string]string{EnvCert: pwFile}, "REDIS_CERT and REDIS_KEY go together"},
		{"CA not PEM", map[string]string{EnvCA: pwFile}, "no PEM certificate"},
		{"bad allow", map[string]string{EnvAllowEviction: "sure"}, "PAYWORKER_ALLOW_EVICTION"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromEnv(env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("FromEnv = %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
	if got := RedactURL("redis://u:" + secret + "@h:1/0?master_name=x&password=" + secret); strings.Contains(got, secret) {
		t.Errorf("RedactURL = %q", got)
	}
}
