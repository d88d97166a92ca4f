package schema_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/messages/schema"
)

// Schema files.
const (
	chargeRequest  = "charge-request.schema.json"
	chargeResult   = "charge-result.schema.json"
	sessionRequest = "session-request.schema.json"
	sessionResult  = "session-result.schema.json"
)

// compiled compiles every schema in schema.FS, with format assertion on,
// and returns them by file name.
func compiled(t testing.TB) map[string]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for name, id := range schemaIDs {
		data, err := fs.ReadFile(schema.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := c.AddResource(id, doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	out := make(map[string]*jsonschema.Schema, len(schemaIDs))
	for name, id := range schemaIDs {
		sch, err := c.Compile(id) // also validates the schema against its metaschema
		if err != nil {
			t.Fatalf("compile %s: %v", name, err)
		}
		out[name] = sch
	}
	return out
}

// rawSchema returns the schema file name decoded into plain Go values.
func rawSchema(t testing.TB, name string) map[string]any {
	t.Helper()
	data, err := fs.ReadFile(schema.FS, name)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return doc
}

func validate(sch *jsonschema.Schema, body []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return sch.Validate(doc)
}

// bodies reads the JSON files of a testdata directory of package messages.
func bodies(t testing.TB, dir string, want int) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "testdata", dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != want {
		t.Fatalf("testdata/%s holds %d bodies, want %d", dir, len(paths), want)
	}
	out := make(map[string][]byte, len(paths))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[dir+"/"+filepath.Base(p)] = data
	}
	return out
}

func body(t testing.TB, dir, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// edit decodes body, lets f change it and encodes it again.
func edit(t testing.TB, body []byte, f func(m map[string]any)) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// obj walks m down the keys to a nested object.
func obj(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		m = m[k].(map[string]any)
	}
	return m
}

func order(m map[string]any) map[string]any  { return obj(m, "session", "order") }
func tokens(m map[string]any) map[string]any { return obj(m, "session", "customer", "tokens") }
func item0(m map[string]any) map[string]any {
	return order(m)["items"].([]any)[0].(map[string]any)
}

type bodyCase struct {
	name string
	body []byte
}

// agree runs each case through the schema and the decoder and checks that
// both accept it (valid) or both reject it.
func agree(t *testing.T, sch *jsonschema.Schema, decode func([]byte) error, valid bool, cases []bodyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			serr, derr := validate(sch, tc.body), decode(tc.body)
			if valid {
				if serr != nil {
					t.Errorf("schema rejects a valid body: %v", serr)
				}
				if derr != nil {
					t.Errorf("decoder rejects the body (bad test case): %v", derr)
				}
				return
			}
			if serr == nil {
				t.Errorf("schema accepts an invalid body; the decoder says: %v", derr)
			}
			var ve *messages.ValidationError
			if !errors.As(derr, &ve) {
				t.Errorf("decoder: got %v, want a *messages.ValidationError (bad test case)", derr)
			}
		})
	}
}

func decodeCharge(b []byte) error  { _, err := messages.DecodeChargeRequest(b); return err }
func decodeSession(b []byte) error { _, err := messages.DecodeSessionRequest(b); return err }

func TestChargeRequestValid(t *testing.T) {
	sch := compiled(t)[chargeRequest]
	var cases []bodyCase
	for name, b := range bodies(t, "seed", 6) {
		cases = append(cases, bodyCase{name, b})
	}
	slices.SortFunc(cases, func(a, b bodyCase) int { return strings.Compare(a.name, b.name) })
	payexRec := body(t, "seed", "payex_creditcard-recurring_purchase.json")
	bamboraUns := body(t, "seed", "bambora_creditcard-unscheduled_purchase.json")
	with := func(f func(m map[string]any)) []byte { return edit(t, payexRec, f) }
	cases = append(cases, []bodyCase{
		{"payex recurring with both tokens", with(func(m map[string]any) {
			tokens(m)["payex.creditcard"] = map[string]any{"payment_token": "sandbox-ok-2", "recurrence_token": "sandbox-ok-3"}
		})},
		{"tokens of another provider as well", with(func(m map[string]any) {
			tokens(m)["bambora.creditcard"] = map[string]any{"payment_token": "any thing\ngoes here"}
		})},
		{"bambora with an empty recurrence_token", edit(t, bamboraUns, func(m map[string]any) {
			tokens(m)["bambora.creditcard"] = map[string]any{"payment_token": "sandbox-ok-1", "recurrence_token": ""}
		})},
		{"items and shipping", with(func(m map[string]any) {
			item0(m)["amount"] = 28990
			order(m)["shipping_option"] = map[string]any{"id": "bring", "amount": 1000}
		})},
		{"no items", with(func(m map[string]any) { delete(order(m), "items") })},
		{"minimal", []byte(`{"session":{"order":{"amount":1,"currency":"SEK","merchant_reference":"r"},
			"customer":{"tokens":{"dintero_psp.creditcard":{"payment_token":"sandbox-ok-1"}}}},
			"payment":{"payment_product_type":"dintero_psp.creditcard","operation":"unscheduled_purchase"}}`)},
		{"unmodelled fields and metadata", with(func(m map[string]any) {
			m["profile_id"] = "default"
			order(m)["shipping_address"] = map[string]any{"first_name": "Ola"}
			item0(m)["groups"] = []any{map[string]any{"id": "g1"}}
			obj(m, "session")["metadata"] = map[string]any{"ext_subscription_id": "42", "ext_n": json.Number("1.5e3")}
		})},
		{"expires_at with an offset and a fraction", with(func(m map[string]any) {
			obj(m, "session")["expires_at"] = "2026-08-01T12:00:00.25+02:00"
		})},
		{"largest amount", with(func(m map[string]any) {
			order(m)["amount"] = 1_000_000_000_000
			delete(order(m), "items")
		})},
		{"merchant_reference of 255 bytes", with(func(m map[string]any) {
			order(m)["merchant_reference"] = strings.Repeat("å", 127) + "x"
		})},
		{"merchant_reference with inner spaces", with(func(m map[string]any) {
			order(m)["merchant_reference"] = "order 1\u00a0b"
		})},
		{"bambora recurring with payex tokens of the other kind too", edit(t, body(t, "seed", "bambora_creditcard-recurring_purchase.json"), func(m map[string]any) {
			tokens(m)["payex.creditcard"] = map[string]any{"payment_token": "sandbox-ok-2"}
		})},
		{"dintero_psp unscheduled with payex tokens of the other kind too", edit(t, body(t, "seed", "dintero_psp_creditcard-unscheduled_purchase.json"), func(m map[string]any) {
			tokens(m)["payex.creditcard"] = map[string]any{"recurrence_token": "sandbox-ok-2"}
		})},
		{"upper-case callback_url scheme", with(func(m map[string]any) {
			obj(m, "session", "url")["callback_url"] = "HTTPS://example.com/cb"
		})},
	}...)
	agree(t, sch, decodeCharge, true, cases)
}

func TestChargeRequestInvalid(t *testing.T) {
	sch := compiled(t)[chargeRequest]
	payexRec := body(t, "seed", "payex_creditcard-recurring_purchase.json")
	payexUns := body(t, "seed", "payex_creditcard-unscheduled_purchase.json")
	bamboraUns := body(t, "seed", "bambora_creditcard-unscheduled_purchase.json")
	pspRec := body(t, "seed", "dintero_psp_creditcard-recurring_purchase.json")
	with := func(f func(m map[string]any)) []byte { return edit(t, payexRec, f) }
	setTokens := func(b []byte, product string, tok any) []byte {
		return edit(t, b, func(m map[string]any) { tokens(m)[product] = tok })
	}
	agree(t, sch, decodeCharge, false, []bodyCase{
		// The body as a whole.
		{"array", append(append([]byte("["), payexRec...), ']')},
		{"null", []byte("null")},
		{"empty object", []byte("{}")},

		// Missing parts.
		{"no session", []byte(`{"payment":{"payment_product_type":"payex.creditcard","operation":"recurring_purchase"}}`)},
		{"no order", with(func(m map[string]any) { delete(obj(m, "session"), "order") })},
		{"no payment", with(func(m map[string]any) { delete(m, "payment") })},

		// Wrong JSON types.
		{"amount as string", with(func(m map[string]any) { order(m)["amount"] = "29990" })},
		{"amount as float", with(func(m map[string]any) { order(m)["amount"] = json.Number("299.5") })},
		{"amount beyond int64", with(func(m map[string]any) { order(m)["amount"] = json.Number("9223372036854775808") })},
		{"item amount beyond int64", with(func(m map[string]any) { item0(m)["amount"] = json.Number("9223372036854775808") })},
		{"item vat_amount beyond int64", with(func(m map[string]any) { item0(m)["vat_amount"] = json.Number("-9223372036854775809") })},
		{"item vat_amount over int64", with(func(m map[string]any) { item0(m)["vat_amount"] = json.Number("9223372036854775808") })},
		{"vat_amount beyond int64", with(func(m map[string]any) { order(m)["vat_amount"] = json.Number("9223372036854775808") })},
		{"shipping amount beyond int64", with(func(m map[string]any) {
			order(m)["shipping_option"] = map[string]any{"amount": json.Number("9223372036854775808")}
		})},
		{"item amount as float", with(func(m map[string]any) { item0(m)["amount"] = json.Number("29989.5") })},
		{"quantity as string", with(func(m map[string]any) { item0(m)["quantity"] = "1" })},
		{"auto_capture as string", with(func(m map[string]any) { obj(m, "session", "configuration")["auto_capture"] = "false" })},
		{"customer as string", with(func(m map[string]any) { obj(m, "session")["customer"] = "cust-1" })},
		{"tokens as array", with(func(m map[string]any) { obj(m, "session", "customer")["tokens"] = []any{} })},
		{"items as object", with(func(m map[string]any) { order(m)["items"] = map[string]any{} })},
		{"token as number", setTokens(payexRec, "payex.creditcard", map[string]any{"recurrence_token": 7})},
		{"session as string", with(func(m map[string]any) { m["session"] = "s" })},
		{"payment as string", with(func(m map[string]any) { m["payment"] = "payex.creditcard" })},
		{"url as string", with(func(m map[string]any) { obj(m, "session")["url"] = "https://example.com/callback" })},
		{"callback_url as number", with(func(m map[string]any) { obj(m, "session", "url")["callback_url"] = 1 })},
		{"configuration as string", with(func(m map[string]any) { obj(m, "session")["configuration"] = "auto" })},
		{"pre_authorization as number", with(func(m map[string]any) { obj(m, "session", "configuration")["pre_authorization"] = 1 })},
		{"email as number", with(func(m map[string]any) { obj(m, "session", "customer")["email"] = 1 })},
		{"expires_at as number", with(func(m map[string]any) { obj(m, "session")["expires_at"] = 1 })},
		{"other provider's token as number", setTokens(payexRec, "bambora.creditcard", map[string]any{"payment_token": 1})},
		{"other provider's tokens as string", setTokens(payexRec, "bambora.creditcard", "tok")},
		{"metadata as array", with(func(m map[string]any) { obj(m, "session")["metadata"] = []any{} })},

		// The order.
		{"amount zero", with(func(m map[string]any) { order(m)["amount"] = 0 })},
		{"amount negative", with(func(m map[string]any) { order(m)["amount"] = -29990 })},
		{"amount over the cap", with(func(m map[string]any) {
			order(m)["amount"] = 1_000_000_000_001
			delete(order(m), "items")
		})},
		{"missing merchant_reference", with(func(m map[string]any) { delete(order(m), "merchant_reference") })},
		{"empty merchant_reference", with(func(m map[string]any) { order(m)["merchant_reference"] = "" })},
		{"merchant_reference with a newline", with(func(m map[string]any) { order(m)["merchant_reference"] = "order\n1" })},
		{"merchant_reference with a C1 control", with(func(m map[string]any) { order(m)["merchant_reference"] = "order\u00851" })},
		{"merchant_reference with a trailing space", with(func(m map[string]any) { order(m)["merchant_reference"] = "order-1 " })},
		{"merchant_reference with a leading no-break space", with(func(m map[string]any) { order(m)["merchant_reference"] = "\u00a0order-1" })},
		{"merchant_reference with a trailing ideographic space", with(func(m map[string]any) { order(m)["merchant_reference"] = "order-1\u3000" })},
		{"merchant_reference of one space", with(func(m map[string]any) { order(m)["merchant_reference"] = " " })},
		{"merchant_reference of 256 bytes", with(func(m map[string]any) { order(m)["merchant_reference"] = strings.Repeat("r", 256) })},
		{"currency lower case", with(func(m map[string]any) { order(m)["currency"] = "nok" })},
		{"currency of two letters", with(func(m map[string]any) { order(m)["currency"] = "NO" })},
		{"currency of four letters", with(func(m map[string]any) { order(m)["currency"] = "NOKK" })},
		{"currency missing", with(func(m map[string]any) { delete(order(m), "currency") })},
		{"vat_amount negative", with(func(m map[string]any) { order(m)["vat_amount"] = -1 })},
		{"negative item amount", with(func(m map[string]any) {
			order(m)["items"] = []any{map[string]any{"amount": -10}, map[string]any{"amount": 30000}}
		})},
		{"negative shipping amount", with(func(m map[string]any) {
			order(m)["shipping_option"] = map[string]any{"amount": -1}
			item0(m)["amount"] = 29991
		})},

		// Payment.
		{"unknown provider", with(func(m map[string]any) { obj(m, "payment")["payment_product_type"] = "klarna.klarna" })},
		{"missing provider", with(func(m map[string]any) { delete(obj(m, "payment"), "payment_product_type") })},
		{"unknown operation", with(func(m map[string]any) { obj(m, "payment")["operation"] = "purchase" })},
		{"missing operation", with(func(m map[string]any) { delete(obj(m, "payment"), "operation") })},

		// Tokens.
		{"no tokens for the provider", with(func(m map[string]any) { obj(m, "session", "customer")["tokens"] = map[string]any{} })},
		{"tokens only for another provider", edit(t, payexRec, func(m map[string]any) {
			obj(m, "session", "customer")["tokens"] = map[string]any{"bambora.creditcard": map[string]any{"payment_token": "sandbox-ok-1"}}
		})},
		{"no customer", with(func(m map[string]any) { delete(obj(m, "session"), "customer") })},
		{"customer without tokens", with(func(m map[string]any) { delete(obj(m, "session", "customer"), "tokens") })},
		{"nested tokens object", with(func(m map[string]any) {
			obj(m, "session", "customer")["tokens"] = map[string]any{
				"payex": map[string]any{"creditcard": map[string]any{"recurrence_token": "sandbox-nested"}},
			}
		})},
		{"payex recurring without recurrence_token", setTokens(payexRec, "payex.creditcard", map[string]any{"payment_token": "sandbox-pay"})},
		{"payex recurring with an empty recurrence_token", setTokens(payexRec, "payex.creditcard", map[string]any{"recurrence_token": ""})},
		{"payex unscheduled without payment_token", setTokens(payexUns, "payex.creditcard", map[string]any{"recurrence_token": "sandbox-rec"})},
		{"bambora with a recurrence_token", setTokens(bamboraUns, "bambora.creditcard",
			map[string]any{"payment_token": "sandbox-pay", "recurrence_token": "sandbox-rec"})},
		{"bambora without payment_token", setTokens(bamboraUns, "bambora.creditcard", map[string]any{})},
		{"bambora with an empty payment_token", setTokens(bamboraUns, "bambora.creditcard", map[string]any{"payment_token": ""})},
		{"bambora token with a space", setTokens(bamboraUns, "bambora.creditcard", map[string]any{"payment_token": "sandbox-a b"})},
		{"bambora without customer", edit(t, bamboraUns, func(m map[string]any) { delete(obj(m, "session"), "customer") })},
		{"bambora without tokens", edit(t, bamboraUns, func(m map[string]any) { delete(obj(m, "session", "customer"), "tokens") })},
		{"bambora with tokens only for payex", edit(t, bamboraUns, func(m map[string]any) {
			obj(m, "session", "customer")["tokens"] = map[string]any{"payex.creditcard": map[string]any{"payment_token": "sandbox-ok-1"}}
		})},
		{"dintero_psp without customer", edit(t, pspRec, func(m map[string]any) { delete(obj(m, "session"), "customer") })},
		{"dintero_psp without tokens", edit(t, pspRec, func(m map[string]any) { delete(obj(m, "session", "customer"), "tokens") })},
		{"dintero_psp with tokens only for bambora", edit(t, pspRec, func(m map[string]any) {
			obj(m, "session", "customer")["tokens"] = map[string]any{"bambora.creditcard": map[string]any{"payment_token": "sandbox-ok-1"}}
		})},
		{"dintero_psp with an empty payment_token", setTokens(pspRec, "dintero_psp.creditcard", map[string]any{"payment_token": ""})},
		{"dintero_psp token too long", setTokens(pspRec, "dintero_psp.creditcard", map[string]any{"payment_token": strings.Repeat("t", 513)})},
		{"payex unscheduled with an empty payment_token", setTokens(payexUns, "payex.creditcard", map[string]any{"payment_token": ""})},
		{"payex unscheduled token with a space", setTokens(payexUns, "payex.creditcard", map[string]any{"payment_token": "sandbox-a b"})},
		{"dintero_psp recurring with only a recurrence_token", setTokens(pspRec, "dintero_psp.creditcard", map[string]any{"recurrence_token": "sandbox-rec"})},
		{"token too long", setTokens(payexRec, "payex.creditcard", map[string]any{"recurrence_token": strings.Repeat("x", 513)})},
		{"token with a control character", setTokens(payexRec, "payex.creditcard", map[string]any{"recurrence_token": "sandbox-a\u0000b"})},
		{"token with a space", setTokens(payexRec, "payex.creditcard", map[string]any{"recurrence_token": "sandbox-a b"})},
		{"token not ASCII", setTokens(payexRec, "payex.creditcard", map[string]any{"recurrence_token": "sandbox-æ"})},
		{"unused payment_token with a space", setTokens(payexRec, "payex.creditcard",
			map[string]any{"recurrence_token": "sandbox-ok", "payment_token": "sandbox-a b"})},

		// Session.
		{"callback_url over http", with(func(m map[string]any) { obj(m, "session", "url")["callback_url"] = "http://example.com/callback" })},
		{"callback_url relative", with(func(m map[string]any) { obj(m, "session", "url")["callback_url"] = "/callback" })},
		{"callback_url without a host", with(func(m map[string]any) { obj(m, "session", "url")["callback_url"] = "https:///callback" })},
		{"expires_at not a date-time", with(func(m map[string]any) { obj(m, "session")["expires_at"] = "tomorrow" })},
		{"expires_at without a zone", with(func(m map[string]any) { obj(m, "session")["expires_at"] = "2026-08-01T12:00:00" })},
		{"expires_at with a space", with(func(m map[string]any) { obj(m, "session")["expires_at"] = "2026-08-01 12:00:00Z" })},
	})
}

func TestSessionRequestValid(t *testing.T) {
	sch := compiled(t)[sessionRequest]
	var cases []bodyCase
	for name, b := range bodies(t, "cit", 3) {
		cases = append(cases, bodyCase{name, b})
	}
	slices.SortFunc(cases, func(a, b bodyCase) int { return strings.Compare(a.name, b.name) })
	payex := body(t, "cit", "payex_creditcard.json")
	with := func(f func(m map[string]any)) []byte { return edit(t, payex, f) }
	cases = append(cases, []bodyCase{
		{"no customer", with(func(m map[string]any) { delete(m, "customer") })},
		{"customer without tokens", with(func(m map[string]any) { delete(obj(m, "customer"), "tokens") })},
		{"no callback_url", with(func(m map[string]any) { delete(obj(m, "url"), "callback_url") })},
		{"http URLs to loopback (sandbox tests)", with(func(m map[string]any) {
			obj(m, "url")["callback_url"] = "http://127.0.0.1:8080/dintero/callback?method=GET"
			obj(m, "url")["return_url"] = "http://localhost:3000/thanks"
		})},
		{"items", with(func(m map[string]any) {
			obj(m, "order")["items"] = []any{
				map[string]any{"line_id": "1", "amount": 20000}, map[string]any{"line_id": "2", "amount": 9990},
			}
		})},
		{"unmodelled fields", with(func(m map[string]any) {
			m["expires_at"] = "2026-12-01T00:00:00Z"
			m["configuration"] = map[string]any{"payex": map[string]any{"creditcard": map[string]any{"no_cvc": true}}}
			m["metadata"] = map[string]any{"ext_order": 42}
		})},
		{"two providers", with(func(m map[string]any) {
			obj(m, "customer", "tokens")["dintero_psp.creditcard"] = map[string]any{"payment_token": "sandbox-ok-2"}
		})},
		{"empty recurrence_token", with(func(m map[string]any) {
			obj(m, "customer", "tokens")["payex.creditcard"] = map[string]any{"payment_token": "sandbox-ok-2", "recurrence_token": ""}
		})},
	}...)
	agree(t, sch, decodeSession, true, cases)
}

func TestSessionRequestInvalid(t *testing.T) {
	sch := compiled(t)[sessionRequest]
	payex := body(t, "cit", "payex_creditcard.json")
	with := func(f func(m map[string]any)) []byte { return edit(t, payex, f) }
	setTokenValue := func(tok any) []byte {
		return with(func(m map[string]any) { obj(m, "customer", "tokens")["payex.creditcard"] = tok })
	}
	setToken := func(tok map[string]any) []byte { return setTokenValue(tok) }
	agree(t, sch, decodeSession, false, []bodyCase{
		{"array", []byte("[]")},
		{"empty object", []byte("{}")},

		// URLs.
		{"no url", with(func(m map[string]any) { delete(m, "url") })},
		{"url not an object", with(func(m map[string]any) { m["url"] = "https://example.com" })},
		{"no return_url", with(func(m map[string]any) { delete(obj(m, "url"), "return_url") })},
		{"empty return_url", with(func(m map[string]any) { obj(m, "url")["return_url"] = "" })},
		{"relative return_url", with(func(m map[string]any) { obj(m, "url")["return_url"] = "/thanks" })},
		{"return_url of another scheme", with(func(m map[string]any) { obj(m, "url")["return_url"] = "ftp://example.com/x" })},
		{"callback_url without a host", with(func(m map[string]any) { obj(m, "url")["callback_url"] = "https:///callback" })},
		{"callback_url not a string", with(func(m map[string]any) { obj(m, "url")["callback_url"] = 1 })},

		// profile_id.
		{"no profile_id", with(func(m map[string]any) { delete(m, "profile_id") })},
		{"empty profile_id", with(func(m map[string]any) { m["profile_id"] = "" })},
		{"profile_id with a newline", with(func(m map[string]any) { m["profile_id"] = "a\nb" })},
		{"profile_id of 256 bytes", with(func(m map[string]any) { m["profile_id"] = strings.Repeat("p", 256) })},
		{"profile_id not a string", with(func(m map[string]any) { m["profile_id"] = 7 })},

		// Order: the charge rules, under "order".
		{"no order", with(func(m map[string]any) { delete(m, "order") })},
		{"fractional amount", with(func(m map[string]any) { obj(m, "order")["amount"] = 299.9 })},
		{"amount as string", with(func(m map[string]any) { obj(m, "order")["amount"] = "29990" })},
		{"zero amount", with(func(m map[string]any) { obj(m, "order")["amount"] = 0 })},
		{"bad currency", with(func(m map[string]any) { obj(m, "order")["currency"] = "nok" })},
		{"no merchant_reference", with(func(m map[string]any) { delete(obj(m, "order"), "merchant_reference") })},
		{"merchant_reference with a tab", with(func(m map[string]any) { obj(m, "order")["merchant_reference"] = "a\tb" })},

		// Tokens.
		{"recurrence_token", setToken(map[string]any{"payment_token": "sandbox-p", "recurrence_token": "sandbox-r"})},
		{"only a recurrence_token", setToken(map[string]any{"recurrence_token": "sandbox-r"})},
		{"empty payment_token", setToken(map[string]any{"payment_token": ""})},
		{"token with a space", setToken(map[string]any{"payment_token": "sandbox-a b"})},
		{"token too long", setToken(map[string]any{"payment_token": strings.Repeat("t", 513)})},
		{"token not a string", setToken(map[string]any{"payment_token": 42})},
		{"no payment_token", setToken(map[string]any{})},
		{"tokens entry not an object", setTokenValue("sandbox-p")},
		{"tokens as array", with(func(m map[string]any) { obj(m, "customer")["tokens"] = []any{} })},
		{"customer as string", with(func(m map[string]any) { m["customer"] = "c" })},
		{"email as number", with(func(m map[string]any) { obj(m, "customer")["email"] = 1 })},
		{"metadata as string", with(func(m map[string]any) { m["metadata"] = "m" })},
		{"return_url as number", with(func(m map[string]any) { obj(m, "url")["return_url"] = 1 })},
		{"nested token keys", with(func(m map[string]any) {
			obj(m, "customer")["tokens"] = map[string]any{
				"payex": map[string]any{"creditcard": map[string]any{"payment_token": "sandbox-p"}},
			}
		})},
		{"unknown provider", with(func(m map[string]any) {
			obj(m, "customer", "tokens")["vipps"] = map[string]any{"payment_token": "sandbox-p"}
		})},
	})
}

// TestResults marshals real result values, for every outcome with and
// without an error, and validates them; then checks that broken results
// fail.
func TestResults(t *testing.T) {
	schemas := compiled(t)
	at := time.Date(2026, 8, 1, 12, 0, 0, 123456789, time.UTC)
	retryAfter := at.Add(time.Hour).In(time.FixedZone("CEST", 2*3600))
	errorsByName := map[string]*messages.ResultError{
		"no error":   nil,
		"bare error": {Code: messages.CodeGaveUp, Message: "gave up after 5 deliveries"},
		"full error": {
			Code:       "DECLINED",
			Message:    "card declined",
			RetryCodes: []string{"RETRY_AFTER_DELAY"},
			RetryAfter: &retryAfter,
			Types:      []string{"INSUFFICIENT_FUNDS"},
			Fields:     []messages.FieldError{{Field: "session.order.amount", Message: "must be a positive integer"}},
		},
	}
	errNames := []string{"no error", "bare error", "full error"}

	var charge []bodyCase
	for _, o := range []messages.Outcome{messages.OutcomeSucceeded, messages.OutcomeDeclined, messages.OutcomeFailed, messages.OutcomeRejected,
		messages.OutcomeUnknown, messages.OutcomeNeedsReview, messages.OutcomeRetryScheduled} {
		for _, en := range errNames {
			full := messages.ChargeResult{
				MerchantReference:  "order-1",
				Outcome:            o,
				Status:             "AUTHORIZED",
				TransactionID:      "T00000000.3YkJXSdSnUBXcmQSzn7uJj",
				SessionID:          "P00000000.465U8CUzaPVpneu1wt8Wei",
				Amount:             29990,
				Currency:           "NOK",
				PaymentProductType: messages.ProductPayExCreditcard,
				Operation:          messages.OperationRecurringPurchase,
				Error:              errorsByName[en],
				Attempts:           2,
				Duplicate:          true,
				CompletedAt:        at,
				NextCheckAt:        &at,
				Attempt:            3,
				NextAttemptAt:      &at,
			}
			sparse := messages.ChargeResult{Outcome: o, Error: errorsByName[en]} // a rejected body without a reference
			charge = append(charge,
				bodyCase{fmt.Sprintf("%s/%s/full", o, en), marshal(t, full)},
				bodyCase{fmt.Sprintf("%s/%s/sparse", o, en), marshal(t, sparse)})
		}
	}
	var session []bodyCase
	for _, o := range []messages.Outcome{messages.OutcomeCreated, messages.OutcomeCompleted, messages.OutcomeFailed, messages.OutcomeRejected,
		messages.OutcomeUnknown, messages.OutcomeNeedsReview} {
		for _, en := range errNames {
			full := messages.SessionResult{
				MerchantReference:  "order-1",
				Outcome:            o,
				SessionID:          "P00000000.465U8CUzaPVpneu1wt8Wei",
				URL:                "https://checkout.dintero.com/v1/view/P00000000.465U8CUzaPVpneu1wt8Wei",
				TransactionID:      "T00000000.3YkJXSdSnUBXcmQSzn7uJj",
				Status:             "AUTHORIZED",
				Amount:             29990,
				Currency:           "NOK",
				PaymentProductType: messages.ProductBamboraCreditcard,
				Error:              errorsByName[en],
				Duplicate:          true,
				CompletedAt:        at,
				NextCheckAt:        &at,
			}
			sparse := messages.SessionResult{Outcome: o, Error: errorsByName[en]}
			session = append(session,
				bodyCase{fmt.Sprintf("%s/%s/full", o, en), marshal(t, full)},
				bodyCase{fmt.Sprintf("%s/%s/sparse", o, en), marshal(t, sparse)})
		}
	}
	for _, s := range []struct {
		name  string
		cases []bodyCase
	}{{chargeResult, charge}, {sessionResult, session}} {
		t.Run(s.name, func(t *testing.T) {
			for _, tc := range s.cases {
				t.Run(tc.name, func(t *testing.T) {
					if err := validate(schemas[s.name], tc.body); err != nil {
						t.Errorf("%s\n%v", tc.body, err)
					}
				})
			}
		})
	}

	// Broken results, made from a valid one, must fail.
	base := map[string][]byte{chargeResult: charge[len(charge)-2].body, sessionResult: session[len(session)-2].body}
	broken := []struct {
		name    string
		schemas []string
		f       func(m map[string]any)
	}{
		{"unknown outcome", []string{chargeResult, sessionResult}, func(m map[string]any) { m["outcome"] = "bogus" }},
		{"charge outcome in a session result", []string{sessionResult}, func(m map[string]any) { m["outcome"] = "succeeded" }},
		{"session outcome in a charge result", []string{chargeResult}, func(m map[string]any) { m["outcome"] = "created" }},
		{"dunning event in a session result", []string{sessionResult}, func(m map[string]any) { m["outcome"] = "retry_scheduled" }},
		{"next_check_at not a date-time", []string{chargeResult, sessionResult}, func(m map[string]any) { m["next_check_at"] = "later" }},
		{"no outcome", []string{chargeResult, sessionResult}, func(m map[string]any) { delete(m, "outcome") }},
		{"no merchant_reference", []string{chargeResult, sessionResult}, func(m map[string]any) { delete(m, "merchant_reference") }},
		{"no completed_at", []string{chargeResult, sessionResult}, func(m map[string]any) { delete(m, "completed_at") }},
		{"completed_at not a date-time", []string{chargeResult, sessionResult}, func(m map[string]any) { m["completed_at"] = "yesterday" }},
		{"amount as string", []string{chargeResult, sessionResult}, func(m map[string]any) { m["amount"] = "29990" }},
		{"fractional amount", []string{chargeResult, sessionResult}, func(m map[string]any) { m["amount"] = 299.9 }},
		{"duplicate as string", []string{chargeResult, sessionResult}, func(m map[string]any) { m["duplicate"] = "true" }},
		{"no attempts", []string{chargeResult}, func(m map[string]any) { delete(m, "attempts") }},
		{"negative attempts", []string{chargeResult}, func(m map[string]any) { m["attempts"] = -1 }},
		{"error without code", []string{chargeResult, sessionResult}, func(m map[string]any) { delete(obj(m, "error"), "code") }},
		{"error without message", []string{chargeResult, sessionResult}, func(m map[string]any) { delete(obj(m, "error"), "message") }},
		{"retry_after not a date-time", []string{chargeResult, sessionResult}, func(m map[string]any) { obj(m, "error")["retry_after"] = "soon" }},
		{"retry_codes as string", []string{chargeResult, sessionResult}, func(m map[string]any) { obj(m, "error")["retry_codes"] = "DO_NOT_RETRY" }},
		{"field error without field", []string{chargeResult, sessionResult}, func(m map[string]any) {
			obj(m, "error")["fields"] = []any{map[string]any{"message": "required"}}
		}},
		{"url not absolute", []string{sessionResult}, func(m map[string]any) { m["url"] = "/view/P1" }},
		{"url as number", []string{sessionResult}, func(m map[string]any) { m["url"] = 1 }},
		{"status as number", []string{chargeResult, sessionResult}, func(m map[string]any) { m["status"] = 1 }},
		{"error as string", []string{chargeResult, sessionResult}, func(m map[string]any) { m["error"] = "declined" }},
	}
	for _, b := range broken {
		for _, name := range b.schemas {
			t.Run("broken/"+name+"/"+b.name, func(t *testing.T) {
				body := edit(t, base[name], b.f)
				if err := validate(schemas[name], body); err == nil {
					t.Errorf("schema accepts %s", body)
				}
			})
		}
	}
}

func marshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEnums checks the schemas' enums against the constants of package
// messages.
func TestEnums(t *testing.T) {
	outcomes := func(os ...messages.Outcome) []string {
		var s []string
		for _, o := range os {
			s = append(s, string(o))
		}
		return s
	}
	tests := []struct {
		file string
		path []string
		want []string
	}{
		{chargeRequest, []string{"$defs", "Payment", "properties", "payment_product_type"},
			[]string{messages.ProductPayExCreditcard, messages.ProductBamboraCreditcard, messages.ProductDinteroPSPCreditcard}},
		{chargeRequest, []string{"$defs", "Payment", "properties", "operation"},
			[]string{messages.OperationRecurringPurchase, messages.OperationUnscheduledPurchase}},
		{chargeResult, []string{"properties", "outcome"},
			outcomes(messages.OutcomeSucceeded, messages.OutcomeDeclined, messages.OutcomeFailed, messages.OutcomeRejected,
				messages.OutcomeUnknown, messages.OutcomeNeedsReview, messages.OutcomeRetryScheduled)},
		{sessionResult, []string{"properties", "outcome"},
			outcomes(messages.OutcomeCreated, messages.OutcomeCompleted, messages.OutcomeFailed, messages.OutcomeRejected,
				messages.OutcomeUnknown, messages.OutcomeNeedsReview)},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+strings.Join(tt.path, "/"), func(t *testing.T) {
			node := rawSchema(t, tt.file)
			for _, k := range tt.path {
				next, ok := node[k].(map[string]any)
				if !ok {
					t.Fatalf("no %q", k)
				}
				node = next
			}
			var got []string
			for _, v := range node["enum"].([]any) {
				got = append(got, v.(string))
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(got, want) {
				t.Errorf("enum = %q, want %q", got, want)
			}
		})
	}
	t.Run("session token providers", func(t *testing.T) {
		tok := rawSchema(t, sessionRequest)["$defs"].(map[string]any)["Customer"].(map[string]any)["properties"].(map[string]any)["tokens"].(map[string]any)
		got := slices.Sorted(maps.Keys(tok["properties"].(map[string]any)))
		want := slices.Sorted(slices.Values([]string{messages.ProductPayExCreditcard, messages.ProductBamboraCreditcard, messages.ProductDinteroPSPCreditcard}))
		if !slices.Equal(got, want) {
			t.Errorf("token keys = %q, want %q", got, want)
		}
	})
}

// TestSharedDefinitions checks that the definitions the two request
// schemas (and the two result schemas) share are the same.
func TestSharedDefinitions(t *testing.T) {
	pairs := []struct {
		a, b string
		defs []string
	}{
		{chargeRequest, sessionRequest, []string{"Order", "MerchantReference", "OrderItem", "ShippingOption", "Token"}},
		{chargeResult, sessionResult, []string{"ResultError", "FieldError"}},
	}
	for _, p := range pairs {
		da, db := rawSchema(t, p.a)["$defs"].(map[string]any), rawSchema(t, p.b)["$defs"].(map[string]any)
		for _, d := range p.defs {
			if da[d] == nil || !reflect.DeepEqual(da[d], db[d]) {
				t.Errorf("$defs/%s differs between %s and %s", d, p.a, p.b)
			}
		}
	}
}

// Properties a request schema documents that the Go types do not model
// (Dintero fields forwarded unchanged), as JSON paths. None yet.
var dinteroOnly = map[string][]string{}

// TestSchemasMatchTypes walks the JSON names of the Go types and the
// properties of the schemas side by side: every field must be a property of
// the schema, of a matching JSON type, and every property a field (or
// listed in dinteroOnly). For results, "required" must list exactly the
// fields encoding/json always writes (those without omitempty).
func TestSchemasMatchTypes(t *testing.T) {
	tests := []struct {
		file     string
		typ      reflect.Type
		exactReq bool
	}{
		{chargeRequest, reflect.TypeFor[messages.ChargeRequest](), false},
		{sessionRequest, reflect.TypeFor[messages.SessionRequest](), false},
		{chargeResult, reflect.TypeFor[messages.ChargeResult](), true},
		{sessionResult, reflect.TypeFor[messages.SessionResult](), true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			root := rawSchema(t, tt.file)
			d := &drift{root: root, exactRequired: tt.exactReq, allow: dinteroOnly[tt.file]}
			d.walk("", tt.typ, []map[string]any{root})
			for _, p := range d.problems {
				t.Error(p)
			}
			if d.structs < 3 {
				t.Errorf("walked only %d structs", d.structs)
			}
		})
	}

	// The checker itself finds drift.
	t.Run("detects drift", func(t *testing.T) {
		type extraField struct {
			messages.ChargeResult
			Extra string `json:"extra"`
		}
		type missingField struct {
			MerchantReference string           `json:"merchant_reference"`
			Outcome           messages.Outcome `json:"outcome"`
			Amount            string           `json:"amount"` // wrong type too
		}
		root := rawSchema(t, chargeResult)
		for _, c := range []struct {
			name string
			typ  reflect.Type
			want []string // in the problems
		}{
			{"extra field", reflect.TypeFor[extraField](), []string{`"extra"`}},
			{"missing fields and a wrong type", reflect.TypeFor[missingField](), []string{`"attempts"`, `"amount"`}},
		} {
			d := &drift{root: root, exactRequired: true}
			d.walk("", c.typ, []map[string]any{root})
			all := strings.Join(d.problems, "\n")
			for _, w := range c.want {
				if !strings.Contains(all, w) {
					t.Errorf("%s: problems do not mention %s:\n%s", c.name, w, all)
				}
			}
		}
	})
}

type drift struct {
	root          map[string]any
	exactRequired bool
	allow         []string
	problems      []string
	structs       int
}

func (d *drift) problem(format string, args ...any) {
	d.problems = append(d.problems, fmt.Sprintf(format, args...))
}

// resolve returns node and everything it pulls in through $ref (local
// references only) and allOf, but not the conditional if/then branches.
func (d *drift) resolve(nodes []map[string]any) []map[string]any {
	var out []map[string]any
	var add func(n map[string]any, depth int)
	add = func(n map[string]any, depth int) {
		if n == nil || depth > 16 {
			return
		}
		out = append(out, n)
		if ref, ok := n["$ref"].(string); ok {
			add(d.lookup(ref), depth+1)
		}
		if all, ok := n["allOf"].([]any); ok {
			for _, a := range all {
				m, _ := a.(map[string]any)
				add(m, depth+1)
			}
		}
	}
	for _, n := range nodes {
		add(n, 0)
	}
	return out
}

func (d *drift) lookup(ref string) map[string]any {
	ptr, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		d.problem("reference %q is not local", ref)
		return nil
	}
	node := d.root
	for _, k := range strings.Split(ptr, "/") {
		next, ok := node[k].(map[string]any)
		if !ok {
			d.problem("reference %q does not resolve", ref)
			return nil
		}
		node = next
	}
	return node
}

var timeType = reflect.TypeFor[time.Time]()

// walk compares the Go type t at the JSON path with the schema nodes that
// describe it.
func (d *drift) walk(path string, t reflect.Type, nodes []map[string]any) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	nodes = d.resolve(nodes)
	where := path
	if where == "" {
		where = "(root)"
	}
	want := jsonType(t)
	typed := false
	for _, n := range nodes {
		got, ok := n["type"].(string)
		if ok && want != "" && got != want {
			d.problem("%s: schema type %q, Go type %s encodes as %q", where, got, t, want)
		}
		_, enum := n["enum"]
		typed = typed || ok || enum
	}
	if !typed {
		d.problem("%s: schema gives no type or enum for Go type %s", where, t)
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == timeType {
			return
		}
		d.structs++
		props := make(map[string][]map[string]any)
		var required []string
		for _, n := range nodes {
			if p, ok := n["properties"].(map[string]any); ok {
				for name, s := range p {
					m, _ := s.(map[string]any)
					props[name] = append(props[name], m)
				}
			}
			if r, ok := n["required"].([]any); ok {
				for _, name := range r {
					required = append(required, name.(string))
				}
			}
		}
		fields := jsonFields(t)
		var alwaysWritten []string
		for _, name := range slices.Sorted(maps.Keys(fields)) {
			f := fields[name]
			if !f.omitempty {
				alwaysWritten = append(alwaysWritten, name)
			}
			ps, ok := props[name]
			if !ok {
				d.problem("%s: Go field %s.%s (%q) is not in the schema", where, t.Name(), f.goName, name)
				continue
			}
			d.walk(join(path, name), f.typ, ps)
		}
		for name := range props {
			if _, ok := fields[name]; !ok && !slices.Contains(d.allow, join(path, name)) {
				d.problem("%s: schema property %q is not a field of Go type %s", where, name, t)
			}
		}
		for _, name := range required {
			if _, ok := props[name]; !ok {
				d.problem("%s: required %q is not a property", where, name)
			}
		}
		if d.exactRequired {
			slices.Sort(required)
			required = slices.Compact(required)
			if !slices.Equal(required, alwaysWritten) {
				d.problem("%s: required = %q, but Go always writes %q", where, required, alwaysWritten)
			}
		}
	case reflect.Map:
		if t.Elem().Kind() == reflect.Interface {
			return
		}
		var elems []map[string]any
		for _, n := range nodes {
			if ap, ok := n["additionalProperties"].(map[string]any); ok {
				elems = append(elems, ap)
			}
			if p, ok := n["properties"].(map[string]any); ok {
				for _, s := range p {
					m, _ := s.(map[string]any)
					elems = append(elems, m)
				}
			}
		}
		if len(elems) == 0 {
			d.problem("%s: schema says nothing about the values of Go map %s", where, t)
		}
		for _, e := range elems {
			d.walk(path+"[*]", t.Elem(), []map[string]any{e})
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Interface {
			return
		}
		var items []map[string]any
		for _, n := range nodes {
			if it, ok := n["items"].(map[string]any); ok {
				items = append(items, it)
			}
		}
		if len(items) == 0 {
			d.problem("%s: schema has no items for Go slice %s", where, t)
		}
		d.walk(path+"[]", t.Elem(), items)
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// jsonType is the JSON Schema type encoding/json writes for t, or "" for
// any.
func jsonType(t reflect.Type) string {
	if t == timeType {
		return "string"
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	}
	return ""
}

type jsonField struct {
	goName    string
	typ       reflect.Type
	omitempty bool
}

// jsonFields maps the JSON names of t's fields to the fields, following
// embedded structs as encoding/json does (without its conflict rules,
// which the message types do not need).
func jsonFields(t reflect.Type) map[string]jsonField {
	out := make(map[string]jsonField)
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for n, jf := range jsonFields(f.Type) {
				out[n] = jf
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = jsonField{goName: f.Name, typ: f.Type, omitempty: slices.Contains(strings.Split(opts, ","), "omitempty")}
	}
	return out
}

// TestMerchantReferenceCharacters checks, character by character, that the
// schema's merchant_reference pattern agrees with the decoder about control
// characters and leading, trailing and inner white space.
func TestMerchantReferenceCharacters(t *testing.T) {
	c := jsonschema.NewCompiler()
	data, err := fs.ReadFile(schema.FS, chargeRequest)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	id := schemaIDs[chargeRequest]
	if err := c.AddResource(id, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(id + "#/$defs/MerchantReference")
	if err != nil {
		t.Fatal(err)
	}
	const tmpl = `{"session":{"order":{"amount":1,"currency":"NOK","merchant_reference":%s},` +
		`"customer":{"tokens":{"dintero_psp.creditcard":{"payment_token":"t"}}}},` +
		`"payment":{"payment_product_type":"dintero_psp.creditcard","operation":"unscheduled_purchase"}}`
	runes := []rune{0xFEFF, 0xFFFD, 0x1F600, 0x10FFFF}
	for r := rune(0); r <= 0x3100; r++ {
		if r < 0xD800 || r > 0xDFFF {
			runes = append(runes, r)
		}
	}
	checked := 0
	for _, r := range runes {
		for _, ref := range []string{string(r) + "x", "x" + string(r), "x" + string(r) + "x"} {
			js := marshal(t, ref)
			_, derr := messages.DecodeChargeRequest(fmt.Appendf(nil, tmpl, js))
			serr := sch.Validate(ref)
			if (derr == nil) != (serr == nil) {
				t.Errorf("merchant_reference %s: decoder error %v, schema error %v", js, derr, serr)
			}
			checked++
		}
	}
	if checked < 3*0x3000 {
		t.Errorf("checked only %d references", checked)
	}
}

// TestKnownDifferences pins the differences the request schemas' descriptions
// list: rules only the decoder enforces, and the few places where the schema
// is stricter. If one of these starts to fail, update the description.
func TestKnownDifferences(t *testing.T) {
	sch := compiled(t)[chargeRequest]
	payexRec := body(t, "seed", "payex_creditcard-recurring_purchase.json")
	with := func(f func(m map[string]any)) []byte { return edit(t, payexRec, f) }
	tests := []struct {
		name         string
		body         []byte
		schemaAccept bool // and the decoder does the opposite
	}{
		{"items not summing", with(func(m map[string]any) { item0(m)["amount"] = 1 }), true},
		{"vat_amount above the amount", with(func(m map[string]any) { order(m)["vat_amount"] = 30000 }), true},
		{"duplicate line_id", with(func(m map[string]any) {
			order(m)["items"] = []any{map[string]any{"line_id": "1", "amount": 14995}, map[string]any{"line_id": "1", "amount": 14995}}
		}), true},
		{"amount with a fraction of zero", bytes.Replace(payexRec, []byte(`"amount": 29990,`), []byte(`"amount": 29990.0,`), 1), true},
		{"repeated key", bytes.Replace(payexRec, []byte(`"currency": "NOK",`), []byte(`"currency": "SEK", "currency": "NOK",`), 1), true},
		{"key in another case", with(func(m map[string]any) { order(m)["Currency"] = "NOK" }), true},
		{"merchant_reference of 255 characters, 510 bytes", with(func(m map[string]any) {
			order(m)["merchant_reference"] = strings.Repeat("å", 255)
		}), true},
		{"callback_url to localhost", with(func(m map[string]any) { obj(m, "session", "url")["callback_url"] = "https://localhost/cb" }), true},
		{"body over 64 KiB", with(func(m map[string]any) {
			obj(m, "session")["metadata"] = map[string]any{"ext_pad": strings.Repeat("x", messages.MaxRequestBytes)}
		}), true},
		{"null url and vat_amount", with(func(m map[string]any) {
			obj(m, "session")["url"] = nil
			order(m)["vat_amount"] = nil
		}), false},
		{"expires_at with a comma", with(func(m map[string]any) { obj(m, "session")["expires_at"] = "2026-08-01T12:00:00,5Z" }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serr, derr := validate(sch, tt.body), decodeCharge(tt.body)
			if (serr == nil) != tt.schemaAccept {
				t.Errorf("schema error %v, want accepted = %v", serr, tt.schemaAccept)
			}
			if (derr == nil) == tt.schemaAccept {
				t.Errorf("decoder error %v, want accepted = %v", derr, !tt.schemaAccept)
			}
		})
	}
}
