package main

import (
	"context"
	"encoding/json"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/messages/publish"
)

func session(ctx context.Context, c cli, args []string) error {
	fl := newFlags("payctl session", "[flags] (--sample | --file body.json)", `
Publishes a customer-initiated session request to payments.session.request
(prefixed with --namespace and a dot when given):
the body of a file (Dintero's POST /v1/sessions-profile body), or a sample
built from the flags.`)
	f := addRequestFlags(fl, "Dintero's /v1/sessions-profile body", messages.ProductPayExCreditcard)
	returnURL := fl.String("return-url", "https://example.com/thankyou", "where the customer's browser goes after paying")
	callbackURL := fl.String("callback-url", "http://127.0.0.1:8081/dintero/callback", "where Dintero calls back (the worker's callback endpoint)")
	pos, err := fl.parse(c, args)
	if err != nil {
		return err
	}
	if err := noArgs(fl.Name(), pos); err != nil {
		return err
	}
	body, err := f.body(func() ([]byte, error) {
		req := &messages.SessionRequest{
			URL:       messages.SessionURL{ReturnURL: *returnURL, CallbackURL: *callbackURL},
			Order:     messages.Order{Amount: *f.amount, Currency: "NOK", MerchantReference: *f.ref},
			Customer:  &messages.Customer{Email: "john.doe@example.com", Tokens: map[string]messages.CardTokens{*f.provider: {PaymentToken: *f.token}}},
			ProfileID: "default",
		}
		if err := req.Validate(); err != nil {
			return nil, err
		}
		return json.Marshal(req)
	})
	if err != nil {
		return err
	}
	return f.publish(ctx, c, messages.SessionMerchantReference(body), messages.KindSession,
		func(ctx context.Context, js jetstream.JetStream, ns publish.Option) (*jetstream.PubAck, error) {
			return publish.SessionBody(ctx, js, body, *f.msgID, ns)
		})
}
