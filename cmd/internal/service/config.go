package service

import (
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lmittmann/tint"

	"github.com/payworker/payworker/cmd/internal/natsconn"
	"github.com/payworker/payworker/cmd/internal/redisconn"
	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/worker"
)

// config is everything payworker reads at start. Each field comes from an
// environment variable, and a flag of the same meaning overrides it.
type Config struct {
	NATSURL             string
	RedisURL            string
	NATS                natsconn.Config  // NATS_URL and the NATS_* credentials and TLS
	Redis               redisconn.Config // REDIS_URL and the REDIS_* password and TLS
	DinteroAccountID    string
	DinteroClientID     string
	DinteroClientSecret string
	DinteroAPIURL       string
	DinteroAuthURL      string
	DinteroCA           string         // DINTERO_CA: a PEM file of CAs to trust for Dintero
	DinteroRoots        *x509.CertPool // its certificates; nil: the system roots
	DinteroTimeout      time.Duration
	CallbackSecret      string
	CallbackURL         string
	MaxInFlight         int
	HTTPAddr            string
	CallbackAddr        string
	StreamReplicas      int
	ResolveSchedule     []time.Duration
	TokenKey            string
	TokenLimits         []idempotency.TokenLimit // nil: the defaults; empty: off
	TokenQuarantine     bool
	Dunning             bool
	DinteroRate         int  // requests per second shared by the pods; 0: off
	Tracing             bool // OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT) set
	DunningSchedule     []time.Duration
	Namespace           string // PAYWORKER_NAMESPACE: "" is the default deployment
	Consumer            string
	AckWait             time.Duration
	MaxDeliver          int
	ShutdownGrace       time.Duration
	SkipSetup           bool
	IdempotencyPrefix   string
	IdempotencyTTL      time.Duration
	LogLevel            string
	LogFormat           string
	PProf               bool
}

var accountID = regexp.MustCompile(`^[PT]\d{8}$`)

// setting binds one config field to its environment variable and flag.
type setting struct {
	env, flag, def, usage string
	secret                bool
	set                   func(string) error
}

func settings(c *Config) []setting {
	str := func(p *string) func(string) error { return func(v string) error { *p = v; return nil } }
	dur := func(p *time.Duration) func(string) error {
		return func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return fmt.Errorf("want a positive duration such as 30s, got %q", v)
			}
			*p = d
			return nil
		}
	}
	num := func(p *int) func(string) error {
		return func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return fmt.Errorf("want a positive integer, got %q", v)
			}
			*p = n
			return nil
		}
	}
	boolean := func(p *bool) func(string) error {
		return func(v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("want true or false, got %q", v)
			}
			*p = b
			return nil
		}
	}
	return []setting{
		{env: "NATS_URL", flag: "nats-url", def: "nats://127.0.0.1:4222", usage: "NATS server URL(s), comma-separated; credentials and TLS from NATS_CREDS, NATS_NKEY, NATS_USER + NATS_PASSWORD(_FILE), NATS_TOKEN(_FILE), NATS_CA, NATS_CERT + NATS_KEY", set: str(&c.NATSURL)},
		{env: "REDIS_URL", flag: "redis-url", def: "redis://127.0.0.1:6379/0", usage: "Redis of the idempotency store: one server, Sentinel (?master_name=...&addr=...) or Redis Cluster (?addr=...&cluster=true); password and TLS from REDIS_PASSWORD(_FILE), REDIS_SENTINEL_PASSWORD(_FILE), REDIS_CA, REDIS_CERT + REDIS_KEY; PAYWORKER_ALLOW_EVICTION=true runs on an evicting Redis", set: str(&c.RedisURL)},
		{env: "DINTERO_ACCOUNT_ID", flag: "dintero-account-id", usage: "Dintero account id, T or P followed by 8 digits (required)", set: str(&c.DinteroAccountID)},
		{env: "DINTERO_CLIENT_ID", flag: "dintero-client-id", usage: "Dintero API client id (required)", set: str(&c.DinteroClientID)},
		{env: "DINTERO_CLIENT_SECRET", flag: "dintero-client-secret", usage: "Dintero API client secret (required; prefer the environment)", secret: true, set: str(&c.DinteroClientSecret)},
		{env: "DINTERO_API_URL", flag: "dintero-api-url", def: "https://checkout.dintero.com", usage: "Dintero Checkout API base URL", set: str(&c.DinteroAPIURL)},
		{env: "DINTERO_AUTH_URL", flag: "dintero-auth-url", usage: "Dintero auth base URL (default: the API URL)", set: str(&c.DinteroAuthURL)},
		{env: "DINTERO_CA", flag: "dintero-ca", usage: "PEM file of the CA certificates to trust for DINTERO_API_URL and DINTERO_AUTH_URL instead of the system's (a TLS-inspecting egress proxy, a test sandbox); HTTP/2 stays on", set: func(v string) error {
			roots, err := loadRoots(v)
			c.DinteroCA, c.DinteroRoots = v, roots
			return err
		}},
		{env: "DINTERO_CALLBACK_SECRET", flag: "dintero-callback-secret", usage: "secret of Dintero-Signature on callbacks; enables " + worker.CallbackPath + " (prefer the environment)", secret: true, set: str(&c.CallbackSecret)},
		{env: "PAYWORKER_CALLBACK_URL", flag: "callback-url", usage: "public URL of " + worker.CallbackPath + "; when set, session requests are sent with this callback_url", set: str(&c.CallbackURL)},
		{env: "DINTERO_TIMEOUT", flag: "dintero-timeout", def: "20s", usage: "timeout of one Dintero HTTP call (at least 5s shorter than PAYWORKER_SHUTDOWN_GRACE)", set: dur(&c.DinteroTimeout)},
		{env: "PAYWORKER_MAX_IN_FLIGHT", flag: "max-in-flight", def: "256", usage: "calls to Dintero at once from this process (it holds a quarter more requests)", set: num(&c.MaxInFlight)},
		{env: "PAYWORKER_HTTP_ADDR", flag: "http-addr", def: ":8080", usage: "address of /metrics, /healthz, /readyz (and pprof when on)", set: str(&c.HTTPAddr)},
		{env: "PAYWORKER_CALLBACK_ADDR", flag: "callback-addr", def: ":8081", usage: "address of " + worker.CallbackPath + " alone (when DINTERO_CALLBACK_SECRET is set)", set: str(&c.CallbackAddr)},
		{env: "PAYWORKER_NAMESPACE", flag: "namespace", usage: "keeps this deployment apart from others on the same NATS account and Redis: prefixes its subjects (<ns>.payments.charge.request), streams and bucket (<NS>_PAYMENT_REQUESTS) and default Redis prefix (payworker:<ns>:idem:); a-z, 0-9, _ and -, at most 32; publishers must use it too", set: func(v string) error {
			if err := messages.ValidateNamespace(v); err != nil {
				return err
			}
			c.Namespace = v
			return nil
		}},
		{env: "PAYWORKER_CONSUMER", flag: "consumer", def: "payworker", usage: "durable JetStream consumer shared by all pods", set: str(&c.Consumer)},
		{env: "PAYWORKER_ACK_WAIT", flag: "ack-wait", def: "30s", usage: "JetStream AckWait of the consumer", set: dur(&c.AckWait)},
		{env: "PAYWORKER_MAX_DELIVER", flag: "max-deliver", def: "20", usage: "deliveries before a request is dead-lettered as failed", set: num(&c.MaxDeliver)},
		{env: "PAYWORKER_SHUTDOWN_GRACE", flag: "shutdown-grace", def: "30s", usage: "time in-flight charges get to finish on SIGTERM (at least DINTERO_TIMEOUT + 5s)", set: dur(&c.ShutdownGrace)},
		{env: "PAYWORKER_SKIP_SETUP", flag: "skip-setup", def: "false", usage: "do not create the missing streams and consumer (their settings are still checked)", set: boolean(&c.SkipSetup)},
		{env: "PAYWORKER_RESOLVE_SCHEDULE", flag: "resolve-schedule", def: "1m,5m,15m,1h,6h,24h*7", usage: "waits before each lookup of a charge (or session request) whose outcome is unknown; a*n repeats a n times", set: func(v string) error {
			d, err := worker.ParseSchedule(v)
			c.ResolveSchedule = d
			return err
		}},
		{env: "PAYWORKER_TOKEN_KEY", flag: "token-key", usage: "key of the hash that names card tokens in Redis, the same for every pod (prefer the environment or PAYWORKER_TOKEN_KEY_FILE; default derived from DINTERO_ACCOUNT_ID)", secret: true, set: str(&c.TokenKey)},
		{env: "PAYWORKER_TOKEN_KEY_FILE", flag: "token-key-file", usage: "file holding PAYWORKER_TOKEN_KEY", set: func(v string) error {
			b, err := os.ReadFile(v)
			if err != nil {
				return fmt.Errorf("cannot read it: %w", err)
			}
			c.TokenKey = strings.TrimSpace(string(b))
			return nil
		}},
		{env: "PAYWORKER_TOKEN_LIMITS", flag: "token-limits", def: "24h=10,720h=15", usage: "declined attempts allowed per card token in rolling windows, or off", set: func(v string) error {
			l, err := parseTokenLimits(v)
			c.TokenLimits = l
			return err
		}},
		{env: "PAYWORKER_TOKEN_QUARANTINE", flag: "token-quarantine", def: "true", usage: "block a card token declined with DO_NOT_RETRY or a decline no retry can fix", set: boolean(&c.TokenQuarantine)},
		{env: "PAYWORKER_DUNNING", flag: "dunning", def: "true", usage: "retry soft declines of requests that ask for it (Payworker-Retry-Until)", set: boolean(&c.Dunning)},
		{env: "PAYWORKER_DUNNING_SCHEDULE", flag: "dunning-schedule", def: "24h,48h*3", usage: "waits before each further attempt when Dintero gives no retry_after (days 1, 3, 5, 7)", set: func(v string) error {
			d, err := worker.ParseSchedule(v)
			c.DunningSchedule = d
			return err
		}},
		{env: "PAYWORKER_DINTERO_RATE", flag: "dintero-rate", def: "off", usage: "requests per second to Dintero shared by every pod through Redis, e.g. 100/s, or off", set: func(v string) error {
			if v == "off" {
				c.DinteroRate = 0
				return nil
			}
			n, err := strconv.Atoi(strings.TrimSuffix(v, "/s"))
			if err != nil || n < 1 {
				return fmt.Errorf("want a rate such as 100/s, or off; got %q", v)
			}
			c.DinteroRate = n
			return nil
		}},
		{env: "PAYWORKER_STREAM_REPLICAS", flag: "stream-replicas", def: "1", usage: "replicas of the streams, bucket and consumer payworker creates: 1, 3 or 5", set: num(&c.StreamReplicas)},
		{env: "PAYWORKER_IDEMPOTENCY_PREFIX", flag: "idempotency-prefix", def: idempotency.DefaultPrefix, usage: "Redis key prefix of idempotency records, card tokens and the rate limit (default payworker:<ns>:idem: with PAYWORKER_NAMESPACE)", set: str(&c.IdempotencyPrefix)},
		{env: "PAYWORKER_IDEMPOTENCY_RETENTION", flag: "idempotency-retention", def: "720h", usage: "how long a completed record is kept", set: dur(&c.IdempotencyTTL)},
		{env: "LOG_LEVEL", flag: "log-level", def: "info", usage: "debug, info, warn or error", set: str(&c.LogLevel)},
		{env: "LOG_FORMAT", flag: "log-format", def: "auto", usage: "text (tint), json, or auto (text on a terminal)", set: str(&c.LogFormat)},
		{env: "PAYWORKER_PPROF", flag: "pprof", def: "false", usage: "serve net/http/pprof under /debug/pprof/ on the HTTP address (for profiling; keep off in production)", set: boolean(&c.PProf)},
	}
}

// connectionVariables are the variables natsconn and redisconn read besides
// NATS_URL and REDIS_URL (credentials, TLS, the eviction override): from
// the environment only, with no flag.
func connectionVariables() []string {
	return []string{
		natsconn.EnvCreds, natsconn.EnvNKey, natsconn.EnvUser, natsconn.EnvPassword, natsconn.EnvPasswordFile,
		natsconn.EnvToken, natsconn.EnvTokenFile, natsconn.EnvCA, natsconn.EnvCert, natsconn.EnvKey,
		redisconn.EnvPassword, redisconn.EnvPasswordFile, redisconn.EnvSentinelPassword, redisconn.EnvSentinelPasswordFile,
		redisconn.EnvCA, redisconn.EnvCert, redisconn.EnvKey, redisconn.EnvAllowEviction,
	}
}

// loadConfig reads the environment, then the flags in args. It returns one
// error naming the first setting that is wrong or missing.
func LoadConfig(args []string, getenv func(string) string, stderr io.Writer) (*Config, error) {
	c := &Config{}
	all := settings(c)
	fs := flag.NewFlagSet("payworker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flagged := map[string]*string{}
	for _, s := range all {
		usage := s.usage + " (env " + s.env + ")"
		flagged[s.flag] = fs.String(s.flag, "", usage)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: payworker [flags]   run the worker\n       payworker version   print the version\n\nEvery flag has an environment variable; the flag wins.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (see payworker -h)", fs.Arg(0))
	}
	given := map[string]bool{} // set by the environment or a flag
	for _, s := range all {
		v, from := s.def, ""
		if e := strings.TrimSpace(getenv(s.env)); e != "" {
			v, from = e, s.env
		}
		if f := *flagged[s.flag]; f != "" {
			v, from = f, "-"+s.flag
		}
		if v == "" {
			continue
		}
		given[s.env] = from != ""
		if err := s.set(v); err != nil {
			if s.secret {
				err = errors.New("invalid value")
			}
			return nil, fmt.Errorf("%s: %w", nameOf(s, from), err)
		}
	}
	if !given["PAYWORKER_IDEMPOTENCY_PREFIX"] {
		c.IdempotencyPrefix = idempotency.NamespacePrefix(c.Namespace)
	}
	for _, req := range []struct {
		v string
		s string
	}{{c.DinteroAccountID, "DINTERO_ACCOUNT_ID"}, {c.DinteroClientID, "DINTERO_CLIENT_ID"}, {c.DinteroClientSecret, "DINTERO_CLIENT_SECRET"}} {
		if req.v == "" {
			return nil, fmt.Errorf("%s is not set: it is required", req.s)
		}
	}
	if !accountID.MatchString(c.DinteroAccountID) {
		return nil, fmt.Errorf("DINTERO_ACCOUNT_ID: want T or P followed by 8 digits, got %q", c.DinteroAccountID)
	}
	for _, u := range []struct{ v, name string }{{c.DinteroAPIURL, "DINTERO_API_URL"}, {c.DinteroAuthURL, "DINTERO_AUTH_URL"}, {c.CallbackURL, "PAYWORKER_CALLBACK_URL"}} {
		if u.v == "" {
			continue
		}
		for _, one := range strings.Split(u.v, ",") {
			if p, err := url.Parse(strings.TrimSpace(one)); err != nil || p.Scheme == "" || p.Host == "" {
				return nil, fmt.Errorf("%s: want an absolute URL, got %q", u.name, redactURL(one))
			}
		}
	}
	// NATS and Redis: the URLs as set above (a flag wins), the rest of
	// their settings from the environment only (secrets belong in files).
	withURL := func(name, v string) func(string) string {
		return func(k string) string {
			if k == name {
				return v
			}
			return getenv(k)
		}
	}
	var err error
	if c.NATS, err = natsconn.FromEnv(withURL(natsconn.EnvURL, c.NATSURL)); err != nil {
		return nil, err
	}
	if c.Redis, err = redisconn.FromEnv(withURL(redisconn.EnvURL, c.RedisURL)); err != nil {
		return nil, err
	}
	if c.ShutdownGrace < c.DinteroTimeout+5*time.Second {
		return nil, fmt.Errorf("PAYWORKER_SHUTDOWN_GRACE (%s) must be at least DINTERO_TIMEOUT (%s) + 5s, so that a call to Dintero started before SIGTERM can finish",
			c.ShutdownGrace, c.DinteroTimeout)
	}
	switch c.StreamReplicas {
	case 1, 3, 5:
	default:
		return nil, fmt.Errorf("PAYWORKER_STREAM_REPLICAS: want 1, 3 or 5, got %d", c.StreamReplicas)
	}
	c.Tracing = tracingOn(getenv)
	if _, err := parseLevel(c.LogLevel); err != nil {
		return nil, fmt.Errorf("LOG_LEVEL: %w", err)
	}
	switch c.LogFormat {
	case "auto", "text", "json":
	default:
		return nil, fmt.Errorf("LOG_FORMAT: want text, json or auto, got %q", c.LogFormat)
	}
	return c, nil
}

func nameOf(s setting, from string) string {
	if from == "" || from == s.env {
		return s.env
	}
	return from + " (" + s.env + ")"
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("want debug, info, warn or error, got %q", s)
	}
	return l, nil
}

// parseTokenLimits reads "24h=10,720h=15" (at most 10 declines in any 24
// hours and 15 in any 720) or "off" (none).
func parseTokenLimits(v string) ([]idempotency.TokenLimit, error) {
	if v == "off" {
		return []idempotency.TokenLimit{}, nil
	}
	var out []idempotency.TokenLimit
	for _, part := range strings.Split(v, ",") {
		w, n, ok := strings.Cut(strings.TrimSpace(part), "=")
		d, err := time.ParseDuration(w)
		m, err2 := strconv.Atoi(n)
		if !ok || err != nil || err2 != nil || d < time.Minute || m < 1 {
			return nil, fmt.Errorf("want windows and counts such as 24h=10,720h=15, or off; got %q", part)
		}
		out = append(out, idempotency.TokenLimit{Window: d, Max: m})
	}
	return out, nil
}

// loadRoots reads a PEM file of CA certificates into a pool.
func loadRoots(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read it: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("no PEM certificate in %s", path)
	}
	return roots, nil
}

// tokenKey is the governor's hash key: PAYWORKER_TOKEN_KEY, or one derived
// from the account (stable, shared by the pods, but not secret).
func (c *Config) tokenKey() []byte {
	if c.TokenKey != "" {
		return []byte(c.TokenKey)
	}
	return worker.DerivedTokenKey(c.DinteroAccountID)
}

// NewLogger builds the process logger: tint for people, JSON for machines.
// Every line carries service and version; the key of an error is always
// "err", and durations are Go strings ("1.5s"), not nanoseconds.
func NewLogger(w *os.File, level, format string) *slog.Logger {
	l, _ := parseLevel(level)
	if format == "auto" {
		format = "json"
		if fi, err := w.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			format = "text"
		}
	}
	var h slog.Handler
	if format == "text" {
		fi, err := w.Stat()
		noColor := err != nil || fi.Mode()&os.ModeCharDevice == 0
		h = tint.NewTextHandler(w, &tint.Options{Level: l, TimeFormat: time.TimeOnly, NoColor: noColor})
	} else {
		h = slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l, ReplaceAttr: durationsAsStrings})
	}
	return slog.New(h).With("service", "payworker", "version", Version())
}

// durationsAsStrings writes time.Duration values as "1.5s".
func durationsAsStrings(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}
