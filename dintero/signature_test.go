package dintero_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero"
)

// The test vector of Dintero's "validating callbacks" page.
const (
	vectorSecret  = "123"
	vectorTime    = 1582236537
	vectorAccount = "P00000000"
	vectorURL     = "https://example.com/callback?B=123&A=992"
	vectorHex     = "6bed2ab1b919d460ef7465a20dc6c97260dca73fab6647106ca525f0908df64a"
)

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestSignCallbackVector(t *testing.T) {
	got := dintero.SignCallback([]byte(vectorSecret), vectorAccount, "GET", mustURL(t, vectorURL), time.Unix(vectorTime, 0))
	want := "t=1582236537,v0-hmac-sha256=" + vectorHex
	if got != want {
		t.Fatalf("SignCallback = %q\nwant          %q", got, want)
	}
	// The method is signed in upper case whatever the caller passes.
	if lower := dintero.SignCallback([]byte(vectorSecret), vectorAccount, "get", mustURL(t, vectorURL), time.Unix(vectorTime, 0)); lower != want {
		t.Errorf("lower-case method: %q", lower)
	}
	// Query order and escaping in the URL do not matter: the query is
	// decoded and sorted before signing.
	for _, s := range []string{
		"https://example.com/callback?A=992&B=123",
		"https://EXAMPLE.com:443/callback?%41=992&B=%31%323",
	} {
		if got := dintero.SignCallback([]byte(vectorSecret), vectorAccount, "GET", mustURL(t, s), time.Unix(vectorTime, 0)); got != want {
			t.Errorf("%s: %q", s, got)
		}
	}
}

func TestVerifyCallbackURLVector(t *testing.T) {
	now := time.Unix(vectorTime+60, 0)
	header := "t=1582236537,v0-hmac-sha256=" + vectorHex
	tests := []struct {
		name    string
		secret  string
		method  string
		url     string
		header  string
		now     time.Time
		tol     time.Duration
		wantErr error
	}{
		{"vector", vectorSecret, "GET", vectorURL, header, now, 0, nil},
		{"vector with a port", vectorSecret, "GET", "https://example.com:8443/callback?B=123&A=992", header, now, 0, nil},
		{"spaces around entries", vectorSecret, "GET", vectorURL, " t=1582236537 , v0-hmac-sha256=" + vectorHex + " ", now, 0, nil},
		{"unknown scheme beside v0", vectorSecret, "GET", vectorURL, header + ",v1-other=abc", now, 0, nil},
		{"one of two signatures matches", vectorSecret, "GET", vectorURL, header + ",v0-hmac-sha256=" + strings.Repeat("00", 32), now, 0, nil},
		{"unsorted query signed", vectorSecret, "GET", vectorURL, "t=1582236537,v0-hmac-sha256=" + unsortedVectorHex, now, 0, dintero.ErrSignatureInvalid},
		{"tampered query", vectorSecret, "GET", "https://example.com/callback?B=124&A=992", header, now, 0, dintero.ErrSignatureInvalid},
		{"extra query param", vectorSecret, "GET", vectorURL + "&C=1", header, now, 0, dintero.ErrSignatureInvalid},
		{"other path", vectorSecret, "GET", "https://example.com/callbacks?B=123&A=992", header, now, 0, dintero.ErrSignatureInvalid},
		{"other host", vectorSecret, "GET", "https://example.org/callback?B=123&A=992", header, now, 0, dintero.ErrSignatureInvalid},
		{"other method", vectorSecret, "POST", vectorURL, header, now, 0, dintero.ErrSignatureInvalid},
		{"wrong secret", "124", "GET", vectorURL, header, now, 0, dintero.ErrSignatureInvalid},
		{"stale t", vectorSecret, "GET", vectorURL, header, time.Unix(vectorTime, 0).Add(5*time.Minute + time.Second), 0, dintero.ErrSignatureExpired},
		{"future t", vectorSecret, "GET", vectorURL, header, time.Unix(vectorTime, 0).Add(-5*time.Minute - time.Second), 0, dintero.ErrSignatureExpired},
		{"edge of the default tolerance", vectorSecret, "GET", vectorURL, header, time.Unix(vectorTime, 0).Add(5 * time.Minute), 0, nil},
		{"custom tolerance", vectorSecret, "GET", vectorURL, header, time.Unix(vectorTime+61, 0), time.Minute, dintero.ErrSignatureExpired},
		{"tampered t", vectorSecret, "GET", vectorURL, "t=1582236538,v0-hmac-sha256=" + vectorHex, now, 0, dintero.ErrSignatureInvalid},
		{"missing header", vectorSecret, "GET", vectorURL, "", now, 0, dintero.ErrSignatureMissing},
		{"blank header", vectorSecret, "GET", vectorURL, "  ", now, 0, dintero.ErrSignatureMissing},
		{"no t", vectorSecret, "GET", vectorURL, "v0-hmac-sha256=" + vectorHex, now, 0, dintero.ErrSignatureInvalid},
		{"no signature", vectorSecret, "GET", vectorURL, "t=1582236537", now, 0, dintero.ErrSignatureInvalid},
		{"t twice", vectorSecret, "GET", vectorURL, "t=1582236537,t=1582236537,v0-hmac-sha256=" + vectorHex, now, 0, dintero.ErrSignatureInvalid},
		{"t not a number", vectorSecret, "GET", vectorURL, "t=soon,v0-hmac-sha256=" + vectorHex, now, 0, dintero.ErrSignatureInvalid},
		{"signature not hex", vectorSecret, "GET", vectorURL, "t=1582236537,v0-hmac-sha256=zz" + vectorHex[2:], now, 0, dintero.ErrSignatureInvalid},
		{"signature short", vectorSecret, "GET", vectorURL, "t=1582236537,v0-hmac-sha256=" + vectorHex[:62], now, 0, dintero.ErrSignatureInvalid},
		{"entry without =", vectorSecret, "GET", vectorURL, "t=1582236537,v0-hmac-sha256", now, 0, dintero.ErrSignatureInvalid},
		{"garbage", vectorSecret, "GET", vectorURL, "Bearer abc", now, 0, dintero.ErrSignatureInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := dintero.VerifyCallbackURL([]byte(tt.secret), vectorAccount, tt.method, mustURL(t, tt.url), tt.header, tt.now, tt.tol)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			for _, other := range []error{dintero.ErrSignatureMissing, dintero.ErrSignatureInvalid, dintero.ErrSignatureExpired} {
				if !errors.Is(other, tt.wantErr) && errors.Is(err, other) {
					t.Errorf("err %v also matches %v", err, other)
				}
			}
			if strings.Contains(err.Error(), tt.secret) && len(tt.secret) > 3 {
				t.Errorf("error names the secret: %v", err)
			}
		})
	}
}

// unsortedVectorHex is HMAC-SHA256 with key "123" of the vector's payload
// with the query left in the URL's order, "...\n/callback\nB=123&A=992"
// (computed with openssl). Dintero signs the sorted query, so a signature
// over the unsorted one must be refused.
const unsortedVectorHex = "14751103071159adc7aafc1c83d88e87665953dd149f9d3b58433f5f2d20f85e"

func TestVerifyCallbackRequest(t *testing.T) {
	secret := []byte("s3cret")
	now := time.Now()
	sign := func(method, target string) string {
		return dintero.SignCallback(secret, "T12345678", method, mustURL(t, target), now)
	}
	tests := []struct {
		name    string
		method  string
		target  string // what the server receives
		signed  string // what was signed
		wantErr error
	}{
		{"get", "GET", "http://127.0.0.1:8080/cb?transaction_id=T1.x&session_id=T1.y", "http://127.0.0.1:9999/cb?session_id=T1.y&transaction_id=T1.x", nil},
		{"post", "POST", "http://cb.example/cb/path?method=POST&merchant_reference=order+1", "https://cb.example/cb/path?method=POST&merchant_reference=order%201", nil},
		{"space as %20 and as + are the same", "GET", "http://h/cb?time=a%20b", "http://h/cb?time=a+b", nil},
		{"plus sign is not a space", "GET", "http://h/cb?v=a%2Bb", "http://h/cb?v=a+b", dintero.ErrSignatureInvalid},
		{"escaped path", "GET", "http://h/a%2Fb?x=1", "http://h/a%2Fb?x=1", nil},
		{"path differs", "GET", "http://h/a/b?x=1", "http://h/a%2Fb?x=1", dintero.ErrSignatureInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, nil)
			r.Header.Set(dintero.SignatureHeader, sign(tt.method, tt.signed))
			err := dintero.VerifyCallback(r, secret, "T12345678", time.Time{}, 0)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
	t.Run("wrong account", func(t *testing.T) {
		r := httptest.NewRequest("GET", "http://h/cb?x=1", nil)
		r.Header.Set(dintero.SignatureHeader, sign("GET", "http://h/cb?x=1"))
		if err := dintero.VerifyCallback(r, secret, "T87654321", now, 0); !errors.Is(err, dintero.ErrSignatureInvalid) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("no header", func(t *testing.T) {
		r := httptest.NewRequest("GET", "http://h/cb?x=1", nil)
		if err := dintero.VerifyCallback(r, secret, "T12345678", now, 0); !errors.Is(err, dintero.ErrSignatureMissing) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestSignVerifyRoundTrip signs a callback URL the way a sender does and
// verifies it on a real HTTP server the way a receiver does.
func TestSignVerifyRoundTrip(t *testing.T) {
	secret := []byte("round-trip")
	got := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- dintero.VerifyCallback(r, secret, "T12345678", time.Time{}, 0)
	}))
	defer srv.Close()
	q := url.Values{
		"transaction_id":     {"T12345678.abc"},
		"merchant_reference": {"order 42 / ünïcode & more"},
		"time":               {"2026-11-25T15:00:00Z"},
		"session_id":         {"T12345678.def"},
	}
	u := mustURL(t, srv.URL+"/dintero/callback?method=GET&"+q.Encode())
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(dintero.SignatureHeader, dintero.SignCallback(secret, "T12345678", http.MethodGet, u, time.Now()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := <-got; err != nil {
		t.Fatalf("round trip: %v", err)
	}
}

// TestSignCallbackPayload checks the signed payload against an HMAC made
// here from the payload written out by hand, for the rules of
// URLSearchParams.sort().toString().
func TestSignCallbackPayload(t *testing.T) {
	secret := []byte("k")
	at := time.Unix(1700000000, 0)
	tests := []struct {
		name, url, host, path, query string
	}{
		{"no query", "https://h.example/cb", "h.example", "/cb", ""},
		{"empty path", "https://h.example?b=1", "h.example", "/", "b=1"},
		{"port dropped, host lowered", "http://H.Example:8080/cb?a=1", "h.example", "/cb", "a=1"},
		{"ipv6", "http://[::1]:8080/cb", "[::1]", "/cb", ""},
		{"stable sort of repeated keys", "https://h/cb?b=2&a=z&b=1&a=y", "h", "/cb", "a=z&a=y&b=2&b=1"},
		{"space as +", "https://h/cb?m=order%201&n=a+b", "h", "/cb", "m=order+1&n=a+b"},
		{"form encoding", "https://h/cb?x=a~b*c-d.e_f%2Fg%3D", "h", "/cb", "x=a%7Eb*c-d.e_f%2Fg%3D"},
		{"utf-8", "https://h/cb?n=%C3%BC", "h", "/cb", "n=%C3%BC"},
		{"key without value", "https://h/cb?flag&a=1", "h", "/cb", "a=1&flag="},
		{"empty pairs skipped", "https://h/cb?&&a=1&", "h", "/cb", "a=1"},
		{"lone percent kept", "https://h/cb?a=100%25&b=%zz", "h", "/cb", "a=100%25&b=%25zz"},
		{"escaped path kept", "https://h/a%20b/c", "h", "/a%20b/c", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.Parse(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			payload := "1700000000\nT12345678\nGET\n" + tt.host + "\n" + tt.path + "\n" + tt.query
			mac := hmac.New(sha256.New, secret)
			mac.Write([]byte(payload))
			want := "t=1700000000,v0-hmac-sha256=" + hex.EncodeToString(mac.Sum(nil))
			if got := dintero.SignCallback(secret, "T12345678", "GET", u, at); got != want {
				t.Errorf("SignCallback does not sign %q", payload)
			}
		})
	}
}
