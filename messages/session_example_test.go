package messages_test

import (
	"errors"
	"fmt"

	"github.com/payworker/payworker/messages"
)

func ExampleDecodeSessionRequest() {
	// The body of Dintero's POST /v1/sessions-profile, as in the "Use token"
	// guide, with a recurrence token where only a payment token may be.
	body := []byte(`{
	  "url": {"return_url": "https://example.com/thankyou", "callback_url": "https://example.com/callback"},
	  "order": {"amount": 29990, "currency": "NOK", "merchant_reference": "merchants_order_number"},
	  "customer": {"tokens": {"payex.creditcard": {"recurrence_token": "tok-1f3a"}}},
	  "profile_id": "default"
	}`)
	_, err := messages.DecodeSessionRequest(body)
	var ve *messages.ValidationError
	if errors.As(err, &ve) {
		for _, f := range ve.Fields {
			fmt.Printf("%s: %s\n", f.Field, f.Message)
		}
	}
	fmt.Println("merchant_reference:", messages.SessionMerchantReference(body))
	fmt.Println("results on:", messages.ResultSubject(messages.KindSession, messages.OutcomeCreated))
	// Output:
	// customer.tokens.payex.creditcard.recurrence_token: not allowed in a customer-initiated session; use payment_token
	// customer.tokens.payex.creditcard.payment_token: required
	// merchant_reference: merchants_order_number
	// results on: payments.session.result.created
}
