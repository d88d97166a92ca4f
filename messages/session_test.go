package messages_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/payworker/payworker/messages"
)

// citFiles are the guide's three customer-initiated session bodies.
var citFiles = []string{"payex_creditcard.json", "bambora_creditcard.json", "dintero_psp_creditcard.json"}

func cit(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "cit", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func sessionTokens(m map[string]any) map[string]any { return obj(m, "customer", "tokens") }

func TestDecodeSessionRequestValid(t *testing.T) {
	payex := cit(t, citFiles[0])
	type tc struct {
		name string
		body []byte
	}
	var tests []tc
	for _, name := range citFiles {
		tests = append(tests, tc{"guide " + name, cit(t, name)})
	}
	tests = append(tests,
		tc{"no customer", edit(t, payex, func(m map[string]any) { delete(m, "customer") })},
		tc{"customer without tokens", edit(t, payex, func(m map[string]any) { delete(obj(m, "customer"), "tokens") })},
		tc{"no callback_url", edit(t, payex, func(m map[string]any) { delete(obj(m, "url"), "callback_url") })},
		tc{"http callback_url to loopback (sandbox tests)", edit(t, payex, func(m map[string]any) {
			obj(m, "url")["callback_url"] = "http://127.0.0.1:8080/dintero/callback?method=GET"
			obj(m, "url")["return_url"] = "http://localhost:3000/thanks"
		})},
		tc{"items summing to the amount", edit(t, payex, func(m map[string]any) {
			obj(m, "order")["items"] = []any{
				map[string]any{"line_id": "1", "amount": 20000}, map[string]any{"line_id": "2", "amount": 9990},
			}
		})},
		tc{"unmodelled fields", edit(t, payex, func(m map[string]any) {
			m["expires_at"] = "2026-12-01T00:00:00Z"
			m["configuration"] = map[string]any{"payex": map[string]any{"creditcard": map[string]any{"no_cvc": true}}}
			m["metadata"] = map[string]any{"ext_order": 42}
		})},
		tc{"two providers", edit(t, payex, func(m map[string]any) {
			sessionTokens(m)["dintero_psp.creditcard"] = map[string]any{"payment_token": "sandbox-ok-2"}
		})},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := messages.DecodeSessionRequest(tt.body)
			if err != nil {
				t.Fatalf("DecodeSessionRequest: %v", err)
			}
			if req.Order.MerchantReference != "merchants_order_number" || req.Order.Amount != 29990 ||
				req.Order.Currency != "NOK" || req.ProfileID != "default" || req.URL.ReturnURL == "" {
				t.Errorf("decoded %+v", req)
			}
			if err := req.Validate(); err != nil {
				t.Errorf("Validate of a decoded request: %v", err)
			}
		})
	}
	t.Run("guide fields", func(t *testing.T) {
		req, err := messages.DecodeSessionRequest(cit(t, "bambora_creditcard.json"))
		if err != nil {
			t.Fatal(err)
		}
		want := messages.SessionURL{ReturnURL: "https://example.com/thankyou", CallbackURL: "https://example.com/callback"}
		if req.URL != want {
			t.Errorf("url = %+v, want %+v", req.URL, want)
		}
		if req.Customer == nil || req.Customer.Email != "john.doe@example.com" ||
			req.Customer.Tokens[messages.ProductBamboraCreditcard].PaymentToken != "sandbox-ok-1" {
			t.Errorf("customer = %+v", req.Customer)
		}
	})
}

func TestDecodeSessionRequestInvalid(t *testing.T) {
	payex := cit(t, citFiles[0])
	with := func(f func(m map[string]any)) []byte { return edit(t, payex, f) }
	const tokPath = "customer.tokens.payex.creditcard"
	tests := []struct {
		name    string
		body    []byte
		fields  []string
		message string // in the first field's message, if set
	}{
		// Body.
		{"not JSON", []byte("{"), []string{"body"}, "truncated"},
		{"array", []byte("[]"), []string{"body"}, "must be a JSON object"},
		{"empty object", []byte("{}"), []string{"url", "order", "profile_id"}, "required"},
		{"too large", append(append([]byte(`{"x":"`), bytes.Repeat([]byte("a"), messages.MaxRequestBytes)...), `"}`...),
			[]string{"body"}, "larger than"},
		{"repeated key", []byte(`{"profile_id":"a","profile_id":"b","url":{"return_url":"https://e.x/"},"order":{"amount":1,"currency":"NOK","merchant_reference":"r"}}`),
			[]string{"profile_id"}, "duplicate key"},
		{"key in the wrong case", with(func(m map[string]any) { m["Profile_ID"] = "x" }),
			[]string{"Profile_ID"}, "case-sensitive"},

		// URLs.
		{"no url", with(func(m map[string]any) { delete(m, "url") }), []string{"url"}, "required"},
		{"url not an object", with(func(m map[string]any) { m["url"] = "https://example.com" }), []string{"url"}, "must be an object"},
		{"no return_url", with(func(m map[string]any) { delete(obj(m, "url"), "return_url") }), []string{"url.return_url"}, "required"},
		{"relative return_url", with(func(m map[string]any) { obj(m, "url")["return_url"] = "/thanks" }),
			[]string{"url.return_url"}, "absolute http or https URL"},
		{"return_url of another scheme", with(func(m map[string]any) { obj(m, "url")["return_url"] = "ftp://example.com/x" }),
			[]string{"url.return_url"}, "absolute http or https URL"},
		{"callback_url without a host", with(func(m map[string]any) { obj(m, "url")["callback_url"] = "https:///callback" }),
			[]string{"url.callback_url"}, "absolute http or https URL"},
		{"callback_url not a string", with(func(m map[string]any) { obj(m, "url")["callback_url"] = 1 }),
			[]string{"url.callback_url"}, "must be a string"},

		// profile_id.
		{"no profile_id", with(func(m map[string]any) { delete(m, "profile_id") }), []string{"profile_id"}, "required"},
		{"empty profile_id", with(func(m map[string]any) { m["profile_id"] = "" }), []string{"profile_id"}, "required"},
		{"profile_id with a newline", with(func(m map[string]any) { m["profile_id"] = "a\nb" }), []string{"profile_id"}, "control"},

		// Order: the charge rules, under "order".
		{"no order", with(func(m map[string]any) { delete(m, "order") }), []string{"order"}, "required"},
		{"fractional amount", with(func(m map[string]any) { obj(m, "order")["amount"] = 299.9 }),
			[]string{"order.amount"}, "integer number of minor units"},
		{"zero amount", with(func(m map[string]any) { obj(m, "order")["amount"] = 0 }), []string{"order.amount"}, "positive"},
		{"bad currency", with(func(m map[string]any) { obj(m, "order")["currency"] = "nok" }), []string{"order.currency"}, "three-letter"},
		{"no merchant_reference", with(func(m map[string]any) { delete(obj(m, "order"), "merchant_reference") }),
			[]string{"order.merchant_reference"}, "required"},
		{"items not summing", with(func(m map[string]any) {
			obj(m, "order")["items"] = []any{map[string]any{"amount": 100}}
		}), []string{"order.items"}, "sum to 100"},

		// Tokens.
		{"recurrence_token", with(func(m map[string]any) {
			sessionTokens(m)["payex.creditcard"] = map[string]any{"payment_token": tokenMarker + "p", "recurrence_token": tokenMarker + "r"}
		}), []string{tokPath + ".recurrence_token"}, "not allowed in a customer-initiated session"},
		{"only a recurrence_token", with(func(m map[string]any) {
			sessionTokens(m)["payex.creditcard"] = map[string]any{"recurrence_token": tokenMarker + "r"}
		}), []string{tokPath + ".recurrence_token", tokPath + ".payment_token"}, "not allowed"},
		{"empty payment_token", with(func(m map[string]any) {
			sessionTokens(m)["payex.creditcard"] = map[string]any{"payment_token": ""}
		}), []string{tokPath + ".payment_token"}, "required"},
		{"token with a space", with(func(m map[string]any) {
			sessionTokens(m)["payex.creditcard"] = map[string]any{"payment_token": tokenMarker + "a b"}
		}), []string{tokPath + ".payment_token"}, "printable ASCII"},
		{"token not a string", with(func(m map[string]any) {
			sessionTokens(m)["payex.creditcard"] = map[string]any{"payment_token": 42}
		}), []string{tokPath + ".payment_token"}, "must be a string"},
		{"nested token keys", with(func(m map[string]any) {
			m["customer"].(map[string]any)["tokens"] = map[string]any{
				"payex": map[string]any{"creditcard": map[string]any{"payment_token": tokenMarker + "p"}},
			}
		}), []string{"customer.tokens.payex"}, `not nested objects`},
		{"unknown provider", with(func(m map[string]any) {
			sessionTokens(m)["vipps"] = map[string]any{"payment_token": tokenMarker + "p"}
		}), []string{"customer.tokens.vipps"}, "unknown payment product type"},

		{"several problems", with(func(m map[string]any) {
			delete(m, "profile_id")
			obj(m, "order")["amount"] = "lots"
			obj(m, "url")["return_url"] = ""
		}), []string{"profile_id", "order.amount", "url.return_url"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := messages.DecodeSessionRequest(tt.body)
			if err == nil {
				t.Fatalf("DecodeSessionRequest accepted the body: %+v", req)
			}
			if req != nil {
				t.Error("DecodeSessionRequest returned a request with its error")
			}
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
			if !strings.HasPrefix(err.Error(), "invalid session request") {
				t.Errorf("error = %q, want it to start with \"invalid session request\"", err)
			}
			if strings.Contains(err.Error(), tokenMarker) {
				t.Errorf("error shows a token: %v", err)
			}
		})
	}
}

func TestSessionRequestValidate(t *testing.T) {
	valid := func() *messages.SessionRequest {
		return &messages.SessionRequest{
			URL:       messages.SessionURL{ReturnURL: "https://shop.example/thanks"},
			Order:     messages.Order{Amount: 100, Currency: "NOK", MerchantReference: "cit-1"},
			ProfileID: "default",
			Customer: &messages.Customer{Tokens: map[string]messages.CardTokens{
				messages.ProductDinteroPSPCreditcard: {PaymentToken: "sandbox-ok-1"},
			}},
		}
	}
	if err := valid().Validate(); err != nil {
		t.Fatalf("valid request: %v", err)
	}
	var nilReq *messages.SessionRequest
	if err := nilReq.Validate(); err == nil {
		t.Error("nil request validated")
	}
	bad := valid()
	bad.ProfileID = ""
	bad.Customer.Tokens[messages.ProductDinteroPSPCreditcard] = messages.CardTokens{RecurrenceToken: "sandbox-ok-r"}
	var ve *messages.ValidationError
	if err := bad.Validate(); !errors.As(err, &ve) || len(ve.Fields) != 3 {
		t.Errorf("Validate = %v, want profile_id and two token problems", err)
	}
	// The charge rules still say "charge request".
	if err := (&messages.ChargeRequest{}).Validate(); err == nil || !strings.HasPrefix(err.Error(), "invalid charge request") {
		t.Errorf("charge Validate = %v", err)
	}
}

func TestSessionMerchantReference(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		want string
	}{
		{"guide body", cit(t, citFiles[1]), "merchants_order_number"},
		{"invalid otherwise", []byte(`{"order":{"merchant_reference":"cit-7","amount":"x"},"url":3`), "cit-7"},
		{"a charge body is not a session body", seed(t, seedFiles[0]), ""},
		{"not JSON", []byte("nope"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := messages.SessionMerchantReference(tt.body); got != tt.want {
				t.Errorf("SessionMerchantReference = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSessionResultJSON(t *testing.T) {
	at := time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		res  messages.SessionResult
		want string
	}{
		{"created", messages.SessionResult{
			MerchantReference: "cit-1", Outcome: messages.OutcomeCreated, SessionID: "T12345678.s",
			URL: "https://checkout.dintero.com/v1/view/T12345678.s", Amount: 29990, Currency: "NOK", CompletedAt: at,
		}, `{"merchant_reference":"cit-1","outcome":"created","session_id":"T12345678.s","url":"https://checkout.dintero.com/v1/view/T12345678.s","amount":29990,"currency":"NOK","duplicate":false,"completed_at":"2026-11-25T15:00:00Z"}`},
		{"completed", messages.SessionResult{
			MerchantReference: "cit-1", Outcome: messages.OutcomeCompleted, SessionID: "T12345678.s", TransactionID: "T12345678.t",
			Status: "AUTHORIZED", Amount: 29990, Currency: "NOK", PaymentProductType: messages.ProductPayExCreditcard,
			Duplicate: true, CompletedAt: at,
		}, `{"merchant_reference":"cit-1","outcome":"completed","session_id":"T12345678.s","transaction_id":"T12345678.t","status":"AUTHORIZED","amount":29990,"currency":"NOK","payment_product_type":"payex.creditcard","duplicate":true,"completed_at":"2026-11-25T15:00:00Z"}`},
		{"failed", messages.SessionResult{
			MerchantReference: "cit-1", Outcome: messages.OutcomeFailed, Status: "FAILED",
			Error: &messages.ResultError{Code: "INSUFFICIENT_FUNDS", Message: "Insufficient funds"}, CompletedAt: at,
		}, `{"merchant_reference":"cit-1","outcome":"failed","status":"FAILED","amount":0,"error":{"code":"INSUFFICIENT_FUNDS","message":"Insufficient funds"},"duplicate":false,"completed_at":"2026-11-25T15:00:00Z"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.res)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("got  %s\nwant %s", b, tt.want)
			}
			var back messages.SessionResult
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, tt.res) {
				t.Errorf("round trip: %+v, want %+v", back, tt.res)
			}
		})
	}
	if s := messages.ResultSubject(messages.KindSession, messages.OutcomeCompleted); s != "payments.session.result.completed" {
		t.Errorf("subject %q", s)
	}
}

func TestSessionRequestLogValue(t *testing.T) {
	req, err := messages.DecodeSessionRequest(cit(t, citFiles[0]))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("session", "request", *req, "ptr", req)
	out := buf.String()
	if strings.Contains(out, "sandbox-ok-1") {
		t.Errorf("log shows the token: %s", out)
	}
	for _, want := range []string{`"merchant_reference":"merchants_order_number"`, `"profile_id":"default"`, `"payment_token":"[REDACTED]"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log %s lacks %s", out, want)
		}
	}
}
