package messages_test

import (
	"testing"

	"github.com/payworker/payworker/messages"
)

// BenchmarkFingerprint measures the fingerprint of a request body, which
// the worker computes for every delivery (the idempotency claim compares
// it); compare runs with benchstat.
func BenchmarkFingerprint(b *testing.B) {
	body := []byte(`{"session":{"customer":{"customer_id":"cust-1","email":"bench@example.com",` +
		`"tokens":{"payex.creditcard":{"payment_token":"sandbox-ok-1"}}},"order":{"amount":29900,"currency":"NOK",` +
		`"vat_amount":5980,"merchant_reference":"bench-1","items":[{"id":"item-1","line_id":"1","description":"order line",` +
		`"quantity":1,"amount":29900,"vat_amount":5980,"vat":25}]}},"payment":{"payment_product_type":"payex.creditcard",` +
		`"operation":"unscheduled_purchase"}}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := messages.Fingerprint(body); err != nil {
			b.Fatal(err)
		}
	}
}
