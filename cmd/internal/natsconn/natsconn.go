// Package natsconn turns the NATS settings of payworker and payctl (from the
// environment or from flags) into nats.go options: several servers, one way
// to authenticate (a credentials file, an NKey seed file, user and password,
// or a token) and TLS with a custom CA and a client certificate.
//
// Secrets are preferably read from files (NATS_CREDS, NATS_NKEY,
// NATS_PASSWORD_FILE, NATS_TOKEN_FILE) so that deployments keep them in
// mounted Secrets. No error of this package and no String method prints a
// password, a token or a seed; URLs are shown with their user information
// redacted.
//
// Use from the environment:
//
//	cfg, err := natsconn.FromEnv(os.Getenv)
//	nc, err := cfg.Connect(nats.Name("payworker"), nats.MaxReconnects(-1))
//	err = natsconn.CheckServerVersion(nc, "2.12", "payworker", "message schedules")
//
// Use with flags (payctl): FromEnv for the defaults, then
// [Config.RegisterFlags], flag parsing and [Config.Validate].
package natsconn

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
)

// DefaultURL is the server used when no URL is configured.
const DefaultURL = "nats://127.0.0.1:4222"

// The environment variables FromEnv reads.
const (
	EnvURL          = "NATS_URL"           // server URLs, comma-separated
	EnvCreds        = "NATS_CREDS"         // a .creds file (user JWT and NKey seed)
	EnvNKey         = "NATS_NKEY"          // an NKey seed file
	EnvUser         = "NATS_USER"          // user name
	EnvPassword     = "NATS_PASSWORD"      // password (prefer NATS_PASSWORD_FILE)
	EnvPasswordFile = "NATS_PASSWORD_FILE" // file holding the password
	EnvToken        = "NATS_TOKEN"         // token (prefer NATS_TOKEN_FILE)
	EnvTokenFile    = "NATS_TOKEN_FILE"    // file holding the token
	EnvCA           = "NATS_CA"            // PEM file of the CA(s) that signed the servers' certificates
	EnvCert         = "NATS_CERT"          // client certificate (PEM) for mutual TLS
	EnvKey          = "NATS_KEY"           // the client certificate's private key (PEM)
)

// Config are the settings of one NATS connection. The zero value connects
// to DefaultURL without authentication and without TLS.
//
// At most one way to authenticate may be set: CredsFile, NKeyFile,
// User (with Password), Token, or user information inside the URLs.
type Config struct {
	// URLs are the servers, tried in random order and kept up to date from
	// the cluster's gossip. Default: []string{DefaultURL}. An entry
	// without a scheme gets nats://.
	URLs []string
	// CredsFile is a .creds file: a user JWT and its NKey seed (operator
	// mode, decentralised auth).
	CredsFile string
	// NKeyFile holds an NKey user seed (SU...).
	NKeyFile string
	// User and Password authenticate with a user name and password.
	User     string
	Password string
	// Token authenticates with a token.
	Token string
	// CAFile is a PEM file of the CA(s) to trust for the servers'
	// certificates. Setting it turns TLS on.
	CAFile string
	// CertFile and KeyFile are the client certificate and key for mutual
	// TLS; both or neither. Setting them turns TLS on.
	CertFile string
	KeyFile  string

	// flagAuth is set once an authentication flag was parsed: the first
	// one clears the authentication that came from the environment.
	flagAuth bool
}

// FromEnv reads the NATS_* variables through getenv (os.Getenv in
// programs, a map lookup in tests), reads the secret files it names, and
// validates the result. Setting both NATS_PASSWORD and NATS_PASSWORD_FILE
// (or NATS_TOKEN and NATS_TOKEN_FILE) is an error.
func FromEnv(getenv func(string) string) (Config, error) {
	var c Config
	if v := strings.TrimSpace(getenv(EnvURL)); v != "" {
		c.URLs = splitURLs(v)
	}
	c.CredsFile = strings.TrimSpace(getenv(EnvCreds))
	c.NKeyFile = strings.TrimSpace(getenv(EnvNKey))
	c.User = getenv(EnvUser)
	c.CAFile = strings.TrimSpace(getenv(EnvCA))
	c.CertFile = strings.TrimSpace(getenv(EnvCert))
	c.KeyFile = strings.TrimSpace(getenv(EnvKey))
	var err error
	if c.Password, err = secret(getenv, EnvPassword, EnvPasswordFile); err != nil {
		return Config{}, err
	}
	if c.Token, err = secret(getenv, EnvToken, EnvTokenFile); err != nil {
		return Config{}, err
	}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// secret returns the value of the variable name, or the content of the
// file named by fileVar (without trailing white space).
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

func splitURLs(s string) []string {
	var out []string
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// setDefaults fills in DefaultURL and the nats:// scheme. It never writes
// into the caller's slice: Config is copied by value.
func (c *Config) setDefaults() {
	if len(c.URLs) == 0 {
		c.URLs = []string{DefaultURL}
		return
	}
	for i, u := range c.URLs {
		if !strings.Contains(u, "://") {
			urls := append([]string(nil), c.URLs...)
			for j := i; j < len(urls); j++ {
				if !strings.Contains(urls[j], "://") {
					urls[j] = "nats://" + urls[j]
				}
			}
			c.URLs = urls
			return
		}
	}
}

// Validate reports the first setting that cannot work: a malformed URL, two
// ways to authenticate, a password without a user, half a client
// certificate, or a file that cannot be read. It names the setting, never
// its secret value.
func (c *Config) Validate() error {
	c.setDefaults()
	urlAuth := false
	for _, raw := range c.URLs {
		u, err := url.Parse(raw)
		if err != nil {
			return fmt.Errorf("%s: %q is not a URL", EnvURL, RedactURL(raw))
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return fmt.Errorf("%s: %q: scheme must be nats, tls, ws or wss", EnvURL, RedactURL(raw))
		}
		if u.Hostname() == "" {
			return fmt.Errorf("%s: %q has no host", EnvURL, RedactURL(raw))
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
				return fmt.Errorf("%s: %q: bad port", EnvURL, RedactURL(raw))
			}
		}
		if u.User != nil {
			urlAuth = true
		}
	}
	if c.Password != "" && c.User == "" {
		return fmt.Errorf("%s is set but %s is not", EnvPassword, EnvUser)
	}
	var kinds []string
	for _, k := range []struct {
		set  bool
		name string
	}{
		{c.CredsFile != "", EnvCreds},
		{c.NKeyFile != "", EnvNKey},
		{c.User != "", EnvUser},
		{c.Token != "", EnvToken},
		{urlAuth, "user information in " + EnvURL},
	} {
		if k.set {
			kinds = append(kinds, k.name)
		}
	}
	if len(kinds) > 1 {
		return fmt.Errorf("NATS authentication: %s are set; use exactly one", strings.Join(kinds, " and "))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return fmt.Errorf("%s and %s go together: set both for mutual TLS, or neither", EnvCert, EnvKey)
	}
	for _, f := range []struct{ path, name string }{
		{c.CredsFile, EnvCreds}, {c.NKeyFile, EnvNKey}, {c.CAFile, EnvCA}, {c.CertFile, EnvCert}, {c.KeyFile, EnvKey},
	} {
		if f.path == "" {
			continue
		}
		fh, err := os.Open(f.path)
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		fh.Close()
	}
	return nil
}

// Servers returns the server URLs comma-separated, as nats.Connect takes
// them. They may carry user information: log [Config.Redacted] instead.
func (c Config) Servers() string {
	c.setDefaults()
	return strings.Join(c.URLs, ",")
}

// Redacted returns the server URLs comma-separated with passwords and
// tokens in them replaced, for logs.
func (c Config) Redacted() string {
	c.setDefaults()
	out := make([]string, len(c.URLs))
	for i, u := range c.URLs {
		out[i] = RedactURL(u)
	}
	return strings.Join(out, ",")
}

// String describes the configuration without secrets.
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("servers=" + c.Redacted())
	switch {
	case c.CredsFile != "":
		b.WriteString(" auth=creds:" + c.CredsFile)
	case c.NKeyFile != "":
		b.WriteString(" auth=nkey:" + c.NKeyFile)
	case c.User != "":
		b.WriteString(" auth=user:" + c.User)
	case c.Token != "":
		b.WriteString(" auth=token")
	}
	if c.TLS() {
		b.WriteString(" tls")
		if c.CertFile != "" {
			b.WriteString("+client-cert")
		}
	}
	return b.String()
}

// GoString is String, so that %#v does not print secrets either.
func (c Config) GoString() string { return "natsconn.Config{" + c.String() + "}" }

// TLS reports whether the configuration asks for TLS (a CA, a client
// certificate, or a tls:// or wss:// URL).
func (c Config) TLS() bool {
	if c.CAFile != "" || c.CertFile != "" {
		return true
	}
	for _, u := range c.URLs {
		if strings.HasPrefix(u, "tls://") || strings.HasPrefix(u, "wss://") {
			return true
		}
	}
	return false
}

// Options returns the nats.go options for authentication and TLS. They do
// not include the servers (see Servers) nor connection behaviour (name,
// reconnects, handlers), which the caller adds. Files are read when the
// options are applied, i.e. by nats.Connect; an unreadable file or a bad
// seed is then an error naming the setting.
func (c Config) Options() []nats.Option {
	var opts []nats.Option
	switch {
	case c.CredsFile != "":
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	case c.NKeyFile != "":
		file := c.NKeyFile
		opts = append(opts, func(o *nats.Options) error {
			opt, err := nats.NkeyOptionFromSeed(file)
			if err != nil {
				return fmt.Errorf("%s %s: %w", EnvNKey, file, err)
			}
			return opt(o)
		})
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	}
	if c.CAFile != "" {
		opts = append(opts, nats.RootCAs(c.CAFile))
	}
	if c.CertFile != "" {
		opts = append(opts, nats.ClientCert(c.CertFile, c.KeyFile))
	}
	return opts
}

// Connect validates c and connects to its servers with c's options
// followed by opts. Its error never contains a secret.
func (c Config) Connect(opts ...nats.Option) (*nats.Conn, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	nc, err := nats.Connect(c.Servers(), append(c.Options(), opts...)...)
	if err != nil {
		return nil, c.Redact(fmt.Errorf("NATS %s: %w", c.Redacted(), err))
	}
	return nc, nil
}

// Redact returns err with every secret of c (password, token, URL
// passwords) replaced in its message; errors.Is and errors.As still see
// the original chain. It returns nil for nil and err itself when there
// was nothing to replace.
func (c Config) Redact(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := msg
	for _, s := range c.secrets() {
		clean = strings.ReplaceAll(clean, s, redacted)
	}
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

func (c Config) secrets() []string {
	var s []string
	if c.Password != "" {
		s = append(s, c.Password)
	}
	if c.Token != "" {
		s = append(s, c.Token)
	}
	for _, raw := range c.URLs {
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok && p != "" {
				s = append(s, p, url.QueryEscape(p))
			} else if n := u.User.Username(); n != "" {
				s = append(s, n) // a lone user in a NATS URL is a token
			}
		}
	}
	return s
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

const redacted = "xxxxx"

// RedactURL returns raw with the password replaced, or, for a URL with a
// user and no password (a NATS token), the user replaced. A string that
// does not parse as a URL is cut after its scheme when it holds an '@'.
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
	if u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), redacted)
	} else {
		u.User = url.User(redacted)
	}
	return u.String()
}

// RegisterFlags adds the nats CLI's connection flags to fs, with c's
// current values (typically from FromEnv) as defaults: -s/--server,
// --creds, --nkey, --user, --password, --token, --tlsca, --tlscert,
// --tlskey. The first authentication flag given replaces the
// authentication from the environment. Call Validate after parsing.
// Defaults of --password and --token are not printed by -h.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	servers := &urlsValue{c}
	fs.Var(servers, "s", "NATS server URLs, comma-separated (env "+EnvURL+")")
	fs.Var(servers, "server", "NATS server URLs, comma-separated (env "+EnvURL+")")
	fs.Var(c.authVar(&c.CredsFile, false), "creds", "NATS credentials file (env "+EnvCreds+")")
	fs.Var(c.authVar(&c.NKeyFile, false), "nkey", "NATS NKey seed file (env "+EnvNKey+")")
	fs.Var(c.authVar(&c.User, false), "user", "NATS user (env "+EnvUser+")")
	fs.Var(c.authVar(&c.Password, true), "password", "NATS password (env "+EnvPassword+" or "+EnvPasswordFile+"; visible in ps when given here)")
	fs.Var(c.authVar(&c.Token, true), "token", "NATS token (env "+EnvToken+" or "+EnvTokenFile+"; visible in ps when given here)")
	fs.StringVar(&c.CAFile, "tlsca", c.CAFile, "CA file to verify the NATS servers (env "+EnvCA+")")
	fs.StringVar(&c.CertFile, "tlscert", c.CertFile, "client certificate for mutual TLS (env "+EnvCert+")")
	fs.StringVar(&c.KeyFile, "tlskey", c.KeyFile, "client key for mutual TLS (env "+EnvKey+")")
}

type urlsValue struct{ c *Config }

func (v *urlsValue) String() string {
	if v == nil || v.c == nil {
		return ""
	}
	return v.c.Redacted()
}

func (v *urlsValue) Set(s string) error {
	urls := splitURLs(s)
	if len(urls) == 0 {
		return errors.New("no server URL")
	}
	v.c.URLs = urls
	return nil
}

func (c *Config) authVar(p *string, secret bool) *authValue {
	return &authValue{c: c, p: p, secret: secret}
}

// authValue is a flag that sets one authentication field; the first one
// parsed clears the authentication taken from the environment.
type authValue struct {
	c      *Config
	p      *string
	secret bool
}

func (v *authValue) String() string {
	if v == nil || v.p == nil || v.secret {
		return ""
	}
	return *v.p
}

func (v *authValue) Set(s string) error {
	if !v.c.flagAuth {
		v.c.flagAuth = true
		v.c.CredsFile, v.c.NKeyFile, v.c.User, v.c.Password, v.c.Token = "", "", "", "", ""
		urls := make([]string, len(v.c.URLs))
		for i, raw := range v.c.URLs {
			urls[i] = raw
			if u, err := url.Parse(raw); err == nil && u.User != nil {
				u.User = nil
				urls[i] = u.String()
			}
		}
		v.c.URLs = urls
	}
	*v.p = s
	return nil
}
