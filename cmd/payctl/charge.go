package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/messages/publish"
)

func charge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("payctl charge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := addRequestFlags(fs, "Dintero's /v1/sessions/pay body", messages.ProductPayExCreditcard)
	currency := fs.String("currency", "NOK", "currency")
	operation := fs.String("operation", messages.OperationUnscheduledPurchase, "recurring_purchase or unscheduled_purchase")
	if err := fs.Parse(args); err != nil {
		return err
	}
	body, err := f.body(func() ([]byte, error) {
		return sampleRequest(*f.ref, *f.amount, *currency, *f.provider, *operation, *f.token)
	})
	if err != nil {
		return err
	}
	return f.publish(ctx, stdout, messages.MerchantReference(body), messages.SubjectChargeRequest,
		func(ctx context.Context, js jetstream.JetStream) (*jetstream.PubAck, error) {
			return publish.ChargeBody(ctx, js, body, *f.msgID)
		})
}

func sampleRequest(ref string, amount int64, currency, provider, operation, token string) ([]byte, error) {
	tokens := messages.CardTokens{PaymentToken: token}
	if provider == messages.ProductPayExCreditcard && operation == messages.OperationRecurringPurchase {
		tokens = messages.CardTokens{RecurrenceToken: token}
	}
	vat := amount / 5
	one := 1.0
	req := &messages.ChargeRequest{
		Session: messages.PaySession{
			Customer: &messages.Customer{
				Email:  "john.doe@example.com",
				Tokens: map[string]messages.CardTokens{provider: tokens},
			},
			Order: messages.Order{
				Amount:            amount,
				Currency:          currency,
				VATAmount:         &vat,
				MerchantReference: ref,
				Items: []messages.OrderItem{{
					LineID: "1", Description: "Sample item", Quantity: &one, Amount: amount, VATAmount: &vat,
				}},
			},
		},
		Payment: messages.Payment{PaymentProductType: provider, Operation: operation},
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(req)
}
