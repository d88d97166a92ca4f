package service

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payworker/payworker/cmd/internal/certtest"
	"github.com/payworker/payworker/worker"
)

func dinteroCAEnv(extra map[string]string) func(string) string {
	env := map[string]string{
		"DINTERO_ACCOUNT_ID":    "T12345678",
		"DINTERO_CLIENT_ID":     "client",
		"DINTERO_CLIENT_SECRET": "s3cr3t-value",
	}
	for k, v := range extra {
		env[k] = v
	}
	return func(k string) string { return env[k] }
}

func TestDinteroCAConfig(t *testing.T) {
	pki := certtest.New(t)
	notPEM := filepath.Join(t.TempDir(), "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, path, wantErr string
	}{
		{"a CA file", pki.CAFile, ""},
		{"missing file", filepath.Join(t.TempDir(), "nope.pem"), "DINTERO_CA: cannot read it"},
		{"no certificate in it", notPEM, "DINTERO_CA: no PEM certificate in " + notPEM},
		{"a key is no certificate", pki.ServerKey, "DINTERO_CA: no PEM certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadConfig(nil, dinteroCAEnv(map[string]string{"DINTERO_CA": tt.path}), io.Discard)
			if tt.wantErr == "" {
				if err != nil || cfg.DinteroRoots == nil || cfg.DinteroCA != tt.path {
					t.Fatalf("LoadConfig = %+v, %v; want the CA loaded", cfg, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v; want one line containing %q", err, tt.wantErr)
			}
		})
	}
	cfg, err := LoadConfig(nil, dinteroCAEnv(nil), io.Discard)
	if err != nil || cfg.DinteroRoots != nil {
		t.Fatalf("without DINTERO_CA: roots %v, err %v; want the system roots (nil)", cfg.DinteroRoots, err)
	}
}

// TestDinteroCAReachesTLSServer checks that the Dintero client newDintero
// builds trusts DINTERO_CA and talks HTTP/2 to a server it signed.
func TestDinteroCAReachesTLSServer(t *testing.T) {
	pki := certtest.New(t)
	var proto atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(int64(r.ProtoMajor))
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/auth/token") {
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "tok", "token_type": "Bearer", "expires_in": 3600})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"id": "T12345678.tx1", "status": "AUTHORIZED"})
	}))
	cert, err := tls.LoadX509KeyPair(pki.ServerCert, pki.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)

	cfg, err := LoadConfig(nil, dinteroCAEnv(map[string]string{"DINTERO_CA": pki.CAFile, "DINTERO_API_URL": srv.URL}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := newDintero(cfg, nil, worker.NewMetrics(prometheus.NewRegistry()), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gw.GetTransaction(context.Background(), "T12345678.tx1"); err != nil {
		t.Fatalf("GetTransaction through DINTERO_CA: %v", err)
	}
	if got := proto.Load(); got != 2 {
		t.Errorf("the server saw HTTP/%d; want HTTP/2", got)
	}
}
