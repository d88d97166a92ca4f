package messages_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/messages"
)

// startJetStream runs an embedded JetStream server on a free loopback port
// with the requests stream, and returns a client and the stream.
func startJetStream(t *testing.T) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:       messages.StreamRequests,
		Subjects:   []string{messages.SubjectRequests},
		Retention:  jetstream.WorkQueuePolicy,
		Duplicates: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	return js, stream
}

func storedCount(t *testing.T, ctx context.Context, stream jetstream.Stream) uint64 {
	t.Helper()
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestPublishChargeBody(t *testing.T) {
	js, stream := startJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// An unmodeled field and the guide's indentation must survive.
	body := append(bytes.TrimSpace(seed(t, seedFiles[0])), "\n"...)
	body = bytes.Replace(body, []byte(`"payment": {`), []byte(`"profile_id": "default", "payment": {`), 1)

	t.Run("stored byte for byte with its id", func(t *testing.T) {
		ack, err := messages.PublishChargeBody(ctx, js, body, "")
		if err != nil {
			t.Fatal(err)
		}
		if ack.Duplicate || ack.Stream != messages.StreamRequests {
			t.Fatalf("ack = %+v", ack)
		}
		msg, err := stream.GetMsg(ctx, ack.Sequence)
		if err != nil {
			t.Fatal(err)
		}
		if msg.Subject != messages.SubjectChargeRequest {
			t.Errorf("subject = %q, want %q", msg.Subject, messages.SubjectChargeRequest)
		}
		if !bytes.Equal(msg.Data, body) {
			t.Errorf("stored body differs:\n%s\nwant\n%s", msg.Data, body)
		}
		if got := msg.Header.Get(messages.HeaderMsgID); got != "order-1" {
			t.Errorf("%s = %q, want the merchant_reference %q", messages.HeaderMsgID, got, "order-1")
		}

		// The same id again is a duplicate, not a second message.
		again, err := messages.PublishChargeBody(ctx, js, body, "")
		if err != nil {
			t.Fatal(err)
		}
		if !again.Duplicate || again.Sequence != ack.Sequence {
			t.Errorf("second publish: ack = %+v, want a duplicate of sequence %d", again, ack.Sequence)
		}
		if n := storedCount(t, ctx, stream); n != 1 {
			t.Errorf("stream holds %d messages, want 1", n)
		}
	})

	t.Run("explicit id", func(t *testing.T) {
		ack, err := messages.PublishChargeBody(ctx, js, body, "order-1#retry-2")
		if err != nil {
			t.Fatal(err)
		}
		if ack.Duplicate {
			t.Fatalf("a new id was taken for a duplicate: %+v", ack)
		}
		msg, err := stream.GetMsg(ctx, ack.Sequence)
		if err != nil {
			t.Fatal(err)
		}
		if got := msg.Header.Get(messages.HeaderMsgID); got != "order-1#retry-2" {
			t.Errorf("%s = %q", messages.HeaderMsgID, got)
		}
	})

	t.Run("invalid body is not published", func(t *testing.T) {
		before := storedCount(t, ctx, stream)
		bad := edit(t, body, func(m map[string]any) { order(m)["amount"] = "29990" })
		ack, err := messages.PublishChargeBody(ctx, js, bad, "other-id")
		var ve *messages.ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("PublishChargeBody = %+v, %v; want a *ValidationError", ack, err)
		}
		if n := storedCount(t, ctx, stream); n != before {
			t.Errorf("stream holds %d messages, want %d", n, before)
		}
	})

	t.Run("id with control characters is refused", func(t *testing.T) {
		before := storedCount(t, ctx, stream)
		if _, err := messages.PublishChargeBody(ctx, js, body, "a\r\nb"); err == nil {
			t.Fatal("published with a broken Nats-Msg-Id")
		}
		if n := storedCount(t, ctx, stream); n != before {
			t.Errorf("stream holds %d messages, want %d", n, before)
		}
	})
}

func TestPublishCharge(t *testing.T) {
	js, stream := startJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	req := &messages.ChargeRequest{
		Session: messages.PaySession{
			Customer: &messages.Customer{Tokens: map[string]messages.CardTokens{
				messages.ProductDinteroPSPCreditcard: {PaymentToken: "sandbox-ok-1"},
			}},
			Order: messages.Order{Amount: 29990, Currency: "NOK", MerchantReference: "sub-42-2026-08"},
		},
		Payment: messages.Payment{
			PaymentProductType: messages.ProductDinteroPSPCreditcard,
			Operation:          messages.OperationRecurringPurchase,
		},
	}
	ack, err := messages.PublishCharge(ctx, js, req, "")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Header.Get(messages.HeaderMsgID); got != "sub-42-2026-08" {
		t.Errorf("%s = %q, want the merchant_reference", messages.HeaderMsgID, got)
	}
	got, err := messages.DecodeChargeRequest(msg.Data)
	if err != nil {
		t.Fatalf("stored body does not decode: %v", err)
	}
	if got.Session.Customer.Tokens[messages.ProductDinteroPSPCreditcard].PaymentToken != "sandbox-ok-1" ||
		got.Session.Order.Amount != 29990 {
		t.Errorf("stored request differs: %s", msg.Data)
	}

	// Invalid: nothing is published.
	bad := *req
	bad.Payment.Operation = "purchase"
	if _, err := messages.PublishCharge(ctx, js, &bad, ""); !errors.As(err, new(*messages.ValidationError)) {
		t.Errorf("PublishCharge of an invalid request = %v, want a *ValidationError", err)
	}
	if _, err := messages.PublishCharge(ctx, js, nil, ""); !errors.As(err, new(*messages.ValidationError)) {
		t.Errorf("PublishCharge(nil) = %v, want a *ValidationError", err)
	}
	if n := storedCount(t, ctx, stream); n != 1 {
		t.Errorf("stream holds %d messages, want 1", n)
	}
}

func TestPublishChargeBodyNoJetStream(t *testing.T) {
	if _, err := messages.PublishChargeBody(context.Background(), nil, seed(t, seedFiles[0]), ""); err == nil {
		t.Error("PublishChargeBody with a nil JetStream did not fail")
	}
}

func TestPublishChargeBodyNoStream(t *testing.T) {
	// A server without a stream on the subject: the error comes back, wrapped.
	js, stream := startJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, stream.CachedInfo().Config.Name); err != nil {
		t.Fatal(err)
	}
	_, err := messages.PublishChargeBody(ctx, js, seed(t, seedFiles[0]), "")
	if !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Errorf("PublishChargeBody without a stream = %v, want %v", err, jetstream.ErrNoStreamResponse)
	}
}
