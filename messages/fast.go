package messages

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// The fast path. Almost every request is valid, and the detailed decoder
// (which walks the JSON token by token to name every problem) costs several
// times more than the charge itself. So a body is first decoded with the
// strict rules of encoding/json/v2 (github.com/go-json-experiment/json is
// its upstream): valid UTF-8, no repeated member names, only the members
// the Go types model (so no case variants either), no trailing data, JSON
// types matching the Go types. When that and
// Validate pass, the body is valid; anything else goes through the
// detailed decoder, which decides and explains. FuzzFastPathAgrees checks
// that the fast path never accepts what the detailed decoder rejects.

// decodeFast reports whether data decodes strictly into dst.
func decodeFast(data []byte, dst any) bool {
	return len(data) <= MaxRequestBytes && shallow(data) &&
		jsonv2.Unmarshal(data, dst, jsonv2.RejectUnknownMembers(true)) == nil
}

// shallow reports whether data nests no deeper than maxDepth.
func shallow(data []byte) bool {
	depth, inString, escaped := 0, false, false
	for _, c := range data {
		switch {
		case escaped:
			escaped = false
		case inString:
			switch c {
			case '\\':
				escaped = true
			case '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth++; depth > maxDepth {
				return false
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return true
}

// fingerprintFast hashes the RFC 8785 canonical form of data: member order
// and white space do not change it. It reports false when data is not
// strictly valid JSON.
func fingerprintFast(data []byte) (string, bool) {
	v := jsontext.Value(bytes.Clone(data))
	if err := v.Canonicalize(); err != nil {
		return "", false
	}
	sum := sha256.Sum256(v)
	return hex.EncodeToString(sum[:]), true
}
