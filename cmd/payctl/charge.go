package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/payworker/payworker/messages"
)

func charge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("payctl charge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("nats", natsURL(), "NATS server URL (env NATS_URL)")
	file := fs.String("file", "", "publish this request body (Dintero's /v1/sessions/pay body)")
	sample := fs.Bool("sample", false, "publish a sample request built from the flags below")
	ref := fs.String("ref", "", "merchant_reference (default: sample-<time>)")
	amount := fs.Int64("amount", 29990, "amount in minor units")
	currency := fs.String("currency", "NOK", "currency")
	provider := fs.String("provider", messages.ProductPayExCreditcard, "payment_product_type")
	operation := fs.String("operation", messages.OperationUnscheduledPurchase, "recurring_purchase or unscheduled_purchase")
	token := fs.String("token", "sandbox-ok-4242", "card token (the sandbox's test cards start with sandbox-ok-, sandbox-insufficient-funds-, ...)")
	msgID := fs.String("msg-id", "", "Nats-Msg-Id for JetStream de-duplication (default: the merchant_reference)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var body []byte
	switch {
	case *file != "" && *sample:
		return fmt.Errorf("give --file or --sample, not both")
	case *file != "":
		b, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		body = b
	case *sample:
		if *ref == "" {
			*ref = "sample-" + strconv.FormatInt(time.Now().UnixMilli(), 10)
		}
		b, err := sampleRequest(*ref, *amount, *currency, *provider, *operation, *token)
		if err != nil {
			return err
		}
		body = b
	default:
		return fmt.Errorf("give --file FILE or --sample")
	}

	nc, js, err := connect(*url)
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ack, err := messages.PublishChargeBody(ctx, js, body, *msgID)
	if err != nil {
		return err
	}
	dup := ""
	if ack.Duplicate {
		dup = " (duplicate Nats-Msg-Id: JetStream kept the earlier one)"
	}
	fmt.Fprintf(stdout, "published %s to %s as %s #%d%s\n", messages.MerchantReference(body), messages.SubjectChargeRequest, ack.Stream, ack.Sequence, dup)
	return nil
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
