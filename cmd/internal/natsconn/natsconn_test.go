package natsconn

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/payworker/payworker/cmd/internal/certtest"
)

// startServer runs an embedded nats-server with opts on a free loopback
// port until the test ends.
func startServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	opts.Host = "127.0.0.1"
	opts.Port = -1
	opts.NoLog, opts.NoSigs = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// operator builds an operator/account/user JWT chain and returns the
// server options trusting it and the user's .creds file content.
func operator(t *testing.T) (*server.Options, string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	okp, err := nkeys.CreateOperator()
	must(err)
	opub, err := okp.PublicKey()
	must(err)
	oc := jwt.NewOperatorClaims(opub)
	ojwt, err := oc.Encode(okp)
	must(err)
	oclaims, err := jwt.DecodeOperatorClaims(ojwt)
	must(err)

	akp, err := nkeys.CreateAccount()
	must(err)
	apub, err := akp.PublicKey()
	must(err)
	ajwt, err := jwt.NewAccountClaims(apub).Encode(okp)
	must(err)

	ukp, err := nkeys.CreateUser()
	must(err)
	upub, err := ukp.PublicKey()
	must(err)
	useed, err := ukp.Seed()
	must(err)
	ujwt, err := jwt.NewUserClaims(upub).Encode(akp)
	must(err)
	creds, err := jwt.FormatUserConfig(ujwt, useed)
	must(err)

	res := &server.MemAccResolver{}
	must(res.Store(apub, ajwt))
	return &server.Options{TrustedOperators: []*jwt.OperatorClaims{oclaims}, AccountResolver: res}, string(creds)
}

func TestConnectEachAuthKind(t *testing.T) {
	pki := certtest.New(t)
	const password, token = "pa55-w0rd-secret", "t0ken-secret-value"

	ukp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	upub, _ := ukp.PublicKey()
	useed, _ := ukp.Seed()
	otherKP, _ := nkeys.CreateUser()
	otherSeed, _ := otherKP.Seed()
	opOpts, creds := operator(t)
	_, otherCreds := operator(t) // signed by an operator the server does not trust

	tlsOpts := func(verify bool) *server.Options {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, CaFile: pki.CAFile, Verify: verify})
		if err != nil {
			t.Fatal(err)
		}
		return &server.Options{TLS: true, TLSVerify: verify, TLSConfig: tc, TLSTimeout: 2}
	}

	tests := []struct {
		name    string
		server  *server.Options
		good    map[string]string // env that connects ("URL" is replaced by the server's URL)
		bad     map[string]string // env that must be refused
		secrets []string          // must not appear in the refusal's error
	}{
		{
			name:    "user and password",
			server:  &server.Options{Username: "payworker", Password: password},
			good:    map[string]string{EnvUser: "payworker", EnvPasswordFile: writeFile(t, "pw", password+"\n")},
			bad:     map[string]string{EnvUser: "payworker", EnvPassword: "wrong-" + password},
			secrets: []string{password},
		},
		{
			name:    "user and password in the URL",
			server:  &server.Options{Username: "payworker", Password: password},
			good:    map[string]string{EnvURL: "nats://payworker:" + password + "@HOSTPORT"},
			bad:     map[string]string{EnvURL: "nats://payworker:wrong-" + password + "@HOSTPORT"},
			secrets: []string{password},
		},
		{
			name:    "token",
			server:  &server.Options{Authorization: token},
			good:    map[string]string{EnvTokenFile: writeFile(t, "token", token)},
			bad:     map[string]string{EnvToken: "wrong-" + token},
			secrets: []string{token},
		},
		{
			name:    "nkey",
			server:  &server.Options{Nkeys: []*server.NkeyUser{{Nkey: upub}}},
			good:    map[string]string{EnvNKey: writeFile(t, "user.nk", string(useed))},
			bad:     map[string]string{EnvNKey: writeFile(t, "other.nk", string(otherSeed))},
			secrets: []string{string(useed), string(otherSeed)},
		},
		{
			name:   "creds (operator, account and user JWTs)",
			server: opOpts,
			good:   map[string]string{EnvCreds: writeFile(t, "user.creds", creds)},
			bad:    map[string]string{EnvCreds: writeFile(t, "other.creds", otherCreds)},
		},
		{
			name:   "TLS with a custom CA",
			server: tlsOpts(false),
			good:   map[string]string{EnvCA: pki.CAFile},
			bad:    map[string]string{EnvCA: pki.OtherCAFile},
		},
		{
			name:   "mutual TLS",
			server: tlsOpts(true),
			good:   map[string]string{EnvCA: pki.CAFile, EnvCert: pki.ClientCert, EnvKey: pki.ClientKey},
			bad:    map[string]string{EnvCA: pki.CAFile}, // no client certificate
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, tt.server)
			hostport := strings.TrimPrefix(s.ClientURL(), "nats://")
			fill := func(m map[string]string) map[string]string {
				out := map[string]string{EnvURL: s.ClientURL()}
				for k, v := range m {
					out[k] = strings.ReplaceAll(v, "HOSTPORT", hostport)
				}
				return out
			}
			cfg, err := FromEnv(env(fill(tt.good)))
			if err != nil {
				t.Fatalf("FromEnv: %v", err)
			}
			nc, err := cfg.Connect(nats.Name("natsconn-test"), nats.Timeout(2*time.Second))
			if err != nil {
				t.Fatalf("Connect(%v): %v", cfg, err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatalf("flush: %v", err)
			}
			nc.Close()

			bad, err := FromEnv(env(fill(tt.bad)))
			if err != nil {
				t.Fatalf("FromEnv(bad): %v", err)
			}
			nc, err = bad.Connect(nats.Timeout(2 * time.Second))
			if err == nil {
				nc.Close()
				t.Fatalf("Connect with %v succeeded, want a refusal", bad)
			}
			t.Logf("refused as it should: %v", err)
			for _, sec := range append(tt.secrets, bad.Password, bad.Token) {
				if sec != "" && strings.Contains(err.Error(), sec) {
					t.Errorf("error shows a secret: %v", err)
				}
			}
			if s := bad.String() + bad.GoString() + bad.Redacted(); containsAny(s, tt.secrets) {
				t.Errorf("String/GoString/Redacted show a secret: %s", s)
			}
		})
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if sub != "" && strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func TestSeveralServers(t *testing.T) {
	a := startServer(t, &server.Options{})
	// The first URL has nothing listening: the client must try the next.
	dead := "nats://127.0.0.1:1"
	cfg, err := FromEnv(env(map[string]string{EnvURL: dead + ", " + strings.TrimPrefix(a.ClientURL(), "nats://")}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Servers(), dead+","+a.ClientURL(); got != want {
		t.Errorf("Servers() = %q, want %q", got, want)
	}
	nc, err := cfg.Connect(nats.DontRandomize(), nats.Timeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if nc.ConnectedUrl() != a.ClientURL() {
		t.Errorf("connected to %q, want %q", nc.ConnectedUrl(), a.ClientURL())
	}
}

func TestFromEnvErrors(t *testing.T) {
	pw := writeFile(t, "pw", "file-secret")
	empty := writeFile(t, "empty", "\n")
	const secret = "hunter2-secret"
	tests := []struct {
		name string
		env  map[string]string
		want string // in the error
	}{
		{"password without user", map[string]string{EnvPassword: secret}, "NATS_PASSWORD is set but NATS_USER is not"},
		{"password and its file", map[string]string{EnvUser: "u", EnvPassword: secret, EnvPasswordFile: pw}, "NATS_PASSWORD and NATS_PASSWORD_FILE are both set"},
		{"token and its file", map[string]string{EnvToken: secret, EnvTokenFile: pw}, "NATS_TOKEN and NATS_TOKEN_FILE are both set"},
		{"empty token file", map[string]string{EnvTokenFile: empty}, "is empty"},
		{"missing password file", map[string]string{EnvUser: "u", EnvPasswordFile: "/nonexistent/pw"}, "NATS_PASSWORD_FILE: open /nonexistent/pw"},
		{"two auth kinds", map[string]string{EnvUser: "u", EnvPassword: secret, EnvToken: secret}, "NATS_USER and NATS_TOKEN are set; use exactly one"},
		{"URL auth and token", map[string]string{EnvURL: "nats://u:" + secret + "@127.0.0.1:4222", EnvToken: "x"}, "NATS_TOKEN and user information in NATS_URL"},
		{"cert without key", map[string]string{EnvCert: pw}, "NATS_CERT and NATS_KEY go together"},
		{"missing creds", map[string]string{EnvCreds: "/nonexistent/user.creds"}, "NATS_CREDS: open /nonexistent/user.creds"},
		{"missing CA", map[string]string{EnvCA: "/nonexistent/ca.pem"}, "NATS_CA: open"},
		{"bad scheme", map[string]string{EnvURL: "http://u:" + secret + "@127.0.0.1:4222"}, `"http://u:xxxxx@127.0.0.1:4222": scheme must be`},
		{"bad port", map[string]string{EnvURL: "nats://u:" + secret + "@127.0.0.1:99999"}, "bad port"},
		{"unparsable URL", map[string]string{EnvURL: "nats://u:" + secret + "@127.0.0.1:4222/%zz"}, "is not a URL"},
		{"token URL, bad scheme", map[string]string{EnvURL: "redis://" + secret + "@127.0.0.1:4222"}, `"redis://xxxxx@127.0.0.1:4222"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromEnv(env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("FromEnv = %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "file-secret") {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
}

func TestDefaultsAndOptions(t *testing.T) {
	cfg, err := FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Servers() != DefaultURL || len(cfg.Options()) != 0 || cfg.TLS() {
		t.Errorf("zero env: servers %q, %d options, TLS %v", cfg.Servers(), len(cfg.Options()), cfg.TLS())
	}
	urls := []string{"a:4222", "nats://b:4222"}
	c := Config{URLs: urls}
	if got := c.Servers(); got != "nats://a:4222,nats://b:4222" {
		t.Errorf("Servers() = %q", got)
	}
	if urls[0] != "a:4222" {
		t.Error("Servers() wrote into the caller's slice")
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://u:p@h:1":           "nats://u:xxxxx@h:1",
		"nats://tok@h:1":           "nats://xxxxx@h:1",
		"nats://h:1":               "nats://h:1",
		"nats://u:p@h:1/%zz":       "nats://xxxxx@h:1/%zz",
		"tls://user:p%40ss@h:4222": "tls://user:xxxxx@h:4222",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFlags(t *testing.T) {
	creds := writeFile(t, "x.creds", "not used")
	base, err := FromEnv(env(map[string]string{EnvURL: "nats://a:4222", EnvCreds: creds}))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("flags replace the environment's servers and auth", func(t *testing.T) {
		c := base
		fs := flag.NewFlagSet("payctl", flag.ContinueOnError)
		c.RegisterFlags(fs)
		if err := fs.Parse([]string{"-s", "nats://b:4222,c:4222", "--user", "ops", "--password", "flag-secret"}); err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if c.Servers() != "nats://b:4222,nats://c:4222" || c.User != "ops" || c.Password != "flag-secret" || c.CredsFile != "" {
			t.Errorf("after flags: %#v (creds %q)", c, c.CredsFile)
		}
		if base.CredsFile != creds || base.Servers() != "nats://a:4222" {
			t.Errorf("flags changed the original config: %v", base)
		}
	})
	t.Run("--server and TLS flags", func(t *testing.T) {
		c := base
		fs := flag.NewFlagSet("payctl", flag.ContinueOnError)
		c.RegisterFlags(fs)
		if err := fs.Parse([]string{"--server", "tls://d:4222", "--tlsca", creds}); err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if c.Servers() != "tls://d:4222" || c.CAFile != creds || c.CredsFile != creds || !c.TLS() {
			t.Errorf("after flags: %v", c)
		}
	})
	t.Run("two auth flags are refused", func(t *testing.T) {
		c := base
		fs := flag.NewFlagSet("payctl", flag.ContinueOnError)
		c.RegisterFlags(fs)
		if err := fs.Parse([]string{"--token", "t", "--nkey", creds}); err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "use exactly one") {
			t.Errorf("Validate = %v", err)
		}
	})
	t.Run("help does not print secrets from the environment", func(t *testing.T) {
		c := Config{URLs: []string{"nats://u2:url-secret@h:4222"}, Token: "env-token-secret"}
		fs := flag.NewFlagSet("payctl", flag.ContinueOnError)
		var out strings.Builder
		fs.SetOutput(&out)
		c.RegisterFlags(fs)
		fs.PrintDefaults()
		if containsAny(out.String(), []string{"url-secret", "env-token-secret"}) {
			t.Errorf("-h shows a secret:\n%s", out.String())
		}
		if !strings.Contains(out.String(), "-creds") || !strings.Contains(out.String(), "-tlskey") {
			t.Errorf("-h lacks flags:\n%s", out.String())
		}
	})
}

func TestCheckServerVersion(t *testing.T) {
	s := startServer(t, &server.Options{})
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := CheckServerVersion(nc, "2.12", "payworker", "message schedules"); err != nil {
		t.Errorf("embedded %s: %v", nc.ConnectedServerVersion(), err)
	}
	err = CheckServerVersion(nc, "99.1", "payworker", "the future")
	want := "nats-server " + server.VERSION + " is too old: payworker needs 99.1 or newer (the future)"
	if err == nil || err.Error() != want || !errors.Is(err, ErrServerTooOld) {
		t.Errorf("CheckServerVersion(99.1) = %v, want %q wrapping ErrServerTooOld", err, want)
	}
	nc.Close()
	if err := CheckServerVersion(nc, "2.12", "payworker", ""); err == nil || errors.Is(err, ErrServerTooOld) {
		t.Errorf("closed connection: %v", err)
	}

	for _, tt := range []struct {
		have, min string
		ok        bool
	}{
		{"2.9.25", "2.12", false},
		{"2.10.0", "2.10", true},
		{"2.12.0-RC.1", "2.12", true},
		{"2.11.9", "2.12.0", false},
		{"v2.15.2", "2.12", true},
		{"3.0.0", "2.12", true},
	} {
		err := checkVersion(tt.have, tt.min, "payworker", "x")
		if (err == nil) != tt.ok {
			t.Errorf("checkVersion(%q, %q) = %v, want ok=%v", tt.have, tt.min, err, tt.ok)
		}
	}
	if err := checkVersion("2.9.25", "2.12", "payworker", "message schedules"); err == nil ||
		err.Error() != "nats-server 2.9.25 is too old: payworker needs 2.12 or newer (message schedules)" {
		t.Errorf("message: %v", err)
	}
	if err := checkVersion("garbage", "2.12", "payworker", ""); err == nil || errors.Is(err, ErrServerTooOld) {
		t.Errorf("garbage version: %v", err)
	}
}
