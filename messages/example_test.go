package messages_test

import (
	"errors"
	"fmt"

	"github.com/payworker/payworker/messages"
)

func ExampleDecodeChargeRequest() {
	body := []byte(`{
	  "session": {
	    "customer": {"tokens": {"payex.creditcard": {"payment_token": "tok-1f3a"}}},
	    "order": {"amount": 299.5, "currency": "NOK", "merchant_reference": "sub-42-2026-08"}
	  },
	  "payment": {"payment_product_type": "payex.creditcard", "operation": "recurring_purchase"}
	}`)
	_, err := messages.DecodeChargeRequest(body)
	var ve *messages.ValidationError
	if errors.As(err, &ve) {
		for _, f := range ve.Fields {
			fmt.Printf("%s: %s\n", f.Field, f.Message)
		}
	}
	// A rejected result can still name the request.
	fmt.Println("merchant_reference:", messages.MerchantReference(body))
	// Output:
	// session.order.amount: must be an integer number of minor units, got "299.5"
	// session.customer.tokens.payex.creditcard.recurrence_token: required for recurring_purchase with payex.creditcard (a payment_token is for unscheduled_purchase)
	// merchant_reference: sub-42-2026-08
}

func ExampleFingerprint() {
	a, _ := messages.Fingerprint([]byte(`{"order": {"amount": 29990, "currency": "NOK"}}`))
	b, _ := messages.Fingerprint([]byte(`{"order":{"currency":"NOK","amount":29990}}`))
	c, _ := messages.Fingerprint([]byte(`{"order":{"currency":"NOK","amount":29991}}`))
	fmt.Println("same meaning, same fingerprint:", a == b)
	fmt.Println("other amount, same fingerprint:", a == c)
	// Output:
	// same meaning, same fingerprint: true
	// other amount, same fingerprint: false
}

func ExampleResultSubject() {
	fmt.Println(messages.ResultSubject(messages.KindCharge, messages.OutcomeSucceeded))
	fmt.Println(messages.ResultMsgID("sub-42-2026-08", messages.OutcomeSucceeded, 1017))
	fmt.Println(messages.ResultMsgID("", messages.OutcomeRejected, 1018))
	// Output:
	// payments.charge.result.succeeded
	// sub-42-2026-08:succeeded:1017
	// seq-1018:rejected:1018
}

func ExampleCardTokens_String() {
	tokens := messages.CardTokens{RecurrenceToken: "tok-1f3a"}
	fmt.Println(tokens)
	fmt.Printf("%+v\n", messages.Customer{CustomerID: "cust-42", Tokens: map[string]messages.CardTokens{
		messages.ProductPayExCreditcard: tokens,
	}})
	// Output:
	// {recurrence_token:[REDACTED]}
	// {customer_id:cust-42 tokens:map[payex.creditcard:{recurrence_token:[REDACTED]}]}
}
