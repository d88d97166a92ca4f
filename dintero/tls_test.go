package dintero

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// newTLSFake is newFake served over TLS with HTTP/2 offered; proto records
// the ProtoMajor of the last request the server saw.
func newTLSFake(t *testing.T) (f *fakeDintero, proto *atomic.Int64) {
	t.Helper()
	f = &fakeDintero{issued: map[string]bool{}}
	f.expiresIn.Store(3600)
	proto = new(atomic.Int64)
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(int64(r.ProtoMajor))
		f.serve(w, r)
	}))
	f.srv.EnableHTTP2 = true
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes of the test without RootCAs
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f, proto
}

// TestRootCAsKeepHTTP2 checks that the default client trusts the CA given
// in RootCAs and still speaks HTTP/2 over TLS, as it does to Dintero.
func TestRootCAsKeepHTTP2(t *testing.T) {
	f, proto := newTLSFake(t)
	roots := x509.NewCertPool()
	roots.AddCert(f.srv.Certificate())
	c := newTestClient(t, f, func(cfg *Config) { cfg.RootCAs = roots })
	if _, err := c.PaySession(context.Background(), payBody); err != nil {
		t.Fatalf("PaySession with RootCAs: %v", err)
	}
	if got := proto.Load(); got != 2 {
		t.Errorf("the server saw HTTP/%d; want HTTP/2", got)
	}
	if n := len(f.apiRequests()); n != 1 {
		t.Errorf("%d API requests; want 1", n)
	}
}

// TestNoRootCAsRejectsUnknownCA checks that without RootCAs the test CA is
// not trusted: the call fails on the certificate and reaches no handler.
func TestNoRootCAsRejectsUnknownCA(t *testing.T) {
	f, _ := newTLSFake(t)
	c := newTestClient(t, f, func(cfg *Config) { cfg.Retry.MaxAttempts = 1 })
	_, err := c.PaySession(context.Background(), payBody)
	var unknown x509.UnknownAuthorityError
	var verify *tls.CertificateVerificationError
	if !errors.As(err, &unknown) && !errors.As(err, &verify) {
		t.Fatalf("PaySession without RootCAs = %v; want a certificate error", err)
	}
	if n := f.tokenCalls.Load() + f.apiCalls.Load(); n != 0 {
		t.Errorf("the server handled %d requests; want none", n)
	}
}
