package publish_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/messages/publish"
)

// ExampleCharge needs a NATS server with JetStream and a stream on
// messages.SubjectRequests, so it is compiled but not run.
func ExampleCharge() {
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	req := &messages.ChargeRequest{
		Session: messages.PaySession{
			Customer: &messages.Customer{
				CustomerID: "cust-42",
				Tokens: map[string]messages.CardTokens{
					messages.ProductPayExCreditcard: {RecurrenceToken: "<stored recurrence_token>"},
				},
			},
			Order: messages.Order{Amount: 29900, Currency: "NOK", MerchantReference: "sub-42-2026-08"},
		},
		Payment: messages.Payment{
			PaymentProductType: messages.ProductPayExCreditcard,
			Operation:          messages.OperationRecurringPurchase,
		},
	}
	// msgID "" uses the merchant_reference: publishing again is harmless.
	ack, err := publish.Charge(ctx, js, req, "")
	var ve *messages.ValidationError
	switch {
	case errors.As(err, &ve):
		log.Fatalf("fix the request: %v", ve)
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println("stored as", ack.Sequence, "duplicate:", ack.Duplicate)
}

// ExampleNamespace publishes to the payworker deployment whose
// PAYWORKER_NAMESPACE is acct2: on acct2.payments.charge.request, into its
// stream ACCT2_PAYMENT_REQUESTS. Its results come on
// acct2.payments.charge.result.<outcome>. (Compiled, not run.)
func ExampleNamespace() {
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body := []byte(`{"session": {...}, "payment": {...}}`) // Dintero's POST /v1/sessions/pay body
	ack, err := publish.ChargeBody(ctx, js, body, "", publish.Namespace("acct2"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stored in", ack.Stream) // ACCT2_PAYMENT_REQUESTS
}
