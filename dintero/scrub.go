package dintero

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// scrub removes every secret the client knows of from a server-supplied
// message: the client secret, the access token and any card token in the
// request body, then anything else that looks like a token (see
// Scrub). Dintero's messages should never echo them; this makes sure.
func (c *Client) scrub(msg string, reqBody []byte, token string) string {
	if msg == "" {
		return ""
	}
	secrets := []string{c.cfg.ClientSecret, token}
	if cached := c.tokens.current(); cached != "" {
		secrets = append(secrets, cached)
	}
	secrets = append(secrets, cardTokens(reqBody)...)
	return Scrub(msg, secrets...)
}

// scrubTransaction scrubs every free-text string of tx that Dintero wrote
// (the events' error codes and messages) with the secrets the client knows
// of and those of reqBody, the request that produced it (nil for a read).
// Every Transaction the client returns went through it, so callers may copy
// its strings into results, records and logs.
func (c *Client) scrubTransaction(tx *Transaction, reqBody []byte) {
	for i := range tx.Events {
		e := tx.Events[i].Error
		if e == nil {
			continue
		}
		e.Message = c.scrub(e.Message, reqBody, "")
		e.Code = scrubCode(e.Code)
		e.ResultCode = scrubCode(e.ResultCode)
		for j := range e.Type {
			e.Type[j] = scrubCode(e.Type[j])
		}
	}
}

// Scrub returns msg with every secret replaced by [REDACTED], and with every
// run of 20 or more characters that could be a token or a key (letters,
// digits and -_.+/=, with at least one digit) redacted too, whether or not
// it is a known secret; the result is at most 512 bytes. Use it on any
// string a server or a request supplies before it reaches a log line, a
// result or a record.
func Scrub(msg string, secrets ...string) string {
	for _, s := range secrets {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, "[REDACTED]")
		}
	}
	return truncate(redactTokenLike(msg), maxMessageLen)
}

// redactTokenLike replaces runs that look like tokens (see Scrub).
func redactTokenLike(s string) string {
	var b strings.Builder
	start, digit := -1, false
	flush := func(end int) {
		if start >= 0 && end-start >= 20 && digit {
			b.WriteString("[REDACTED]")
		} else if start >= 0 {
			b.WriteString(s[start:end])
		}
		start, digit = -1, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if tokenByte(c) {
			if start < 0 {
				start = i
			}
			digit = digit || (c >= '0' && c <= '9')
			continue
		}
		flush(i)
		b.WriteByte(c)
	}
	flush(len(s))
	return b.String()
}

func tokenByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '+' || c == '/' || c == '='
}

// scrubCode keeps a code or an error type only if it looks like one
// (letters, digits, '_', '.' and '-', at most 64 bytes, and nothing Scrub
// would take for a token); anything else becomes "UNKNOWN", so a code can
// never carry a token.
func scrubCode(code string) string {
	if code == "" {
		return ""
	}
	if len(code) > 64 {
		return "UNKNOWN"
	}
	for i := 0; i < len(code); i++ {
		c := code[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return "UNKNOWN"
		}
	}
	if redactTokenLike(code) != code {
		return "UNKNOWN"
	}
	return code
}

// cardTokens returns the string values of payment_token and
// recurrence_token anywhere in a JSON body.
func cardTokens(body []byte) []string {
	if len(body) == 0 {
		return nil
	}
	var v any
	if json.Unmarshal(body, &v) != nil {
		return nil
	}
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			for k, x := range t {
				if s, ok := x.(string); ok && strings.HasSuffix(k, "_token") {
					out = append(out, s)
					continue
				}
				walk(x)
			}
		case []any:
			for _, x := range t {
				walk(x)
			}
		}
	}
	walk(v)
	return out
}

// truncate shortens s to at most n bytes without splitting a rune.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
