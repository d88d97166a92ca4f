package dintero

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	return Config{AccountID: testAccount, ClientID: testClient, ClientSecret: testSecret}
}

func TestNewValidation(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(*Config)
		field string // "" = valid
	}{
		{"valid T account", func(*Config) {}, ""},
		{"valid P account", func(c *Config) { c.AccountID = "P00000001" }, ""},
		{"missing account", func(c *Config) { c.AccountID = "" }, "AccountID"},
		{"lowercase prefix", func(c *Config) { c.AccountID = "t12345678" }, "AccountID"},
		{"wrong prefix", func(c *Config) { c.AccountID = "X12345678" }, "AccountID"},
		{"seven digits", func(c *Config) { c.AccountID = "T1234567" }, "AccountID"},
		{"nine digits", func(c *Config) { c.AccountID = "T123456789" }, "AccountID"},
		{"partner id", func(c *Config) { c.AccountID = "T112" }, "AccountID"},
		{"leading space", func(c *Config) { c.AccountID = " T12345678" }, "AccountID"},
		{"trailing newline", func(c *Config) { c.AccountID = "T12345678\n" }, "AccountID"},
		{"missing client id", func(c *Config) { c.ClientID = "" }, "ClientID"},
		{"missing secret", func(c *Config) { c.ClientSecret = "" }, "ClientSecret"},
		{"api url scheme", func(c *Config) { c.APIURL = "ftp://checkout.dintero.com" }, "APIURL"},
		{"api url no host", func(c *Config) { c.APIURL = "https://" }, "APIURL"},
		{"api url garbage", func(c *Config) { c.APIURL = "::" }, "APIURL"},
		{"api url with query", func(c *Config) { c.APIURL = "https://x.example/?a=b" }, "APIURL"},
		{"auth url user info", func(c *Config) { c.AuthURL = "https://u:" + testSecret + "@x.example" }, "AuthURL"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "Timeout"},
		{"negative refresh", func(c *Config) { c.RefreshBefore = -time.Second }, "RefreshBefore"},
		{"negative initial", func(c *Config) { c.Retry.InitialInterval = -1 }, "Retry.InitialInterval"},
		{"negative max elapsed", func(c *Config) { c.Retry.MaxElapsedTime = -1 }, "Retry.MaxElapsedTime"},
		{"negative max retry after", func(c *Config) { c.Retry.MaxRetryAfter = -1 }, "Retry.MaxRetryAfter"},
		{"max below initial", func(c *Config) {
			c.Retry.InitialInterval = time.Second
			c.Retry.MaxInterval = time.Millisecond
		}, "Retry.MaxInterval"},
		{"negative attempts", func(c *Config) { c.Retry.MaxAttempts = -1 }, "Retry.MaxAttempts"},
		{"system name newline", func(c *Config) { c.SystemName = "a\r\nX-Evil: 1" }, "SystemName"},
		{"system version control", func(c *Config) { c.SystemVersion = "1\x00" }, "SystemVersion"},
		{"root CAs with a client", func(c *Config) {
			c.RootCAs = x509.NewCertPool()
			c.HTTPClient = &http.Client{}
		}, "RootCAs"},
		{"root CAs alone", func(c *Config) { c.RootCAs = x509.NewCertPool() }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.mod(&cfg)
			c, err := New(cfg)
			if tt.field == "" {
				if err != nil || c == nil {
					t.Fatalf("New = %v, %v; want a client", c, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New succeeded; want an error naming %s", tt.field)
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %v does not wrap ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.field+":") {
				t.Errorf("error %q does not name field %s", err, tt.field)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("error %q contains the client secret", err)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	c, err := New(validConfig())
	if err != nil {
		t.Fatal(err)
	}
	got := c.cfg
	want := map[string][2]any{
		"APIURL":                {got.APIURL, DefaultAPIURL},
		"AuthURL":               {got.AuthURL, DefaultAPIURL},
		"Timeout":               {got.Timeout, DefaultTimeout},
		"Retry.InitialInterval": {got.Retry.InitialInterval, DefaultInitialInterval},
		"Retry.MaxInterval":     {got.Retry.MaxInterval, DefaultMaxInterval},
		"Retry.MaxElapsedTime":  {got.Retry.MaxElapsedTime, DefaultMaxElapsedTime},
		"Retry.MaxRetryAfter":   {got.Retry.MaxRetryAfter, DefaultMaxRetryAfter},
		"Retry.MaxAttempts":     {got.Retry.MaxAttempts, DefaultMaxAttempts},
		"tokenURL":              {c.tokenURL, "https://checkout.dintero.com/v1/accounts/T12345678/auth/token"},
	}
	for name, v := range want {
		if v[0] != v[1] {
			t.Errorf("%s = %v; want %v", name, v[0], v[1])
		}
	}
	if c.http == nil || c.http.Timeout != 0 {
		t.Errorf("default HTTP client = %+v; want one without a global timeout", c.http)
	}

	c, err = New(Config{AccountID: testAccount, ClientID: "a", ClientSecret: "b",
		APIURL: "http://api.example/", AuthURL: "http://auth.example/base/"})
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.APIURL != "http://api.example" || c.tokenURL != "http://auth.example/base/v1/accounts/T12345678/auth/token" {
		t.Errorf("APIURL %q, tokenURL %q: trailing slashes not trimmed or AuthURL ignored", c.cfg.APIURL, c.tokenURL)
	}
}

func TestConfigRedaction(t *testing.T) {
	cfg := validConfig()
	cfg.Logger = slog.New(slog.DiscardHandler)
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("cfg", "config", cfg, "client", c)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("cfg", "config", cfg, "ptr", &cfg, "client", c)
	outputs := map[string]string{
		"%v":       fmt.Sprintf("%v", cfg),
		"%+v":      fmt.Sprintf("%+v", cfg),
		"%#v":      fmt.Sprintf("%#v", cfg),
		"%v ptr":   fmt.Sprintf("%v", &cfg),
		"%+v ptr":  fmt.Sprintf("%+v", &cfg),
		"String":   cfg.String(),
		"client":   fmt.Sprintf("%v %+v %s", c, c, c),
		"slogText": text.String(),
		"slogJSON": js.String(),
	}
	for name, out := range outputs {
		t.Run(name, func(t *testing.T) {
			if strings.Contains(out, testSecret) {
				t.Fatalf("output contains the secret: %s", out)
			}
			if name != "client" && !strings.Contains(out, "[REDACTED]") {
				t.Errorf("output lacks the redaction marker: %s", out)
			}
			if !strings.Contains(out, testAccount) {
				t.Errorf("output lacks the account id (over-redacted?): %s", out)
			}
		})
	}
}

func TestAccessTokenRedaction(t *testing.T) {
	at := AccessToken{AccessToken: "eyJ-very-secret-token", TokenType: "Bearer", ExpiresIn: 3600}
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("t", "token", at)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("t", "token", at, "ptr", &at)
	for name, out := range map[string]string{
		"fmt":  fmt.Sprintf("%v %+v %#v %s", at, at, at, &at),
		"text": text.String(),
		"json": js.String(),
	} {
		if strings.Contains(out, at.AccessToken) || !strings.Contains(out, "[REDACTED]") {
			t.Errorf("%s output not redacted: %s", name, out)
		}
	}
	b, err := json.Marshal(at)
	if err != nil || !strings.Contains(string(b), at.AccessToken) {
		t.Errorf("JSON encoding must keep the token (the sandbox serves it): %s, %v", b, err)
	}
}
