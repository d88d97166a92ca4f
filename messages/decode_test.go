package messages_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/payworker/payworker/messages"
)

// Every card token in these tests starts with tokenMarker, so a test can
// check that no token reaches an error message.
const tokenMarker = "sandbox-"

// seedFiles are the guide's six MIT bodies in testdata/seed.
var seedFiles = []string{
	"payex_creditcard-recurring_purchase.json",
	"payex_creditcard-unscheduled_purchase.json",
	"bambora_creditcard-recurring_purchase.json",
	"bambora_creditcard-unscheduled_purchase.json",
	"dintero_psp_creditcard-recurring_purchase.json",
	"dintero_psp_creditcard-unscheduled_purchase.json",
}

func seed(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "seed", name))
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

func order(m map[string]any) map[string]any { return obj(m, "session", "order") }

func item0(m map[string]any) map[string]any {
	return order(m)["items"].([]any)[0].(map[string]any)
}

func tokens(m map[string]any) map[string]any { return obj(m, "session", "customer", "tokens") }

func TestDecodeChargeRequestValid(t *testing.T) {
	payexRec := seed(t, seedFiles[0])
	type tc struct {
		name string
		body []byte
	}
	var tests []tc
	for _, name := range seedFiles {
		tests = append(tests, tc{"seed/" + name, seed(t, name)})
	}
	tests = append(tests, []tc{
		{"payex recurring with both tokens", edit(t, payexRec, func(m map[string]any) {
			tokens(m)["payex.creditcard"] = map[string]any{"payment_token": "sandbox-ok-2", "recurrence_token": "sandbox-ok-3"}
		})},
		{"tokens of another provider as well", edit(t, payexRec, func(m map[string]any) {
			tokens(m)["bambora.creditcard"] = map[string]any{"payment_token": "sandbox-ok-2"}
		})},
		{"items and shipping sum to the amount", edit(t, payexRec, func(m map[string]any) {
			item0(m)["amount"] = 28990
			order(m)["shipping_option"] = map[string]any{"id": "bring", "amount": 1000}
		})},
		{"no items", edit(t, payexRec, func(m map[string]any) {
			delete(order(m), "items")
		})},
		{"minimal", []byte(`{"session":{"order":{"amount":1,"currency":"SEK","merchant_reference":"r"},
			"customer":{"tokens":{"dintero_psp.creditcard":{"payment_token":"sandbox-ok-1"}}}},
			"payment":{"payment_product_type":"dintero_psp.creditcard","operation":"unscheduled_purchase"}}`)},
		{"unmodeled fields and metadata", edit(t, payexRec, func(m map[string]any) {
			m["profile_id"] = "default"
			order(m)["shipping_address"] = map[string]any{"first_name": "Ola"}
			item0(m)["groups"] = []any{map[string]any{"id": "g1"}}
			obj(m, "session")["metadata"] = map[string]any{"ext_subscription_id": "42", "ext_n": json.Number("1.5e3")}
		})},
		{"expires_at and nulls", edit(t, payexRec, func(m map[string]any) {
			obj(m, "session")["expires_at"] = "2026-08-01T12:00:00+02:00"
			order(m)["vat_amount"] = nil
			obj(m, "session")["url"] = nil
		})},
		{"largest amount", edit(t, payexRec, func(m map[string]any) {
			order(m)["amount"] = 1_000_000_000_000
			delete(order(m), "items")
		})},
		{"merchant_reference of 255 bytes", edit(t, payexRec, func(m map[string]any) {
			order(m)["merchant_reference"] = strings.Repeat("å", 127) + "x"
		})},
	}...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := messages.DecodeChargeRequest(tt.body)
			if err != nil {
				t.Fatalf("DecodeChargeRequest: %v", err)
			}
			if req == nil || req.Session.Order.MerchantReference == "" || req.Payment.PaymentProductType == "" {
				t.Fatalf("decoded request is incomplete: %+v", req)
			}
			if err := req.Validate(); err != nil {
				t.Errorf("Validate of the decoded request: %v", err)
			}
		})
	}
}

func TestDecodeChargeRequestSeedTokens(t *testing.T) {
	// The guide's own token kinds, decoded into the struct.
	for _, name := range seedFiles {
		req, err := messages.DecodeChargeRequest(seed(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ct, ok := req.Session.Customer.Tokens[req.Payment.PaymentProductType]
		if !ok {
			t.Fatalf("%s: no tokens under %q", name, req.Payment.PaymentProductType)
		}
		wantRecurrence := req.Payment.PaymentProductType == messages.ProductPayExCreditcard &&
			req.Payment.Operation == messages.OperationRecurringPurchase
		if got := ct.RecurrenceToken != ""; got != wantRecurrence {
			t.Errorf("%s: recurrence_token present = %v, want %v", name, got, wantRecurrence)
		}
		if got := ct.PaymentToken != ""; got == wantRecurrence {
			t.Errorf("%s: payment_token present = %v, want %v", name, got, !wantRecurrence)
		}
	}
}

func TestDecodeChargeRequestInvalid(t *testing.T) {
	payexRec := seed(t, "payex_creditcard-recurring_purchase.json")
	payexUns := seed(t, "payex_creditcard-unscheduled_purchase.json")
	bamboraUns := seed(t, "bambora_creditcard-unscheduled_purchase.json")
	pspRec := seed(t, "dintero_psp_creditcard-recurring_purchase.json")
	with := func(f func(m map[string]any)) []byte { return edit(t, payexRec, f) }
	replace := func(old, new string) []byte {
		if !bytes.Contains(payexRec, []byte(old)) {
			t.Fatalf("seed has no %q", old)
		}
		return bytes.Replace(payexRec, []byte(old), []byte(new), 1)
	}
	const (
		tokPath   = "session.customer.tokens.payex.creditcard"
		recurPath = tokPath + ".recurrence_token"
	)
	deep := strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100)

	tests := []struct {
		name    string
		body    []byte
		fields  []string // every field reported, in any order
		message string   // part of the first field's message
	}{
		// The body as a whole.
		{"not JSON", []byte("hello"), []string{"body"}, "not valid JSON at offset 1"},
		{"empty", nil, []string{"body"}, "empty"},
		{"truncated", payexRec[:len(payexRec)/2], []string{"body"}, "truncated"},
		{"syntax error", replace(`"currency": "NOK",`, `"currency": "NOK",,`), []string{"body"}, "not valid JSON at offset"},
		{"1 MiB body", with(func(m map[string]any) {
			obj(m, "session")["metadata"] = map[string]any{"ext_pad": strings.Repeat("x", 1<<20)}
		}), []string{"body"}, "larger than 65536 bytes"},
		{"invalid UTF-8", replace(`"order-1"`, "\"order-\xff1\""), []string{"body"}, "not valid UTF-8"},
		{"array", append(append([]byte("["), payexRec...), ']'), []string{"body"}, "must be a JSON object, got array"},
		{"null", []byte("null"), []string{"body"}, "must be a JSON object, got null"},
		{"trailing data", append(bytes.Clone(payexRec), "{}"...), []string{"body"}, "unexpected data after the JSON value"},
		{"nested too deep", with(func(m map[string]any) {
			obj(m, "session")["metadata"] = json.RawMessage(deep)
		}), []string{"body"}, "nested more than 64 levels"},
		{"duplicate key", replace(`"amount": 29990,`, `"amount": 1, "amount": 29990,`), []string{"session.order.amount"}, "duplicate key"},
		{"key in another case", replace(`"amount": 29990,`, `"Amount": 29990,`), []string{"session.order.Amount"}, `did you mean "amount"`},

		// Wrong JSON types.
		{"amount as string", with(func(m map[string]any) { order(m)["amount"] = "29990" }),
			[]string{"session.order.amount"}, "must be an integer number of minor units"},
		{"amount as float", with(func(m map[string]any) { order(m)["amount"] = json.Number("299.5") }),
			[]string{"session.order.amount"}, "must be an integer number of minor units, got \"299.5\""},
		{"amount beyond int64", with(func(m map[string]any) { order(m)["amount"] = json.Number("9223372036854775808") }),
			[]string{"session.order.amount"}, "must be an integer number of minor units"},
		{"item amount as float", with(func(m map[string]any) { item0(m)["amount"] = json.Number("29990.0") }),
			[]string{"session.order.items[0].amount"}, "must be an integer number of minor units"},
		{"quantity as string", with(func(m map[string]any) { item0(m)["quantity"] = "1" }),
			[]string{"session.order.items[0].quantity"}, "must be a number, got string"},
		{"auto_capture as string", with(func(m map[string]any) { obj(m, "session", "configuration")["auto_capture"] = "false" }),
			[]string{"session.configuration.auto_capture"}, "must be true or false"},
		{"customer as string", with(func(m map[string]any) { obj(m, "session")["customer"] = "cust-1" }),
			[]string{"session.customer"}, "must be an object, got string"},
		{"tokens as array", with(func(m map[string]any) { obj(m, "session", "customer")["tokens"] = []any{} }),
			[]string{"session.customer.tokens"}, "must be an object, got array"},
		{"items as object", with(func(m map[string]any) { order(m)["items"] = map[string]any{} }),
			[]string{"session.order.items"}, "must be an array, got object"},
		{"token as number", with(func(m map[string]any) { tokens(m)["payex.creditcard"] = map[string]any{"recurrence_token": 7} }),
			[]string{recurPath}, "must be a string, got number"},

		// Missing parts.
		{"no session", []byte(`{"payment":{"payment_product_type":"payex.creditcard","operation":"recurring_purchase"}}`),
			[]string{"session"}, "required"},
		{"no order", with(func(m map[string]any) { delete(obj(m, "session"), "order") }),
			[]string{"session.order"}, "required"},
		{"no payment", with(func(m map[string]any) { delete(m, "payment") }),
			[]string{"payment"}, "required"},

		// The order.
		{"amount negative", with(func(m map[string]any) { order(m)["amount"] = -29990 }),
			[]string{"session.order.amount"}, "must be a positive integer (minor units)"},
		{"amount zero", with(func(m map[string]any) { order(m)["amount"] = 0 }),
			[]string{"session.order.amount"}, "must be a positive integer (minor units)"},
		{"amount null", with(func(m map[string]any) { order(m)["amount"] = nil }),
			[]string{"session.order.amount"}, "must be a positive integer (minor units)"},
		{"amount over the cap", with(func(m map[string]any) {
			order(m)["amount"] = 1_000_000_000_001
			delete(order(m), "items")
		}), []string{"session.order.amount"}, "must be at most 1000000000000"},
		{"missing merchant_reference", with(func(m map[string]any) { delete(order(m), "merchant_reference") }),
			[]string{"session.order.merchant_reference"}, "required"},
		{"merchant_reference with a newline", with(func(m map[string]any) { order(m)["merchant_reference"] = "order\n1" }),
			[]string{"session.order.merchant_reference"}, "control characters"},
		{"merchant_reference with a trailing space", with(func(m map[string]any) { order(m)["merchant_reference"] = "order-1 " }),
			[]string{"session.order.merchant_reference"}, "white space"},
		{"merchant_reference of 256 bytes", with(func(m map[string]any) { order(m)["merchant_reference"] = strings.Repeat("r", 256) }),
			[]string{"session.order.merchant_reference"}, "at most 255 bytes"},
		{"currency lower case", with(func(m map[string]any) { order(m)["currency"] = "nok" }),
			[]string{"session.order.currency"}, `got "nok"`},
		{"currency of two letters", with(func(m map[string]any) { order(m)["currency"] = "NO" }),
			[]string{"session.order.currency"}, "three-letter"},
		{"currency missing", with(func(m map[string]any) { delete(order(m), "currency") }),
			[]string{"session.order.currency"}, "required"},
		{"vat_amount above amount", with(func(m map[string]any) { order(m)["vat_amount"] = 30000 }),
			[]string{"session.order.vat_amount"}, "must not exceed the order amount 29990"},
		{"vat_amount negative", with(func(m map[string]any) { order(m)["vat_amount"] = -1 }),
			[]string{"session.order.vat_amount"}, "must not be negative"},
		{"items not summing", with(func(m map[string]any) { item0(m)["amount"] = 29000 }),
			[]string{"session.order.items"}, "amounts sum to 29000, order amount is 29990"},
		{"items and shipping not summing", with(func(m map[string]any) {
			item0(m)["amount"] = 28990
			order(m)["shipping_option"] = map[string]any{"amount": 500}
		}), []string{"session.order.items"}, "amounts sum to 29490 with shipping_option.amount 500, order amount is 29990"},
		{"negative item amount", with(func(m map[string]any) {
			order(m)["items"] = []any{
				map[string]any{"line_id": "1", "amount": -10},
				map[string]any{"line_id": "2", "amount": 30000},
			}
		}), []string{"session.order.items[0].amount"}, "must not be negative"},
		{"duplicate line_id", with(func(m map[string]any) {
			order(m)["items"] = []any{
				map[string]any{"line_id": "1", "amount": 14995},
				map[string]any{"line_id": "1", "amount": 14995},
			}
		}), []string{"session.order.items[1].line_id"}, `duplicate line_id "1" (also items[0])`},

		// Payment.
		{"unknown provider", with(func(m map[string]any) { obj(m, "payment")["payment_product_type"] = "klarna.klarna" }),
			[]string{"payment.payment_product_type"}, `unknown value "klarna.klarna"`},
		{"missing provider", with(func(m map[string]any) { delete(obj(m, "payment"), "payment_product_type") }),
			[]string{"payment.payment_product_type"}, "required"},
		{"unknown operation", with(func(m map[string]any) { obj(m, "payment")["operation"] = "purchase" }),
			[]string{"payment.operation"}, `unknown value "purchase"`},

		// Tokens.
		{"missing token", with(func(m map[string]any) { obj(m, "session", "customer")["tokens"] = map[string]any{} }),
			[]string{tokPath}, "required"},
		{"no customer", with(func(m map[string]any) { delete(obj(m, "session"), "customer") }),
			[]string{tokPath}, "required"},
		{"nested tokens object", with(func(m map[string]any) {
			obj(m, "session", "customer")["tokens"] = map[string]any{
				"payex": map[string]any{"creditcard": map[string]any{"recurrence_token": "sandbox-nested"}},
			}
		}), []string{tokPath}, `found key "payex"`},
		{"payex recurring with only a payment_token", with(func(m map[string]any) {
			tokens(m)["payex.creditcard"] = map[string]any{"payment_token": "sandbox-pay"}
		}), []string{recurPath}, "required for recurring_purchase"},
		{"payex unscheduled with only a recurrence_token", edit(t, payexUns, func(m map[string]any) {
			tokens(m)["payex.creditcard"] = map[string]any{"recurrence_token": "sandbox-rec"}
		}), []string{tokPath + ".payment_token"}, "required for unscheduled_purchase"},
		{"payex recurring with an empty recurrence_token", with(func(m map[string]any) {
			tokens(m)["payex.creditcard"] = map[string]any{"recurrence_token": ""}
		}), []string{recurPath}, "required"},
		{"bambora with a recurrence_token", edit(t, bamboraUns, func(m map[string]any) {
			tokens(m)["bambora.creditcard"] = map[string]any{"payment_token": "sandbox-pay", "recurrence_token": "sandbox-rec"}
		}), []string{"session.customer.tokens.bambora.creditcard.recurrence_token"},
			"bambora.creditcard has no recurrence tokens; use payment_token"},
		{"dintero_psp recurring with only a recurrence_token", edit(t, pspRec, func(m map[string]any) {
			tokens(m)["dintero_psp.creditcard"] = map[string]any{"recurrence_token": "sandbox-rec"}
		}), []string{
			"session.customer.tokens.dintero_psp.creditcard.recurrence_token",
			"session.customer.tokens.dintero_psp.creditcard.payment_token",
		}, "dintero_psp.creditcard has no recurrence tokens"},
		{"token too long", with(func(m map[string]any) {
			tokens(m)["payex.creditcard"] = map[string]any{"recurrence_token": tokenMarker + strings.Repeat("x", 600)}
		}), []string{recurPath}, "at most 512 bytes"},
		{"token with a control character", with(func(m map[string]any) {
			tokens(m)["payex.creditcard"] = map[string]any{"recurrence_token": tokenMarker + "a\u0000b"}
		}), []string{recurPath}, "printable ASCII"},
		{"token with a space", with(func(m map[string]any) {
			tokens(m)["payex.creditcard"] = map[string]any{"recurrence_token": tokenMarker + "a b"}
		}), []string{recurPath}, "printable ASCII"},

		// Session.
		{"callback_url over http", with(func(m map[string]any) {
			obj(m, "session", "url")["callback_url"] = "http://example.com/callback"
		}), []string{"session.url.callback_url"}, "absolute https URL"},
		{"callback_url relative", with(func(m map[string]any) { obj(m, "session", "url")["callback_url"] = "/callback" }),
			[]string{"session.url.callback_url"}, "absolute https URL"},
		{"callback_url to localhost", with(func(m map[string]any) {
			obj(m, "session", "url")["callback_url"] = "https://127.0.0.1:8443/callback"
		}), []string{"session.url.callback_url"}, "loopback"},
		{"expires_at not a date-time", with(func(m map[string]any) { obj(m, "session")["expires_at"] = "tomorrow" }),
			[]string{"session.expires_at"}, "RFC 3339"},

		// All problems at once.
		{"several problems", with(func(m map[string]any) {
			order(m)["amount"] = "lots"
			delete(order(m), "merchant_reference")
			obj(m, "payment")["operation"] = "purchase"
			tokens(m)["payex.creditcard"] = map[string]any{"payment_token": "sandbox-pay"}
		}), []string{"session.order.amount", "session.order.merchant_reference", "payment.operation"}, ""},
		{"several problems, no shape errors", with(func(m map[string]any) {
			order(m)["currency"] = "kr"
			item0(m)["amount"] = 1
			obj(m, "payment")["payment_product_type"] = "bambora.creditcard"
		}), []string{"session.order.currency", "session.order.items", "session.customer.tokens.bambora.creditcard"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := messages.DecodeChargeRequest(tt.body)
			if err == nil {
				t.Fatalf("DecodeChargeRequest accepted the body: %+v", req)
			}
			if req != nil {
				t.Errorf("DecodeChargeRequest returned a request with its error")
			}
			t.Log(err)
			var ve *messages.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error is %T, want *messages.ValidationError: %v", err, err)
			}
			var got []string
			for _, f := range ve.Fields {
				got = append(got, f.Field)
			}
			if !sameSet(got, tt.fields) {
				t.Errorf("fields = %q, want %q\nerror: %v", got, tt.fields, err)
			}
			if tt.message != "" && !strings.Contains(ve.Fields[0].Message, tt.message) {
				t.Errorf("message %q does not contain %q", ve.Fields[0].Message, tt.message)
			}
			if strings.Contains(err.Error(), tokenMarker) {
				t.Errorf("error shows a token: %v", err)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestValidationErrorError(t *testing.T) {
	err := &messages.ValidationError{Fields: []messages.FieldError{
		{Field: "session.order.amount", Message: "must be a positive integer (minor units)"},
		{Field: "payment.operation", Message: "required"},
	}}
	want := "invalid charge request: session.order.amount: must be a positive integer (minor units); payment.operation: required"
	if got := err.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestDecodeChargeRequestFieldOrder(t *testing.T) {
	// The same body gives the same problems in the same order.
	body := edit(t, seed(t, seedFiles[0]), func(m map[string]any) {
		obj(m, "session")["customer"] = map[string]any{"tokens": map[string]any{
			"b": 1, "a": 2, "c": "x", "payex.creditcard": map[string]any{"recurrence_token": 3},
		}}
	})
	_, first := messages.DecodeChargeRequest(body)
	if first == nil {
		t.Fatal("body accepted")
	}
	for range 20 {
		if _, err := messages.DecodeChargeRequest(body); err == nil || err.Error() != first.Error() {
			t.Fatalf("errors differ between runs:\n%v\n%v", first, err)
		}
	}
}

func TestValidateStruct(t *testing.T) {
	valid := func() *messages.ChargeRequest {
		return &messages.ChargeRequest{
			Session: messages.PaySession{
				Customer: &messages.Customer{Tokens: map[string]messages.CardTokens{
					messages.ProductBamboraCreditcard: {PaymentToken: "sandbox-ok-1"},
				}},
				Order: messages.Order{Amount: 100, Currency: "NOK", MerchantReference: "sub-1"},
			},
			Payment: messages.Payment{
				PaymentProductType: messages.ProductBamboraCreditcard,
				Operation:          messages.OperationRecurringPurchase,
			},
		}
	}
	tests := []struct {
		name   string
		change func(r *messages.ChargeRequest)
		fields []string
	}{
		{"valid", func(*messages.ChargeRequest) {}, nil},
		{"reference not UTF-8", func(r *messages.ChargeRequest) { r.Session.Order.MerchantReference = "a\xffb" },
			[]string{"session.order.merchant_reference"}},
		{"item amounts overflow", func(r *messages.ChargeRequest) {
			r.Session.Order.Items = []messages.OrderItem{{Amount: 1 << 62}, {Amount: 1 << 62}, {Amount: 1 << 62}}
		}, []string{"session.order.items"}},
		{"no tokens map", func(r *messages.ChargeRequest) { r.Session.Customer.Tokens = nil },
			[]string{"session.customer.tokens.bambora.creditcard"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := valid()
			tt.change(r)
			err := r.Validate()
			if tt.fields == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var ve *messages.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate = %v, want a *ValidationError", err)
			}
			var got []string
			for _, f := range ve.Fields {
				got = append(got, f.Field)
			}
			if !sameSet(got, tt.fields) {
				t.Errorf("fields = %q, want %q", got, tt.fields)
			}
		})
	}
	var nilReq *messages.ChargeRequest
	var ve *messages.ValidationError
	if err := nilReq.Validate(); !errors.As(err, &ve) {
		t.Errorf("nil request: Validate = %v, want a *ValidationError", err)
	}
}

func TestMerchantReference(t *testing.T) {
	payexRec := seed(t, seedFiles[0])
	tests := []struct {
		name string
		body []byte
		want string
	}{
		{"valid body", payexRec, "order-1"},
		{"otherwise invalid body", edit(t, payexRec, func(m map[string]any) {
			order(m)["amount"] = "lots"
			delete(m, "payment")
		}), "order-1"},
		{"truncated after the reference", []byte(`{"session":{"order":{"merchant_reference":"sub-42","amount":`), "sub-42"},
		{"reference escaped", []byte(`{"session":{"order":{"merchant_reference":"sub\u002d42"}}}`), "sub-42"},
		{"after nested values", []byte(`{"a":[{"session":{"order":{"merchant_reference":"no"}}}],"session":{"x":{"order":{}},"order":{"items":[{"merchant_reference":"no"}],"merchant_reference":"yes"}}}`), "yes"},
		{"reference not a string", []byte(`{"session":{"order":{"merchant_reference":42}}}`), ""},
		{"reference at the wrong place", []byte(`{"session":{"merchant_reference":"no"},"merchant_reference":"no"}`), ""},
		{"reference with a control character", []byte(`{"session":{"order":{"merchant_reference":"a\r\nb"}}}`), ""},
		{"reference too long", []byte(`{"session":{"order":{"merchant_reference":"` + strings.Repeat("r", 256) + `"}}}`), ""},
		{"not JSON", []byte("hello"), ""},
		{"empty", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := messages.MerchantReference(tt.body); got != tt.want {
				t.Errorf("MerchantReference = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	compact := []byte(`{"session":{"order":{"amount":29990,"currency":"NOK","merchant_reference":"order-1"}},"payment":{"operation":"recurring_purchase","payment_product_type":"payex.creditcard"}}`)
	base, err := messages.Fingerprint(compact)
	if err != nil {
		t.Fatal(err)
	}
	if len(base) != 64 {
		t.Errorf("fingerprint %q is not hex SHA-256", base)
	}
	same := map[string]string{
		"indented": `{
  "session": {
    "order": {"amount": 29990, "currency": "NOK", "merchant_reference": "order-1"}
  },
  "payment": {"operation": "recurring_purchase", "payment_product_type": "payex.creditcard"}
}
`,
		"keys reordered": `{"payment":{"payment_product_type":"payex.creditcard","operation":"recurring_purchase"},"session":{"order":{"merchant_reference":"order-1","currency":"NOK","amount":29990}}}`,
		"string escapes": `{"session":{"order":{"amount":29990,"currency":"\u004eOK","merchant_reference":"order\u002d1"}},"payment":{"operation":"recurring_purchase","payment_product_type":"payex.creditcard"}}`,
	}
	for name, body := range same {
		t.Run(name, func(t *testing.T) {
			got, err := messages.Fingerprint([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			if got != base {
				t.Errorf("fingerprint %s, want %s", got, base)
			}
		})
	}
	different := map[string]string{
		"amount changed":    strings.Replace(string(compact), "29990", "29991", 1),
		"reference changed": strings.Replace(string(compact), "order-1", "order-2", 1),
		"operation changed": strings.Replace(string(compact), "recurring_purchase", "unscheduled_purchase", 1),
		"field added":       strings.Replace(string(compact), `"currency"`, `"vat_amount":0,"currency"`, 1),
	}
	for name, body := range different {
		t.Run(name, func(t *testing.T) {
			if body == string(compact) {
				t.Fatal("the test body did not change")
			}
			got, err := messages.Fingerprint([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			if got == base {
				t.Errorf("fingerprint did not change")
			}
		})
	}
	for name, body := range map[string]string{
		"not JSON":       "hello",
		"trailing data":  string(compact) + "{}",
		"duplicate keys": `{"a":1,"a":2}`,
		"invalid UTF-8":  "{\"a\":\"\xff\"}",
		"empty":          "",
	} {
		t.Run(name, func(t *testing.T) {
			if fp, err := messages.Fingerprint([]byte(body)); err == nil {
				t.Errorf("Fingerprint = %s, want an error", fp)
			}
		})
	}
}

func TestResultMsgID(t *testing.T) {
	tests := []struct {
		ref     string
		outcome messages.Outcome
		seq     uint64
		want    string
	}{
		{"order-1", messages.OutcomeSucceeded, 42, "order-1:succeeded:42"},
		{"order-1", messages.OutcomeRejected, 43, "order-1:rejected:43"},
		{"", messages.OutcomeRejected, 7, "seq-7:rejected:7"},
		{"bad\nref", messages.OutcomeRejected, 8, "seq-8:rejected:8"},
		{strings.Repeat("r", 256), messages.OutcomeFailed, 9, "seq-9:failed:9"},
	}
	for _, tt := range tests {
		if got := messages.ResultMsgID(tt.ref, tt.outcome, tt.seq); got != tt.want {
			t.Errorf("ResultMsgID(%q, %q, %d) = %q, want %q", tt.ref, tt.outcome, tt.seq, got, tt.want)
		}
	}
}

// BenchmarkDecodeChargeRequest measures a seed body and a body near the size
// limit, made of 2000 metadata entries.
func BenchmarkDecodeChargeRequest(b *testing.B) {
	body := seed(b, seedFiles[0])
	large := edit(b, body, func(m map[string]any) {
		meta := map[string]any{}
		for i := range 2000 {
			meta[fmt.Sprintf("ext_key_%d", i)] = i
		}
		obj(m, "session")["metadata"] = meta
	})
	if len(large) > messages.MaxRequestBytes {
		b.Fatalf("large body is %d bytes", len(large))
	}
	for _, bm := range []struct {
		name string
		body []byte
	}{{"seed", body}, {"large", large}} {
		b.Run(bm.name, func(b *testing.B) {
			b.SetBytes(int64(len(bm.body)))
			for b.Loop() {
				if _, err := messages.DecodeChargeRequest(bm.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestDecodeChargeRequestManyProblems(t *testing.T) {
	body := edit(t, seed(t, seedFiles[0]), func(m map[string]any) {
		var items []any
		for range 300 {
			items = append(items, map[string]any{"amount": "1"})
		}
		order(m)["items"] = items
	})
	_, err := messages.DecodeChargeRequest(body)
	var ve *messages.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("DecodeChargeRequest = %v, want a *ValidationError", err)
	}
	if len(ve.Fields) != 101 {
		t.Fatalf("%d fields, want 100 and a summary", len(ve.Fields))
	}
	if last := ve.Fields[100]; last.Field != "body" || last.Message != "200 more problems not listed" {
		t.Errorf("last field = %+v", last)
	}
	if first := ve.Fields[0]; first.Field != "session.order.items[0].amount" {
		t.Errorf("first field = %+v", first)
	}
}

func TestFingerprintComparesNumbersByValue(t *testing.T) {
	a, err1 := messages.Fingerprint([]byte(`{"order":{"amount":29990}}`))
	b, err2 := messages.Fingerprint([]byte(`{ "order" : { "amount" : 29990.0 } }`))
	if err1 != nil || err2 != nil || a != b {
		t.Fatalf("fingerprints %s %s (%v %v): 29990 and 29990.0 are the same value", a, b, err1, err2)
	}
}
