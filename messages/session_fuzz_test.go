package messages_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/payworker/payworker/messages"
)

// FuzzDecodeSessionRequest checks that DecodeSessionRequest never panics,
// always explains a refusal without showing a token, and that what it
// accepts stays valid when encoded again. The guide's bodies are the seeds.
func FuzzDecodeSessionRequest(f *testing.F) {
	for _, name := range citFiles {
		f.Add(cit(f, name))
	}
	f.Add([]byte(`{"url":{"return_url":"http://a"},"order":{"amount":1,"currency":"NOK","merchant_reference":"r"},"profile_id":"p"}`))
	f.Add([]byte(`{"url":{"return_url":"https://a/"},"order":{"amount":1,"currency":"NOK","merchant_reference":"r","items":[{"amount":1}]},` +
		`"customer":{"tokens":{"payex.creditcard":{"payment_token":"sandbox-t","recurrence_token":"sandbox-r"}}},"profile_id":"p"}`))
	f.Add([]byte(`{"order":{"amount":"1"}}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := messages.DecodeSessionRequest(data)
		ref := messages.SessionMerchantReference(data)
		if err != nil {
			if req != nil {
				t.Fatal("a request returned with an error")
			}
			var ve *messages.ValidationError
			if !errors.As(err, &ve) || len(ve.Fields) == 0 {
				t.Fatalf("error %T %v is not a non-empty *ValidationError", err, err)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			if strings.Contains(err.Error(), "sandbox-") {
				t.Fatalf("error shows a token: %v", err)
			}
			return
		}
		if req == nil {
			t.Fatal("no request and no error")
		}
		if err := req.Validate(); err != nil {
			t.Fatalf("decoded request does not validate: %v", err)
		}
		if ref != req.Order.MerchantReference {
			t.Fatalf("SessionMerchantReference = %q, decoded %q", ref, req.Order.MerchantReference)
		}
		out, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var again messages.SessionRequest
		if err := json.Unmarshal(out, &again); err != nil {
			t.Fatalf("unmarshal %s: %v", out, err)
		}
		if err := again.Validate(); err != nil {
			t.Fatalf("re-encoded request does not validate: %v\n%s", err, out)
		}
		if !sameOrder(again.Order, req.Order) {
			t.Fatalf("order changed on re-encoding: %+v, was %+v", again.Order, req.Order)
		}
	})
}
