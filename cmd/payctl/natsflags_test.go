package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/cmd/internal/certtest"
	"github.com/payworker/payworker/worker"
)

// startJetStream runs an embedded nats-server with JetStream and opts
// (authentication, TLS) on a free loopback port until the test ends, and
// creates payworker's streams through a connection made with connOpts.
func startJetStream(t *testing.T, opts *server.Options, connOpts ...nats.Option) *server.Server {
	t.Helper()
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.JetStream, opts.StoreDir = true, t.TempDir()
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
	nc, err := nats.Connect(s.ClientURL(), connOpts...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := worker.Setup(ctx, js, worker.Config{}); err != nil {
		t.Fatal(err)
	}
	return s
}

// clearNATSEnv unsets the NATS_* variables for the test, so that the
// machine's environment cannot decide its outcome.
func clearNATSEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"NATS_URL", "NATS_CREDS", "NATS_NKEY", "NATS_USER", "NATS_PASSWORD", "NATS_PASSWORD_FILE",
		"NATS_TOKEN", "NATS_TOKEN_FILE", "NATS_CA", "NATS_CERT", "NATS_KEY"} {
		t.Setenv(k, "")
	}
}

type natsCase struct {
	name string
	env  map[string]string
	args []string
	want int
}

// runNATSCases runs "payctl dlq list" with each case's environment and
// flags, checks the exit code, and that no output or error shows a secret.
func runNATSCases(t *testing.T, cases []natsCase, secrets ...string) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clearNATSEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			stdout, stderr, err := runSplit(context.Background(), append([]string{"dlq", "list", "--json"}, tc.args...)...)
			if got := exitCode(err); got != tc.want {
				t.Fatalf("exit %d (%v), want %d; stdout %q", got, err, tc.want, stdout)
			}
			if tc.want == exitOK && strings.TrimSpace(stdout) != "[]" {
				t.Errorf("stdout %q, want the empty dead-letter list", stdout)
			}
			all := stdout + stderr
			if err != nil {
				t.Logf("payctl: %v", err)
				all += err.Error()
			}
			for _, s := range secrets {
				if strings.Contains(all, s) {
					t.Errorf("output or error shows a secret: %q", all)
				}
			}
		})
	}
}

// Issue 13: payctl reaches a NATS that wants a user and password, from
// the environment as payworker reads it or from the nats CLI's flags.
func TestNATSUserPassword(t *testing.T) {
	const password = "pa55-w0rd-payctl"
	s := startJetStream(t, &server.Options{Username: "ops", Password: password}, nats.UserInfo("ops", password))
	url := s.ClientURL()
	hostport := strings.TrimPrefix(url, "nats://")
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	runNATSCases(t, []natsCase{
		{"flags", nil, []string{"-s", url, "--user", "ops", "--password", password}, exitOK},
		{"--server and --nats alias", nil, []string{"--nats", url, "--user", "ops", "--password", password}, exitOK},
		{"environment", map[string]string{"NATS_URL": url, "NATS_USER": "ops", "NATS_PASSWORD": password}, nil, exitOK},
		{"password file", map[string]string{"NATS_URL": url, "NATS_USER": "ops", "NATS_PASSWORD_FILE": pwFile}, nil, exitOK},
		{"in the URL", map[string]string{"NATS_URL": "nats://ops:" + password + "@" + hostport}, nil, exitOK},
		{"several servers, the first dead", map[string]string{"NATS_USER": "ops", "NATS_PASSWORD": password},
			[]string{"-s", "nats://" + closedPort(t) + "," + url}, exitOK},
		{"flags replace the environment's auth", map[string]string{"NATS_URL": url, "NATS_TOKEN": "not-this"},
			[]string{"--user", "ops", "--password", password}, exitOK},
		{"wrong password", nil, []string{"-s", url, "--user", "ops", "--password", "wrong-" + password}, exitError},
		{"wrong password in the URL", map[string]string{"NATS_URL": "nats://ops:wrong-" + password + "@" + hostport}, nil, exitError},
		{"no credentials", map[string]string{"NATS_URL": url}, nil, exitError},
		{"password without user", map[string]string{"NATS_URL": url, "NATS_PASSWORD": password}, nil, exitUsage},
		{"two ways to authenticate", nil, []string{"-s", url, "--user", "ops", "--password", password, "--token", "x"}, exitUsage},
	}, password)

	t.Run("help works whatever the environment holds", func(t *testing.T) {
		clearNATSEnv(t)
		t.Setenv("NATS_PASSWORD", password) // without NATS_USER: unusable
		stdout, _, err := runSplit(context.Background(), "dlq", "list", "-h")
		if !errors.Is(err, flag.ErrHelp) || !strings.Contains(stdout, "-tlsca") || strings.Contains(stdout, password) {
			t.Fatalf("dlq list -h: %v\n%s", err, stdout)
		}
	})
}

// Issue 13: payctl reaches a NATS behind TLS with a private CA, and one
// that wants a client certificate.
func TestNATSTLS(t *testing.T) {
	pki := certtest.New(t)
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, CaFile: pki.CAFile, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	s := startJetStream(t, &server.Options{TLS: true, TLSVerify: true, TLSConfig: tc, TLSTimeout: 2},
		nats.RootCAs(pki.CAFile), nats.ClientCert(pki.ClientCert, pki.ClientKey))
	url := s.ClientURL() // tls://127.0.0.1:port
	runNATSCases(t, []natsCase{
		{"flags", nil, []string{"-s", url, "--tlsca", pki.CAFile, "--tlscert", pki.ClientCert, "--tlskey", pki.ClientKey}, exitOK},
		{"environment", map[string]string{"NATS_URL": url, "NATS_CA": pki.CAFile, "NATS_CERT": pki.ClientCert, "NATS_KEY": pki.ClientKey}, nil, exitOK},
		{"flags over the environment", map[string]string{"NATS_URL": url, "NATS_CA": pki.OtherCAFile, "NATS_CERT": pki.ClientCert, "NATS_KEY": pki.ClientKey},
			[]string{"--tlsca", pki.CAFile}, exitOK},
		{"no client certificate", nil, []string{"-s", url, "--tlsca", pki.CAFile}, exitError},
		{"a CA that signed nothing here", nil, []string{"-s", url, "--tlsca", pki.OtherCAFile, "--tlscert", pki.ClientCert, "--tlskey", pki.ClientKey}, exitError},
		{"half a client certificate", nil, []string{"-s", url, "--tlsca", pki.CAFile, "--tlscert", pki.ClientCert}, exitUsage},
		{"a CA file that does not exist", nil, []string{"-s", url, "--tlsca", filepath.Join(t.TempDir(), "nope.pem")}, exitUsage},
	})
}
