package messages

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxRequestBytes is the largest request body accepted (64 KiB).
const MaxRequestBytes = 64 << 10

// maxDepth bounds how deeply a body may nest. Dintero's request bodies nest
// fewer than ten levels; the bound keeps hostile input cheap to reject.
const maxDepth = 64

// maxScanBytes is how much of a body MerchantReference reads.
const maxScanBytes = 1 << 20

// DecodeChargeRequest parses and validates a charge request body.
//
// On any problem it returns a *[ValidationError] listing every problem it
// found: a body that is too large (over [MaxRequestBytes]), not valid UTF-8,
// not JSON, truncated, not a single JSON object, that repeats a key, or that
// spells a known key in a different case (Go would accept "Amount" for
// "amount", Dintero would not) is reported under the field "body" or the
// key's JSON path; a value of the wrong JSON type is reported under its path,
// e.g. "session.order.amount: must be an integer number of minor units"; then
// come the checks of [ChargeRequest.Validate]. Array elements are written
// "session.order.items[1].amount".
//
// Keys the types do not model are allowed and ignored. Numbers in
// session.metadata decode as [json.Number]. DecodeChargeRequest never panics.
func DecodeChargeRequest(data []byte) (*ChargeRequest, error) {
	if req := new(ChargeRequest); decodeFast(data, req) && req.Validate() == nil {
		return req, nil
	}
	v := &validator{}
	var req ChargeRequest
	if !decodeRequest(v, data, &req, "session", "session.order", "payment") {
		return nil, v.err()
	}
	// With shape errors the struct is partly filled: validate skips the
	// fields v marked unusable.
	req.validate(v)
	if err := v.err(); err != nil {
		return nil, err
	}
	return &req, nil
}

// decodeRequest makes the checks every request body gets (size, UTF-8,
// JSON syntax, a single object, repeated keys, the JSON types of the fields
// dst's type models, and the required objects, given as dotted paths whose
// parents come first) and decodes data into dst, a pointer to a struct.
// It reports false when the body could not be decoded at all; true means
// dst is filled, with the fields v marked unusable left out of account.
func decodeRequest(v *validator, data []byte, dst any, required ...string) bool {
	if len(data) > MaxRequestBytes {
		v.add("body", "larger than %d bytes", MaxRequestBytes)
		return false
	}
	if !utf8.Valid(data) {
		// encoding/json would silently replace the bad bytes with U+FFFD.
		v.add("body", "not valid UTF-8 at offset %d", invalidUTF8Offset(data))
		return false
	}
	tree, ok := parseJSON(v, data)
	if !ok {
		return false
	}
	top, ok := tree.(map[string]any)
	if !ok {
		v.add("body", "must be a JSON object, got %s", jsonKind(tree))
		return false
	}
	checkShape(v, "", reflect.TypeOf(dst).Elem(), top)
	for _, path := range required {
		parent := top
		if i := strings.LastIndexByte(path, '.'); i >= 0 {
			parent = lookupObject(top, path[:i])
		}
		if parent != nil {
			requireObject(v, parent, path)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil && len(v.errs) == 0 {
		// checkShape mirrors encoding/json's rules, so this is not
		// expected; report the decoder's error rather than accept.
		v.addDecodeError(err)
		return false
	}
	return true
}

// lookupObject follows a dotted path of keys from obj and returns the
// object found there, or nil.
func lookupObject(obj map[string]any, path string) map[string]any {
	for key := range strings.SplitSeq(path, ".") {
		next, ok := obj[key].(map[string]any)
		if !ok {
			return nil
		}
		obj = next
	}
	return obj
}

// MerchantReference extracts session.order.merchant_reference from a body
// that may be invalid otherwise (wrong types elsewhere, truncated after the
// reference, too large), so that a rejected result can name it. It is best
// effort: it reads at most the first MiB and returns "" when there is no such
// string, or when the string could not be a valid reference (longer than 255
// bytes or holding control characters), so the result is always safe to put
// in a header or a log line.
func MerchantReference(data []byte) string {
	return scanString(data, "session", "order", "merchant_reference")
}

// scanString returns the last string found in data at the path of object
// keys, read token by token so that the rest of the body may be invalid.
// It reads at most maxScanBytes and returns "" when the string could not be
// a valid reference (longer than 255 bytes or holding control characters).
func scanString(data []byte, path ...string) string {
	type frame struct {
		object    bool
		key       string
		expectKey bool
	}
	var (
		stack []frame
		ref   string
	)
	atPath := func() bool {
		if len(stack) != len(path) {
			return false
		}
		for i, f := range stack {
			if !f.object || f.key != path[i] {
				return false
			}
		}
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(data[:min(len(data), maxScanBytes)]))
	dec.UseNumber()
	for len(stack) <= maxDepth {
		tok, err := dec.Token()
		if err != nil {
			break // io.EOF or a syntax error: keep what was found so far
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				stack = append(stack, frame{object: d == '{', expectKey: d == '{'})
				continue
			default: // '}' or ']'
				if len(stack) > 0 {
					stack = stack[:len(stack)-1]
				}
			}
		} else if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].expectKey {
			stack[n-1].key, _ = tok.(string)
			stack[n-1].expectKey = false
			continue
		} else if s, ok := tok.(string); ok && atPath() {
			ref = s // the last one wins, as in encoding/json
		}
		// A value is complete: the enclosing object expects a key next.
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].expectKey = true
		}
	}
	if len(ref) > maxReferenceBytes || strings.ContainsFunc(ref, isControl) {
		return ""
	}
	return ref
}

// Fingerprint returns a stable hash (hex SHA-256) of the meaning of a JSON
// body: the same JSON with different whitespace, key order or string
// escapes gives the same fingerprint; any change of a value gives a
// different one. Numbers are compared by value, as RFC 8785 canonical JSON
// writes them (1 and 1.0 are the same; integers beyond 2^53 may collide). The
// worker compares fingerprints to tell a replay of a request from a
// different request that reuses its merchant_reference.
//
// It fails with a *[ValidationError] when data is not exactly one valid JSON
// value (UTF-8, no repeated keys). It does not check the request's fields.
func Fingerprint(data []byte) (string, error) {
	if fp, ok := fingerprintFast(data); ok {
		return fp, nil
	}
	v := &validator{}
	if !utf8.Valid(data) {
		v.add("body", "not valid UTF-8 at offset %d", invalidUTF8Offset(data))
		return "", v.err()
	}
	tree, ok := parseJSON(v, data)
	if !ok || len(v.errs) > 0 {
		return "", v.err()
	}
	// encoding/json writes map keys sorted and json.Number as written.
	canonical, err := json.Marshal(tree)
	if err != nil {
		return "", fmt.Errorf("messages: fingerprint: %w", err)
	}
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:]), nil
}

// parseJSON decodes data into a tree of map[string]any, []any, string,
// json.Number, bool and nil, like json.Unmarshal into any with UseNumber,
// but also reports repeated keys, nesting deeper than maxDepth and trailing
// data. Syntax problems are reported in v and end the parse (ok false);
// repeated keys are reported and the parse goes on.
func parseJSON(v *validator, data []byte) (tree any, ok bool) {
	p := &parser{v: v, data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	p.dec.UseNumber()
	tok, err := p.dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			v.add("body", "empty")
			return nil, false
		}
		p.fail(err)
		return nil, false
	}
	tree, ok = p.value(tok)
	if !ok {
		return nil, false
	}
	end := p.dec.InputOffset()
	if _, err := p.dec.Token(); !errors.Is(err, io.EOF) {
		off := int(end) + len(data[end:]) - len(bytes.TrimLeft(data[end:], " \t\r\n"))
		v.add("body", "unexpected data after the JSON value at offset %d", off)
		return nil, false
	}
	return tree, true
}

type parser struct {
	v    *validator
	data []byte
	dec  *json.Decoder
	path []segment // where the parser is; made a string only for a message
}

// segment is an object key or an array index of a path.
type segment struct {
	key   string
	index int // -1 for a key
}

func (p *parser) where() string {
	var path string
	for _, s := range p.path {
		if s.index < 0 {
			path = joinPath(path, s.key)
		} else {
			path = indexPath(path, s.index)
		}
	}
	return path
}

func (p *parser) value(tok json.Token) (any, bool) {
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, true // string, json.Number, bool or nil
	}
	if len(p.path) >= maxDepth {
		p.v.add("body", "nested more than %d levels deep at offset %d", maxDepth, p.dec.InputOffset())
		return nil, false
	}
	switch d {
	case '{':
		obj := map[string]any{}
		for {
			tok, err := p.dec.Token()
			if err != nil {
				p.fail(err)
				return nil, false
			}
			if tok == json.Delim('}') {
				return obj, true
			}
			key, ok := tok.(string)
			if !ok { // not expected: the decoder checks the syntax
				p.v.add("body", "not valid JSON at offset %d", p.dec.InputOffset())
				return nil, false
			}
			if tok, err = p.dec.Token(); err != nil {
				p.fail(err)
				return nil, false
			}
			p.path = append(p.path, segment{key: key, index: -1})
			val, ok := p.value(tok)
			if !ok {
				return nil, false
			}
			if _, dup := obj[key]; dup {
				kp := p.where()
				p.v.add(kp, "duplicate key")
				p.v.unusable(kp)
			}
			p.path = p.path[:len(p.path)-1]
			obj[key] = val
		}
	case '[':
		arr := []any{}
		for {
			tok, err := p.dec.Token()
			if err != nil {
				p.fail(err)
				return nil, false
			}
			if tok == json.Delim(']') {
				return arr, true
			}
			p.path = append(p.path, segment{index: len(arr)})
			val, ok := p.value(tok)
			if !ok {
				return nil, false
			}
			p.path = p.path[:len(p.path)-1]
			arr = append(arr, val)
		}
	}
	// A closing delimiter where a value should be: the decoder reports
	// that as a syntax error, so this is not expected.
	p.v.add("body", "not valid JSON at offset %d", p.dec.InputOffset())
	return nil, false
}

// fail reports a decoder error without quoting the input (it could be
// inside a card token).
func (p *parser) fail(err error) {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		p.v.add("body", "not valid JSON at offset %d", se.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		p.v.add("body", "truncated: the JSON ends early at offset %d", len(p.data))
	default:
		p.v.add("body", "not valid JSON at offset %d", p.dec.InputOffset())
	}
}

// checkShape checks that the JSON tree val fits the Go type t the way
// encoding/json would decode it, reporting each misfit under its path and
// marking it unusable. It also rejects keys that match a field's name only
// case-insensitively, which encoding/json accepts and Dintero would not.
func checkShape(v *validator, path string, t reflect.Type, val any) {
	if val == nil {
		return // null leaves the field unset, like an absent key
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	bad := func(want string) {
		v.add(pathOrBody(path), "must be %s, got %s", want, jsonKind(val))
		v.unusable(path)
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := val.(map[string]any)
		if !ok {
			bad("an object")
			return
		}
		fields := jsonFields(t)
		for _, key := range slices.Sorted(maps.Keys(obj)) {
			kp := joinPath(path, key)
			if f, ok := fields[key]; ok {
				checkShape(v, kp, f.Type, obj[key])
				continue
			}
			for name := range fields {
				if strings.EqualFold(name, key) {
					v.add(kp, "unknown key; keys are case-sensitive, did you mean %q?", name)
					v.unusable(kp)
					v.unusable(joinPath(path, name))
				}
			}
		}
	case reflect.Map:
		obj, ok := val.(map[string]any)
		if !ok {
			bad("an object")
			return
		}
		if t.Elem().Kind() == reflect.Interface {
			return // any values: nothing to check
		}
		for _, key := range slices.Sorted(maps.Keys(obj)) {
			checkShape(v, joinPath(path, key), t.Elem(), obj[key])
		}
	case reflect.Slice:
		arr, ok := val.([]any)
		if !ok {
			bad("an array")
			return
		}
		if t.Elem().Kind() == reflect.Interface {
			return
		}
		for i, e := range arr {
			checkShape(v, indexPath(path, i), t.Elem(), e)
		}
	case reflect.String:
		if _, ok := val.(string); !ok {
			bad("a string")
		}
	case reflect.Bool:
		if _, ok := val.(bool); !ok {
			bad("true or false")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		// Every integer of a request is an amount in minor units.
		n, ok := val.(json.Number)
		if !ok {
			v.add(path, "must be an integer number of minor units, got %s", jsonKind(val))
			v.unusable(path)
		} else if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			v.add(path, "must be an integer number of minor units, got %s", quoteValue(string(n)))
			v.unusable(path)
		}
	case reflect.Float32, reflect.Float64:
		n, ok := val.(json.Number)
		if !ok {
			bad("a number")
		} else if _, err := strconv.ParseFloat(string(n), t.Bits()); err != nil {
			v.add(path, "must be a number in range, got %s", quoteValue(string(n)))
			v.unusable(path)
		}
	case reflect.Interface:
		// any JSON value
	}
}

// jsonFields maps the JSON key of each of t's fields to the field.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	fields := make(map[string]reflect.StructField, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		fields[name] = f
	}
	return fields
}

// requireObject reports path ("a.b") as required when its last key is
// absent or null in obj.
func requireObject(v *validator, obj map[string]any, path string) {
	key := path[strings.LastIndexByte(path, '.')+1:]
	if obj[key] == nil {
		v.add(path, "required")
		v.unusable(path)
	}
}

// addDecodeError reports an error of encoding/json that checkShape did not
// foresee.
func (v *validator) addDecodeError(err error) {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		v.add(te.Field, "must be of type %s, got JSON %s", te.Type, te.Value)
		return
	}
	v.add("body", "cannot be decoded")
}

func jsonKind(val any) string {
	switch val.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	}
	return fmt.Sprintf("%T", val)
}

// joinPath appends key to a dotted path. A key that is empty, long or not
// printable is quoted, so that paths stay short, non-empty and one line.
func joinPath(path, key string) string {
	if key == "" || len(key) > maxQuotedBytes || strings.ContainsFunc(key, isNotPrint) {
		key = quoteValue(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func isNotPrint(r rune) bool { return !unicode.IsPrint(r) }

func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

func pathOrBody(path string) string {
	if path == "" {
		return "body"
	}
	return path
}

func invalidUTF8Offset(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(data)
}
