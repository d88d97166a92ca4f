package dintero_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
)

// BenchmarkPaySession measures one charge through the client against the
// sandbox on loopback (the sandbox's own cost included): request building,
// the HTTP exchange, reading and decoding the transaction. It is the
// Dintero part of payworker's hot path; compare runs with benchstat.
func BenchmarkPaySession(b *testing.B) {
	sb := dinterotest.Start(b, dinterotest.Options{})
	c, err := dintero.New(dintero.Config{
		AccountID:    dinterotest.DefaultAccountID,
		ClientID:     dinterotest.DefaultClientID,
		ClientSecret: dinterotest.DefaultClientSecret,
		APIURL:       sb.URL(),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Token(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		body := fmt.Appendf(nil, `{"session":{"customer":{"tokens":{"payex.creditcard":{"payment_token":"sandbox-ok-%d"}}},`+
			`"order":{"amount":29900,"currency":"NOK","merchant_reference":"bench-%d"}},`+
			`"payment":{"payment_product_type":"payex.creditcard","operation":"unscheduled_purchase"}}`, i, i)
		tx, err := c.PaySession(ctx, body)
		if err != nil || tx.Status != dintero.StatusAuthorized {
			b.Fatalf("PaySession = %+v, %v", tx, err)
		}
	}
}
