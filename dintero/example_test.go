package dintero_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
)

// A merchant-initiated charge and what to do with each error kind.
func ExampleClient_PaySession() {
	sb := dinterotest.New(dinterotest.Options{})
	url, err := sb.Listen("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer sb.Close()

	c, err := dintero.New(dintero.Config{
		AccountID:    dinterotest.DefaultAccountID,
		ClientID:     dinterotest.DefaultClientID,
		ClientSecret: dinterotest.DefaultClientSecret,
		APIURL:       url,
		SystemName:   "payworker",
	})
	if err != nil {
		log.Fatal(err)
	}

	charge := func(token, ref string) {
		body := fmt.Appendf(nil, `{"session":{"customer":{"tokens":{"payex.creditcard":{"payment_token":%q}}},`+
			`"order":{"amount":29990,"currency":"NOK","merchant_reference":%q}},`+
			`"payment":{"payment_product_type":"payex.creditcard","operation":"unscheduled_purchase"}}`, token, ref)
		tx, err := c.PaySession(context.Background(), body)
		var e *dintero.Error
		switch {
		case err == nil:
			fmt.Println(ref, "charged:", tx.Status)
		case errors.As(err, &e) && e.DuplicateReference():
			fmt.Println(ref, "already charged; look it up")
		case dintero.KindOf(err) == dintero.KindDeclined:
			fmt.Println(ref, "declined:", e.Code, e.RetryPolicy().RetryCodes)
		case dintero.KindOf(err) == dintero.KindUnknownOutcome:
			fmt.Println(ref, "unknown: TransactionsByMerchantReference before charging again")
		case dintero.KindOf(err) == dintero.KindTransient:
			fmt.Println(ref, "try again later")
		default: // KindInvalid, KindPermanent, KindAuth
			fmt.Println(ref, "rejected:", dintero.KindOf(err))
		}
	}
	charge(dinterotest.TokenAuthorized+"1", "order-1")
	charge(dinterotest.TokenAuthorized+"1", "order-1")
	charge(dinterotest.TokenDoNotRetry+"2", "order-2")
	charge("not-a-sandbox-token", "order-3")
	// Output:
	// order-1 charged: AUTHORIZED
	// order-1 already charged; look it up
	// order-2 declined: DECLINED [DO_NOT_RETRY]
	// order-3 rejected: invalid
}
