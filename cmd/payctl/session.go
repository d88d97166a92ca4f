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

func session(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("payctl session", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("nats", natsURL(), "NATS server URL (env NATS_URL)")
	file := fs.String("file", "", "publish this request body (Dintero's /v1/sessions-profile body)")
	sample := fs.Bool("sample", false, "publish a sample request built from the flags below")
	ref := fs.String("ref", "", "merchant_reference (default: session-<time>)")
	amount := fs.Int64("amount", 29990, "amount in minor units")
	provider := fs.String("provider", messages.ProductPayExCreditcard, "payment_product_type of the saved card")
	token := fs.String("token", "sandbox-ok-4242", "the customer's saved payment_token")
	returnURL := fs.String("return-url", "https://example.com/thankyou", "where the customer's browser goes after paying")
	callbackURL := fs.String("callback-url", "http://127.0.0.1:8080/dintero/callback", "where Dintero calls back (the worker's callback endpoint)")
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
			*ref = "session-" + strconv.FormatInt(time.Now().UnixMilli(), 10)
		}
		req := &messages.SessionRequest{
			URL:       messages.SessionURL{ReturnURL: *returnURL, CallbackURL: *callbackURL},
			Order:     messages.Order{Amount: *amount, Currency: "NOK", MerchantReference: *ref},
			Customer:  &messages.Customer{Email: "john.doe@example.com", Tokens: map[string]messages.CardTokens{*provider: {PaymentToken: *token}}},
			ProfileID: "default",
		}
		if err := req.Validate(); err != nil {
			return err
		}
		b, err := json.Marshal(req)
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
	ack, err := messages.PublishSessionBody(ctx, js, body, *msgID)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "published %s to %s as %s #%d\n", messages.SessionMerchantReference(body), messages.SubjectSessionRequest, ack.Stream, ack.Sequence)
	return nil
}
