package main

import (
	"context"
	"encoding/json"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/messages/publish"
)

func charge(ctx context.Context, c cli, args []string) error {
	fl := newFlags("payctl charge", "[flags] (--sample | --file body.json)", `
Publishes a charge request to payments.charge.request (prefixed with
--namespace and a dot when given): the body of a file
(Dintero's POST /v1/sessions/pay body), or a sample built from the flags.
The merchant_reference is the Nats-Msg-Id unless --msg-id says otherwise.`)
	f := addRequestFlags(fl, "Dintero's /v1/sessions/pay body", messages.ProductPayExCreditcard)
	currency := fl.String("currency", "NOK", "currency")
	operation := fl.String("operation", messages.OperationUnscheduledPurchase, "recurring_purchase or unscheduled_purchase")
	pos, err := fl.parse(c, args)
	if err != nil {
		return err
	}
	if err := noArgs(fl.Name(), pos); err != nil {
		return err
	}
	body, err := f.body(func() ([]byte, error) {
		return sampleRequest(*f.ref, *f.amount, *currency, *f.provider, *operation, *f.token)
	})
	if err != nil {
		return err
	}
	return f.publish(ctx, c, messages.MerchantReference(body), messages.KindCharge,
		func(ctx context.Context, js jetstream.JetStream, ns publish.Option) (*jetstream.PubAck, error) {
			return publish.ChargeBody(ctx, js, body, *f.msgID, ns)
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
