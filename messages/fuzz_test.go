package messages_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/payworker/payworker/messages"
)

// FuzzDecodeChargeRequest checks that DecodeChargeRequest never panics,
// always explains a refusal, and that what it accepts stays valid when
// encoded again. The committed corpus is in
// testdata/fuzz/FuzzDecodeChargeRequest; the seed bodies are added too.
func FuzzDecodeChargeRequest(f *testing.F) {
	for _, name := range seedFiles {
		f.Add(seed(f, name))
	}
	f.Add([]byte(`{"session":{"order":{"amount":1,"currency":"NOK","merchant_reference":"r",` +
		`"items":[{"amount":1,"line_id":"a"}],"shipping_option":{"amount":0}},` +
		`"customer":{"tokens":{"bambora.creditcard":{"payment_token":"t"}}}},` +
		`"payment":{"payment_product_type":"bambora.creditcard","operation":"recurring_purchase"}}`))
	f.Add([]byte(`{"session":{"order":{"amount":"1"}}}`))
	f.Add([]byte(`{"a":1,"a":2}`))
	f.Add([]byte(`[[[[[[[[[[`))

	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := messages.DecodeChargeRequest(data)
		ref := messages.MerchantReference(data) // must not panic either
		fp, fpErr := messages.Fingerprint(data)
		if err != nil {
			if req != nil {
				t.Fatal("a request returned with an error")
			}
			var ve *messages.ValidationError
			if !errors.As(err, &ve) || len(ve.Fields) == 0 {
				t.Fatalf("error %T %v is not a non-empty *ValidationError", err, err)
			}
			for _, fe := range ve.Fields {
				if fe.Field == "" || fe.Message == "" {
					t.Fatalf("empty field or message in %v", err)
				}
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		if req == nil {
			t.Fatal("no request and no error")
		}
		if err := req.Validate(); err != nil {
			t.Fatalf("decoded request does not validate: %v", err)
		}
		if ref != req.Session.Order.MerchantReference {
			t.Fatalf("MerchantReference = %q, decoded %q", ref, req.Session.Order.MerchantReference)
		}
		if fpErr != nil || len(fp) != 64 {
			t.Fatalf("Fingerprint of an accepted body = %q, %v", fp, fpErr)
		}

		// Encoded again, the request must still be accepted.
		out, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		if len(out) > messages.MaxRequestBytes {
			// HTML escaping can make the encoding longer than the input;
			// the size limit aside, the request must still validate.
			var again messages.ChargeRequest
			if err := json.Unmarshal(out, &again); err != nil {
				t.Fatalf("unmarshal %s: %v", out, err)
			}
			if err := again.Validate(); err != nil {
				t.Fatalf("re-encoded request does not validate: %v\n%s", err, out)
			}
			return
		}
		again, err := messages.DecodeChargeRequest(out)
		if err != nil {
			t.Fatalf("re-encoded request is refused: %v\n%s", err, out)
		}
		if !sameOrder(again.Session.Order, req.Session.Order) {
			t.Fatalf("order changed on re-encoding: %+v, was %+v", again.Session.Order, req.Session.Order)
		}
	})
}

// sameOrder compares the fields of an order that re-encoding must keep.
func sameOrder(a, b messages.Order) bool {
	return a.Amount == b.Amount && a.Currency == b.Currency &&
		a.MerchantReference == b.MerchantReference && len(a.Items) == len(b.Items)
}
