// Package redisconn turns REDIS_URL and its companions into a go-redis
// client for payworker's idempotency store: a single server, a Sentinel set
// or a Redis Cluster, with the password from a Secret and optional TLS, and
// checks that Redis will not evict the store's records.
//
// REDIS_URL forms:
//
//	redis://[user:password@]host:port/db                 one server (redis.ParseURL)
//	rediss://...                                         the same over TLS
//	redis://[user:pw@]sentinel1:26379/0?master_name=payworker&addr=sentinel2:26379&addr=sentinel3:26379
//	                                                     Sentinel (redis.ParseFailoverURL): chosen by
//	                                                     master_name; the user information is the
//	                                                     Sentinels' own, the nodes' password is
//	                                                     REDIS_PASSWORD (or password=)
//	redis://[user:password@]node1:6379?addr=node2:6379&addr=node3:6379&cluster=true
//	                                                     Redis Cluster (redis.ParseClusterURL): chosen
//	                                                     by cluster=true; one or more seed nodes
//
// REDIS_PASSWORD or REDIS_PASSWORD_FILE sets the password of the Redis
// nodes, replacing one in the URL, so that manifests keep REDIS_URL in a
// ConfigMap and the password in a Secret; REDIS_SENTINEL_PASSWORD(_FILE)
// likewise for the Sentinels. REDIS_CA, REDIS_CERT and REDIS_KEY configure
// TLS (a CA to trust, a client certificate) and imply it.
package redisconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// DefaultURL is the Redis used when REDIS_URL is not set.
const DefaultURL = "redis://127.0.0.1:6379/0"

// The environment variables FromEnv reads.
const (
	EnvURL                  = "REDIS_URL"
	EnvPassword             = "REDIS_PASSWORD"
	EnvPasswordFile         = "REDIS_PASSWORD_FILE"
	EnvSentinelPassword     = "REDIS_SENTINEL_PASSWORD"
	EnvSentinelPasswordFile = "REDIS_SENTINEL_PASSWORD_FILE"
	EnvCA                   = "REDIS_CA"
	EnvCert                 = "REDIS_CERT"
	EnvKey                  = "REDIS_KEY"
	EnvAllowEviction        = "PAYWORKER_ALLOW_EVICTION"
)

// Mode is how the client reaches Redis.
type Mode int

const (
	Single   Mode = iota // one server
	Sentinel             // a primary found through Sentinels
	Cluster              // a Redis Cluster
)

func (m Mode) String() string {
	switch m {
	case Sentinel:
		return "sentinel"
	case Cluster:
		return "cluster"
	}
	return "single"
}

// Config are the Redis settings. The zero value connects to DefaultURL.
type Config struct {
	// URL is REDIS_URL in one of the forms of the package documentation.
	// Default DefaultURL.
	URL string
	// Password, when set, is the password of the Redis nodes, replacing
	// the one in URL (for Sentinel: the password= parameter).
	Password string
	// SentinelPassword, when set, is the Sentinels' password, replacing
	// the one in a Sentinel URL's user information.
	SentinelPassword string
	// CAFile is a PEM file of the CA(s) to trust; CertFile and KeyFile a
	// client certificate (both or neither). Any of them turns TLS on, as
	// does the rediss scheme.
	CAFile, CertFile, KeyFile string
	// AllowEviction lets CheckEviction pass an evicting maxmemory-policy.
	AllowEviction bool
}

// FromEnv reads the REDIS_* variables and PAYWORKER_ALLOW_EVICTION through
// getenv, reads the password files, and validates the result.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		URL:      strings.TrimSpace(getenv(EnvURL)),
		CAFile:   strings.TrimSpace(getenv(EnvCA)),
		CertFile: strings.TrimSpace(getenv(EnvCert)),
		KeyFile:  strings.TrimSpace(getenv(EnvKey)),
	}
	var err error
	if c.Password, err = secret(getenv, EnvPassword, EnvPasswordFile); err != nil {
		return Config{}, err
	}
	if c.SentinelPassword, err = secret(getenv, EnvSentinelPassword, EnvSentinelPasswordFile); err != nil {
		return Config{}, err
	}
	if v := strings.TrimSpace(getenv(EnvAllowEviction)); v != "" {
		if c.AllowEviction, err = strconv.ParseBool(v); err != nil {
			return Config{}, fmt.Errorf("%s: %q is not true or false", EnvAllowEviction, v)
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func secret(getenv func(string) string, name, fileVar string) (string, error) {
	v, file := getenv(name), strings.TrimSpace(getenv(fileVar))
	switch {
	case v != "" && file != "":
		return "", fmt.Errorf("%s and %s are both set: use one", name, fileVar)
	case file == "":
		return v, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: %w", fileVar, err)
	}
	s := strings.TrimRight(string(b), " \t\r\n")
	if s == "" {
		return "", fmt.Errorf("%s: %s is empty", fileVar, file)
	}
	return s, nil
}

func (c *Config) setDefaults() {
	if c.URL == "" {
		c.URL = DefaultURL
	}
}

// Mode reports which client the URL asks for: Sentinel when it has a
// master_name parameter, Cluster with cluster=true, else Single. A URL that
// does not parse is Single (Validate reports it).
func (c Config) Mode() Mode {
	c.setDefaults()
	u, err := url.Parse(c.URL)
	if err != nil {
		return Single
	}
	q := u.Query()
	switch {
	case q.Has("master_name"):
		return Sentinel
	case q.Has("cluster"):
		if ok, _ := strconv.ParseBool(q.Get("cluster")); ok {
			return Cluster
		}
	}
	return Single
}

// Validate parses the URL in its mode and checks the TLS files, naming the
// setting at fault without showing a password.
func (c Config) Validate() error {
	_, err := c.universalOptions(0)
	return err
}

// Redacted returns the URL with its passwords replaced, for logs.
func (c Config) Redacted() string {
	c.setDefaults()
	return RedactURL(c.URL)
}

// String describes the configuration without secrets.
func (c Config) String() string {
	s := c.Mode().String() + " " + c.Redacted()
	if c.Password != "" {
		s += " password=(set)"
	}
	if c.SentinelPassword != "" {
		s += " sentinel_password=(set)"
	}
	if c.CAFile != "" || c.CertFile != "" {
		s += " tls"
	}
	return s
}

// GoString is String, so that %#v shows no secret either.
func (c Config) GoString() string { return "redisconn.Config{" + c.String() + "}" }

// NewClient returns the client for c's mode: *redis.Client for one
// server, a failover *redis.Client for Sentinel, *redis.ClusterClient for
// a cluster. minPool is the pool size (per node) when the URL does not set
// pool_size: payworker passes its in-flight limit, so that concurrent
// requests do not queue for a connection. NewClient does not contact Redis.
func (c Config) NewClient(minPool int) (redis.UniversalClient, error) {
	o, err := c.universalOptions(minPool)
	if err != nil {
		return nil, err
	}
	switch c.Mode() {
	case Sentinel:
		return redis.NewFailoverClient(o.failover), nil
	case Cluster:
		return redis.NewClusterClient(o.cluster), nil
	}
	return redis.NewClient(o.single), nil
}

type options struct {
	single   *redis.Options
	failover *redis.FailoverOptions
	cluster  *redis.ClusterOptions
}

// universalOptions parses the URL in its mode and applies the password,
// TLS and pool settings.
func (c Config) universalOptions(minPool int) (options, error) {
	c.setDefaults()
	var o options
	tlsConf, err := c.tlsConfig()
	if err != nil {
		return o, err
	}
	// Errors show the URL without its query: a mistyped parameter name
	// (pasword=...) would otherwise show its value. go-redis's messages
	// name the parameter.
	shown := RedactURL(c.URL)
	if i := strings.IndexByte(shown, '?'); i >= 0 {
		shown = shown[:i] + "?..."
	}
	fail := func(err error) (options, error) {
		return options{}, fmt.Errorf("%s %s: %s", EnvURL, c.scrub(shown), c.scrub(err.Error()))
	}
	switch c.Mode() {
	case Sentinel:
		fo, err := redis.ParseFailoverURL(c.URL)
		if err != nil {
			return fail(err)
		}
		if fo.MasterName == "" {
			return fail(errors.New("master_name is empty"))
		}
		if c.Password != "" {
			fo.Password = c.Password
		}
		if c.SentinelPassword != "" {
			fo.SentinelPassword = c.SentinelPassword
		}
		fo.TLSConfig = mergeTLS(fo.TLSConfig, tlsConf)
		if fo.PoolSize == 0 {
			fo.PoolSize = minPool
		}
		o.failover = fo
	case Cluster:
		u, _ := url.Parse(c.URL) // Mode parsed it already
		q := u.Query()
		q.Del("cluster")
		u.RawQuery = q.Encode()
		if u.Path != "" && u.Path != "/" && u.Path != "/0" {
			return fail(errors.New("a Redis Cluster has only database 0"))
		}
		u.Path = ""
		co, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return fail(err)
		}
		if c.Password != "" {
			co.Password = c.Password
		}
		co.TLSConfig = mergeTLS(co.TLSConfig, tlsConf)
		if co.PoolSize == 0 {
			co.PoolSize = minPool
		}
		o.cluster = co
	default:
		raw := c.URL
		if u, err := url.Parse(raw); err == nil && u.Query().Has("cluster") {
			q := u.Query() // cluster=false: not a cluster, and not an option of ParseURL
			q.Del("cluster")
			u.RawQuery = q.Encode()
			raw = u.String()
		}
		so, err := redis.ParseURL(raw)
		if err != nil {
			return fail(err)
		}
		if c.Password != "" {
			so.Password = c.Password
		}
		so.TLSConfig = mergeTLS(so.TLSConfig, tlsConf)
		if so.PoolSize == 0 {
			so.PoolSize = minPool
		}
		o.single = so
	}
	return o, nil
}

// tlsConfig loads REDIS_CA and REDIS_CERT/REDIS_KEY; nil when none is set.
func (c Config) tlsConfig() (*tls.Config, error) {
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, fmt.Errorf("%s and %s go together: set both for a client certificate, or neither", EnvCert, EnvKey)
	}
	if c.CAFile == "" && c.CertFile == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvCA, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate in %s", EnvCA, c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", EnvCert, EnvKey, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// mergeTLS combines the URL's TLS settings (rediss: server name,
// skip_verify) with the files'.
func mergeTLS(fromURL, files *tls.Config) *tls.Config {
	switch {
	case files == nil:
		return fromURL
	case fromURL == nil:
		return files
	}
	files.ServerName = fromURL.ServerName
	files.InsecureSkipVerify = fromURL.InsecureSkipVerify
	return files
}

// scrub removes c's passwords from a message (go-redis's parse errors can
// quote query parameters), and the password of any URL in it (a URL that
// does not parse still has one).
func (c Config) scrub(msg string) string {
	for _, s := range c.secrets() {
		msg = strings.ReplaceAll(msg, s, redacted)
	}
	return userinfo.ReplaceAllString(msg, "${1}"+redacted+"@")
}

// userinfo matches the user information of a URL in a message: its
// password, after the colon, is replaced.
var userinfo = regexp.MustCompile(`(://[^:/@\s"]*:)[^@\s"/]*@`)

func (c Config) secrets() []string {
	var out []string
	add := func(s string) {
		if s != "" {
			out = append(out, s, url.QueryEscape(s), url.PathEscape(s))
		}
	}
	add(c.Password)
	add(c.SentinelPassword)
	if u, err := url.Parse(c.URL); err == nil {
		if u.User != nil {
			p, _ := u.User.Password()
			add(p)
		}
		add(u.Query().Get("password"))
		add(u.Query().Get("sentinel_password"))
	}
	return out
}

// Redact returns err with c's passwords replaced in its message; errors.Is
// and errors.As still see the original chain.
func (c Config) Redact(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := c.scrub(msg); clean != msg {
		return &redactedError{msg: clean, err: err}
	}
	return err
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

const redacted = "xxxxx"

// RedactURL returns raw with the password of its user information and its
// password parameters replaced. A string that does not parse as a URL is
// cut to its scheme and host part after the last '@'.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.LastIndex(raw, "@"); i >= 0 {
			if j := strings.Index(raw, "://"); j >= 0 && j < i {
				return raw[:j+3] + redacted + raw[i:]
			}
			return redacted + raw[i:]
		}
		return raw
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), redacted)
		}
	}
	q := u.Query()
	changed := false
	for _, k := range []string{"password", "sentinel_password"} {
		if q.Has(k) {
			q.Set(k, redacted)
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.String()
}
