package dintero

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Defaults of the zero-valued Config and RetryConfig fields.
const (
	DefaultAPIURL          = "https://checkout.dintero.com"
	DefaultTimeout         = 30 * time.Second
	DefaultInitialInterval = 200 * time.Millisecond
	DefaultMaxInterval     = 5 * time.Second
	DefaultMaxElapsedTime  = 30 * time.Second
	DefaultMaxRetryAfter   = 30 * time.Second
	DefaultMaxAttempts     = 6

	// defaultMaxRefreshBefore caps the default RefreshBefore; the default is
	// min(5m, expires_in/2).
	defaultMaxRefreshBefore = 5 * time.Minute
)

// ErrInvalidConfig is wrapped by every error New returns for a bad Config.
var ErrInvalidConfig = errors.New("dintero: invalid config")

// accountIDPattern is Dintero's aid pattern: T (test) or P (production)
// followed by eight digits.
var accountIDPattern = regexp.MustCompile(`^[PT]\d{8}$`)

// Config configures a Client. The zero value of every optional field means
// the documented default.
type Config struct {
	// AccountID is the Dintero account, "T" (test) or "P" (production)
	// followed by eight digits. Required.
	AccountID string
	// ClientID is the API client id. Required.
	ClientID string
	// ClientSecret is the API client secret. Required. It is sent only as
	// HTTP Basic credentials to the token endpoint and never appears in an
	// error, a log line or the String/LogValue output of Config.
	ClientSecret string

	// APIURL is the Checkout API base URL. Default DefaultAPIURL.
	APIURL string
	// AuthURL is the base URL of the token endpoint
	// (/v1/accounts/{aid}/auth/token). Default APIURL.
	AuthURL string

	// SystemName and SystemVersion are sent as Dintero-System-Name and
	// Dintero-System-Version when set.
	SystemName    string
	SystemVersion string

	// Timeout bounds one HTTP attempt (connect, send, headers and body).
	// Default DefaultTimeout.
	Timeout time.Duration
	// HTTPClient is used for every request. Default: a client with a tuned
	// transport (1024 idle connections per host, 90 s idle timeout, HTTP/2)
	// and no global timeout, since every attempt carries its own deadline.
	HTTPClient *http.Client
	// RootCAs, when set, are the certificate authorities the default
	// client trusts for APIURL and AuthURL instead of the system's: for a
	// TLS-inspecting egress proxy or a test sandbox with its own CA. The
	// default transport keeps negotiating HTTP/2 over TLS with them (a
	// custom TLS config alone would turn it off). Nil: the system roots.
	// It cannot be combined with HTTPClient; configure that client's
	// transport instead.
	RootCAs *x509.CertPool
	// Retry bounds the retries of transient errors.
	Retry RetryConfig
	// RefreshBefore is how long before the access token expires a new one
	// is fetched. Default min(5m, expires_in/2); values above expires_in/2
	// are clamped to expires_in/2.
	RefreshBefore time.Duration
	// Logger receives debug lines per attempt and warnings on unknown
	// outcomes. Nil discards. Bodies, tokens and secrets are never logged.
	Logger *slog.Logger
	// Observe, when set, is called after every HTTP attempt with the
	// operation (OpAuth, OpPay, ...), the HTTP status (0 when no response
	// came) and how long the attempt took. It must be fast and safe for
	// concurrent use (a Prometheus histogram, say).
	Observe func(op string, status int, elapsed time.Duration)
	// Limiter, when set, is waited on before every HTTP attempt, so that
	// the calls of every process sharing an account stay under Dintero's
	// rate limit (package dintero/ratelimit shares one in Redis). An error
	// ends the call as a KindTransient error with nothing sent.
	Limiter Limiter
}

// A Limiter paces the calls to Dintero; op is the operation (OpPay, ...).
type Limiter interface {
	Wait(ctx context.Context, op string) error
}

// RetryConfig bounds the client's own retries of transient errors. A call
// is retried with exponential backoff and jitter until it succeeds, fails
// with a non-transient error, MaxAttempts attempts were made, or the next
// wait would end after MaxElapsedTime.
type RetryConfig struct {
	// InitialInterval is the first backoff wait. Default 200ms.
	InitialInterval time.Duration
	// MaxInterval caps a single backoff wait. Default 5s.
	MaxInterval time.Duration
	// MaxElapsedTime is the total budget of one call, retries included.
	// Default 30s.
	MaxElapsedTime time.Duration
	// MaxRetryAfter caps an honoured Retry-After. A longer Retry-After (or
	// one ending after MaxElapsedTime) ends the call with the transient
	// error instead of sleeping. Default 30s.
	MaxRetryAfter time.Duration
	// MaxAttempts is the number of attempts per call, the first included.
	// 1 disables retries. Default 6.
	MaxAttempts int
}

// String describes the config without the client secret.
func (c Config) String() string {
	return fmt.Sprintf("dintero.Config{AccountID:%q ClientID:%q ClientSecret:%s APIURL:%q AuthURL:%q SystemName:%q SystemVersion:%q Timeout:%s RefreshBefore:%s Retry:%+v}",
		c.AccountID, c.ClientID, redactedMarker(c.ClientSecret), c.APIURL, c.AuthURL,
		c.SystemName, c.SystemVersion, c.Timeout, c.RefreshBefore, c.Retry)
}

// GoString is like String, so %#v does not print the secret either.
func (c Config) GoString() string { return c.String() }

// LogValue implements slog.LogValuer; the client secret is redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("account_id", c.AccountID),
		slog.String("client_id", c.ClientID),
		slog.String("client_secret", redactedMarker(c.ClientSecret)),
		slog.String("api_url", c.APIURL),
		slog.String("auth_url", c.AuthURL),
		slog.String("system_name", c.SystemName),
		slog.String("system_version", c.SystemVersion),
		slog.Duration("timeout", c.Timeout),
		slog.Duration("refresh_before", c.RefreshBefore),
		slog.Duration("retry_initial_interval", c.Retry.InitialInterval),
		slog.Duration("retry_max_interval", c.Retry.MaxInterval),
		slog.Duration("retry_max_elapsed_time", c.Retry.MaxElapsedTime),
		slog.Duration("retry_max_retry_after", c.Retry.MaxRetryAfter),
		slog.Int("retry_max_attempts", c.Retry.MaxAttempts),
	)
}

func redactedMarker(secret string) string {
	if secret == "" {
		return "[EMPTY]"
	}
	return "[REDACTED]"
}

// configError names the offending field; it never includes a secret value.
func configError(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...))
}

// setDefaults fills in the zero fields that have a default.
func (c *Config) setDefaults() {
	if c.APIURL == "" {
		c.APIURL = DefaultAPIURL
	}
	if c.AuthURL == "" {
		c.AuthURL = c.APIURL
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&c.Timeout, DefaultTimeout},
		{&c.Retry.InitialInterval, DefaultInitialInterval},
		{&c.Retry.MaxInterval, DefaultMaxInterval},
		{&c.Retry.MaxElapsedTime, DefaultMaxElapsedTime},
		{&c.Retry.MaxRetryAfter, DefaultMaxRetryAfter},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.Retry.MaxAttempts == 0 {
		c.Retry.MaxAttempts = DefaultMaxAttempts
	}
}

// Validate reports the first problem of a Config whose defaults are filled
// in (New does both); the error wraps ErrInvalidConfig, names the field and
// never shows a secret.
func (c Config) Validate() error {
	if c.AccountID == "" {
		return configError("AccountID", "required")
	}
	if !accountIDPattern.MatchString(c.AccountID) {
		return configError("AccountID", "%q does not match %s", c.AccountID, accountIDPattern)
	}
	if c.ClientID == "" {
		return configError("ClientID", "required")
	}
	if c.ClientSecret == "" {
		return configError("ClientSecret", "required")
	}
	if _, err := normalizeBaseURL(c.APIURL); err != nil {
		return configError("APIURL", "%v", err)
	}
	if _, err := normalizeBaseURL(c.AuthURL); err != nil {
		return configError("AuthURL", "%v", err)
	}
	if c.RootCAs != nil && c.HTTPClient != nil {
		return configError("RootCAs", "set together with HTTPClient: give that client's transport the roots instead")
	}
	if !validHeaderValue(c.SystemName) {
		return configError("SystemName", "contains control characters")
	}
	if !validHeaderValue(c.SystemVersion) {
		return configError("SystemVersion", "contains control characters")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"Timeout", c.Timeout},
		{"RefreshBefore", c.RefreshBefore},
		{"Retry.InitialInterval", c.Retry.InitialInterval},
		{"Retry.MaxInterval", c.Retry.MaxInterval},
		{"Retry.MaxElapsedTime", c.Retry.MaxElapsedTime},
		{"Retry.MaxRetryAfter", c.Retry.MaxRetryAfter},
	} {
		if d.v < 0 {
			return configError(d.name, "must not be negative (got %s)", d.v)
		}
	}
	if c.Retry.MaxInterval < c.Retry.InitialInterval {
		return configError("Retry.MaxInterval", "%s is below Retry.InitialInterval %s",
			c.Retry.MaxInterval, c.Retry.InitialInterval)
	}
	if c.Retry.MaxAttempts < 0 {
		return configError("Retry.MaxAttempts", "must not be negative (got %d)", c.Retry.MaxAttempts)
	}
	return nil
}

func normalizeBaseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// The parse error would echo the raw URL; it is not repeated here in
		// case it carries credentials.
		return "", errors.New("not a valid URL")
	}
	if u.User != nil {
		return "", errors.New("must not contain user info")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return "", fmt.Errorf("%q: missing host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q: must not have a query or fragment", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < 0x20 && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}
