package dintero

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Headers of a callback request from Dintero to a session's callback_url.
const (
	// SignatureHeader carries the callback signature,
	// "t=<unix seconds>,v0-hmac-sha256=<lowercase hex>". Dintero sends it
	// only when the account has a signature secret.
	SignatureHeader = "Dintero-Signature"
	// EventDeliveryHeader carries a unique id per callback delivery; it is
	// the same on Dintero's retries of one delivery, so it can be used to
	// recognise a repeated callback.
	EventDeliveryHeader = "event-delivery"
)

// DefaultSignatureTolerance is how far the signature's timestamp may be
// from the verifier's clock, in either direction, when the tolerance
// passed to VerifyCallbackURL or VerifyCallback is not positive.
const DefaultSignatureTolerance = 5 * time.Minute

// signatureScheme is the name of the only signature scheme Dintero uses.
const signatureScheme = "v0-hmac-sha256"

// Errors of VerifyCallbackURL and VerifyCallback. The returned error wraps
// exactly one of them; test with errors.Is.
var (
	// ErrSignatureMissing: the request has no Dintero-Signature header.
	ErrSignatureMissing = errors.New("dintero: callback signature missing")
	// ErrSignatureInvalid: the header is malformed, or no signature in it
	// matches the request and the secret.
	ErrSignatureInvalid = errors.New("dintero: callback signature invalid")
	// ErrSignatureExpired: the signature matches but its timestamp is
	// further than the tolerance from now (a replay, or a skewed clock).
	ErrSignatureExpired = errors.New("dintero: callback signature expired")
)

// SignCallback returns the Dintero-Signature header value
// "t=<unix>,v0-hmac-sha256=<hex>" that Dintero would send for a callback
// request with the given method to u at time t. It is what the sandbox uses
// to sign its callbacks, and what tests use to forge valid ones.
//
// The signed payload is described at VerifyCallbackURL.
func SignCallback(secret []byte, accountID, method string, u *url.URL, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + "," + signatureScheme + "=" + hex.EncodeToString(callbackMAC(secret, ts, accountID, method, u))
}

// VerifyCallbackURL checks header, the value of a callback's
// Dintero-Signature header, for a request with the given method to u. It
// returns nil when one of the header's v0-hmac-sha256 signatures is the
// HMAC-SHA256, keyed with secret, of
//
//	<t>\n<account_id>\n<METHOD>\n<hostname>\n<pathname>\n<query>
//
// and t is within tolerance of now (DefaultSignatureTolerance when tolerance
// is not positive; time.Now() when now is the zero time). The parts are:
//
//   - t: the header's t= value, Unix seconds.
//   - account_id: the Dintero account, e.g. "P00000000".
//   - METHOD: the request method in upper case, e.g. "GET".
//   - hostname: u's host without the port, lower case, as JavaScript's
//     URL.hostname ("example.com" for https://example.com:8443/x). Dintero's
//     published test vector signs the host of https://example.com/callback
//     as "example.com". Behind a proxy that rewrites Host, pass the public
//     URL Dintero called, not the one the server saw.
//   - pathname: u's escaped path ("/" when empty).
//   - query: every query parameter of u, sorted by key (stable: values of
//     one key keep their order) and form-encoded like JavaScript's
//     URLSearchParams.sort().toString(): spaces as "+", every byte but
//     A-Z a-z 0-9 * - . _ percent-encoded. Parameters are decoded from u
//     first, so the way the caller escaped them does not matter.
//
// The body is not signed: Dintero's POST callbacks carry the transaction,
// which must therefore be fetched again (GET /v1/transactions/{id}) rather
// than trusted. Signatures are compared in constant time.
//
// The error wraps ErrSignatureMissing (header empty), ErrSignatureInvalid
// (malformed, or no matching signature) or ErrSignatureExpired (a matching
// signature outside the tolerance). It never contains the secret.
func VerifyCallbackURL(secret []byte, accountID, method string, u *url.URL, header string, now time.Time, tolerance time.Duration) error {
	header = strings.TrimSpace(header)
	if header == "" {
		return ErrSignatureMissing
	}
	if u == nil {
		return fmt.Errorf("%w: no URL to verify", ErrSignatureInvalid)
	}
	ts, sigs, err := parseSignatureHeader(header)
	if err != nil {
		return err
	}
	t, _ := strconv.ParseInt(ts, 10, 64) // checked by parseSignatureHeader
	want := callbackMAC(secret, ts, accountID, method, u)
	matched := false
	for _, s := range sigs {
		// Evaluate every candidate so timing does not depend on which matched.
		if hmac.Equal(want, s) {
			matched = true
		}
	}
	if !matched {
		return fmt.Errorf("%w: no %s signature matches", ErrSignatureInvalid, signatureScheme)
	}
	if now.IsZero() {
		now = time.Now()
	}
	if tolerance <= 0 {
		tolerance = DefaultSignatureTolerance
	}
	age := now.Sub(time.Unix(t, 0))
	if age > tolerance || age < -tolerance {
		return fmt.Errorf("%w: timestamp %d is %s from now, tolerance %s", ErrSignatureExpired, t, age.Round(time.Second), tolerance)
	}
	return nil
}

// VerifyCallback is VerifyCallbackURL for a request received by an
// http.Handler: it verifies r's Dintero-Signature header against r.Method,
// r.Host (its port dropped) and r.URL's path and query. When a proxy in
// front of the server changes the host, path or query, use
// VerifyCallbackURL with the public URL instead.
func VerifyCallback(r *http.Request, secret []byte, accountID string, now time.Time, tolerance time.Duration) error {
	if r == nil || r.URL == nil {
		return fmt.Errorf("%w: no request", ErrSignatureInvalid)
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	u := &url.URL{Host: host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	return VerifyCallbackURL(secret, accountID, r.Method, u, r.Header.Get(SignatureHeader), now, tolerance)
}

// parseSignatureHeader splits "t=<unix>,v0-hmac-sha256=<hex>[,...]" into
// the timestamp and the decoded signatures of the v0 scheme. Entries of
// other schemes are ignored, as a later scheme may be added beside v0.
func parseSignatureHeader(header string) (ts string, sigs [][]byte, err error) {
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return "", nil, fmt.Errorf("%w: malformed header: an entry without '='", ErrSignatureInvalid)
		}
		switch k {
		case "t":
			if ts != "" {
				return "", nil, fmt.Errorf("%w: malformed header: t given twice", ErrSignatureInvalid)
			}
			if _, perr := strconv.ParseInt(v, 10, 64); perr != nil || v == "" || v[0] == '+' || v[0] == '-' {
				return "", nil, fmt.Errorf("%w: malformed header: t is not a Unix time in seconds", ErrSignatureInvalid)
			}
			ts = v
		case signatureScheme:
			b, herr := hex.DecodeString(v)
			if herr != nil || len(b) != sha256.Size {
				return "", nil, fmt.Errorf("%w: malformed header: %s is not %d hex bytes", ErrSignatureInvalid, signatureScheme, sha256.Size)
			}
			sigs = append(sigs, b)
		}
	}
	switch {
	case ts == "":
		return "", nil, fmt.Errorf("%w: malformed header: no t", ErrSignatureInvalid)
	case len(sigs) == 0:
		return "", nil, fmt.Errorf("%w: malformed header: no %s signature", ErrSignatureInvalid, signatureScheme)
	}
	return ts, sigs, nil
}

// callbackMAC computes the HMAC-SHA256 of the signed payload.
func callbackMAC(secret []byte, ts, accountID, method string, u *url.URL) []byte {
	mac := hmac.New(sha256.New, secret)
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	for i, part := range []string{ts, accountID, strings.ToUpper(method), hostname(u.Host), path, sortedQuery(u.RawQuery)} {
		if i > 0 {
			mac.Write([]byte{'\n'})
		}
		mac.Write([]byte(part))
	}
	return mac.Sum(nil)
}

// hostname drops the port and the IPv6 brackets from host and lowers it,
// as URL.hostname does in a browser (which keeps the brackets of an IPv6
// literal; so does this).
func hostname(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	}
	return strings.ToLower(host)
}

type queryParam struct{ key, value string }

// sortedQuery parses raw as URLSearchParams does (split on '&', then on the
// first '=', '+' as space, lenient percent-decoding), sorts the pairs by key
// in UTF-16 code unit order, keeping the order of equal keys, and
// serializes them as application/x-www-form-urlencoded.
func sortedQuery(raw string) string {
	var params []queryParam
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		params = append(params, queryParam{formDecode(k), formDecode(v)})
	}
	slices.SortStableFunc(params, func(a, b queryParam) int { return compareUTF16(a.key, b.key) })
	var b strings.Builder
	for i, p := range params {
		if i > 0 {
			b.WriteByte('&')
		}
		formEncode(&b, p.key)
		b.WriteByte('=')
		formEncode(&b, p.value)
	}
	return b.String()
}

// formDecode turns '+' into a space and decodes %XX sequences; a '%' not
// followed by two hex digits is kept as it is. Bytes that are not UTF-8
// become U+FFFD, as in a browser.
func formDecode(s string) string {
	if !strings.ContainsAny(s, "+%") {
		if !utf8.ValidString(s) {
			return string([]rune(s))
		}
		return s
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			out = append(out, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			out = append(out, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			out = append(out, c)
		}
	}
	if !utf8.Valid(out) {
		return string([]rune(string(out)))
	}
	return string(out)
}

// formEncode writes s with the application/x-www-form-urlencoded byte
// serializer of the WHATWG URL standard.
func formEncode(b *strings.Builder, s string) {
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ':
			b.WriteByte('+')
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '*', c == '-', c == '.', c == '_':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
}

// compareUTF16 orders strings by their UTF-16 code units, as JavaScript
// does. It differs from Go's byte order only for characters above U+FFFF.
func compareUTF16(a, b string) int {
	if a == b {
		return 0
	}
	return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
