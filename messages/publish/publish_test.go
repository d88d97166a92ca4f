package publish_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/messages/publish"
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

func TestChargeBody(t *testing.T) {
	js, stream := startJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// An unmodeled field and the guide's indentation must survive.
	body := append(bytes.TrimSpace(seed(t, seedFiles[0])), "\n"...)
	body = bytes.Replace(body, []byte(`"payment": {`), []byte(`"profile_id": "default", "payment": {`), 1)

	t.Run("stored byte for byte with its id", func(t *testing.T) {
		ack, err := publish.ChargeBody(ctx, js, body, "")
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
		again, err := publish.ChargeBody(ctx, js, body, "")
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
		ack, err := publish.ChargeBody(ctx, js, body, "order-1#retry-2")
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
		bad := bytes.Replace(body, []byte(`"amount": 29990`), []byte(`"amount": "29990"`), 1)
		if bytes.Equal(bad, body) {
			t.Fatal("the seed body has no order amount of 29990")
		}
		ack, err := publish.ChargeBody(ctx, js, bad, "other-id")
		var ve *messages.ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("ChargeBody = %+v, %v; want a *ValidationError", ack, err)
		}
		if n := storedCount(t, ctx, stream); n != before {
			t.Errorf("stream holds %d messages, want %d", n, before)
		}
	})

	t.Run("id with control characters is refused", func(t *testing.T) {
		before := storedCount(t, ctx, stream)
		if _, err := publish.ChargeBody(ctx, js, body, "a\r\nb"); err == nil {
			t.Fatal("published with a broken Nats-Msg-Id")
		}
		if n := storedCount(t, ctx, stream); n != before {
			t.Errorf("stream holds %d messages, want %d", n, before)
		}
	})
}

func TestCharge(t *testing.T) {
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
	ack, err := publish.Charge(ctx, js, req, "")
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
	if _, err := publish.Charge(ctx, js, &bad, ""); !errors.As(err, new(*messages.ValidationError)) {
		t.Errorf("Charge of an invalid request = %v, want a *ValidationError", err)
	}
	if _, err := publish.Charge(ctx, js, nil, ""); !errors.As(err, new(*messages.ValidationError)) {
		t.Errorf("Charge(nil) = %v, want a *ValidationError", err)
	}
	if n := storedCount(t, ctx, stream); n != 1 {
		t.Errorf("stream holds %d messages, want 1", n)
	}
}

func TestChargeBodyNoJetStream(t *testing.T) {
	if _, err := publish.ChargeBody(context.Background(), nil, seed(t, seedFiles[0]), ""); err == nil {
		t.Error("ChargeBody with a nil JetStream did not fail")
	}
}

func TestChargeBodyNoStream(t *testing.T) {
	// A server without a stream on the subject: the error comes back, wrapped.
	js, stream := startJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, stream.CachedInfo().Config.Name); err != nil {
		t.Fatal(err)
	}
	_, err := publish.ChargeBody(ctx, js, seed(t, seedFiles[0]), "")
	if !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Errorf("ChargeBody without a stream = %v, want %v", err, jetstream.ErrNoStreamResponse)
	}
}

func TestSessionBody(t *testing.T) {
	js, stream := startJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	body := cit(t, citFiles[2])

	ack, err := publish.SessionBody(ctx, js, body, "")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Subject != messages.SubjectSessionRequest || !bytes.Equal(msg.Data, body) {
		t.Errorf("stored %s %s", msg.Subject, msg.Data)
	}
	if got := msg.Header.Get(messages.HeaderMsgID); got != "merchants_order_number" {
		t.Errorf("%s = %q", messages.HeaderMsgID, got)
	}
	again, err := publish.SessionBody(ctx, js, body, "")
	if err != nil || !again.Duplicate {
		t.Errorf("second publish = %+v, %v; want a duplicate", again, err)
	}

	// A charge body is not a session body, and is not published.
	if _, err := publish.SessionBody(ctx, js, seed(t, seedFiles[0]), "x"); !errors.As(err, new(*messages.ValidationError)) {
		t.Errorf("charge body as a session: %v", err)
	}
	if _, err := publish.SessionBody(ctx, js, body, "a\nb"); err == nil {
		t.Error("published with a broken Nats-Msg-Id")
	}
	if _, err := publish.SessionBody(ctx, nil, body, ""); err == nil {
		t.Error("nil JetStream accepted")
	}

	req := &messages.SessionRequest{
		URL:       messages.SessionURL{ReturnURL: "https://shop.example/thanks"},
		Order:     messages.Order{Amount: 100, Currency: "NOK", MerchantReference: "cit-2"},
		ProfileID: "default",
	}
	ack2, err := publish.Session(ctx, js, req, "")
	if err != nil {
		t.Fatal(err)
	}
	if ack2.Duplicate || ack2.Sequence == ack.Sequence {
		t.Errorf("ack %+v", ack2)
	}
	req.ProfileID = ""
	if _, err := publish.Session(ctx, js, req, ""); !errors.As(err, new(*messages.ValidationError)) {
		t.Errorf("invalid Session = %v", err)
	}
	if n := storedCount(t, ctx, stream); n != 2 {
		t.Errorf("stream holds %d messages, want 2", n)
	}
}

var seedFiles = []string{
	"payex_creditcard-recurring_purchase.json",
	"payex_creditcard-unscheduled_purchase.json",
}

// seed reads a charge body of Dintero's "Use token" guide from messages' testdata.
func seed(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "seed", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

var citFiles = []string{"payex_creditcard.json", "bambora_creditcard.json", "dintero_psp_creditcard.json"}

// cit reads a session body of the guide from messages' testdata.
func cit(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "cit", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestNamespace(t *testing.T) {
	js, defaultStream := startJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	names := messages.NamesFor("acct2")
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:       names.StreamRequests,
		Subjects:   []string{names.SubjectRequests},
		Retention:  jetstream.WorkQueuePolicy,
		Duplicates: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}

	charge := seed(t, seedFiles[0])
	ack, err := publish.ChargeBody(ctx, js, charge, "c-1", publish.Namespace("acct2"), publish.RetryUntil(time.Now().Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Stream != names.StreamRequests {
		t.Errorf("charge stored in %s, want %s", ack.Stream, names.StreamRequests)
	}
	msg, err := stream.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Subject != "acct2.payments.charge.request" || msg.Header.Get(messages.HeaderRetryUntil) == "" ||
		msg.Header.Get(messages.HeaderMsgID) != "c-1" {
		t.Errorf("stored on %s with headers %v", msg.Subject, msg.Header)
	}
	sack, err := publish.SessionBody(ctx, js, cit(t, citFiles[2]), "", publish.Namespace("acct2"))
	if err != nil {
		t.Fatal(err)
	}
	if msg, err := stream.GetMsg(ctx, sack.Sequence); err != nil || msg.Subject != "acct2.payments.session.request" {
		t.Errorf("session stored: %v, %v", msg, err)
	}
	// The default namespace is the default stream's.
	if ack, err := publish.ChargeBody(ctx, js, charge, "c-2", publish.Namespace("")); err != nil || ack.Stream != messages.StreamRequests {
		t.Errorf("Namespace(\"\"): %+v, %v; want the default stream", ack, err)
	}

	// Refused before anything is published: a bad namespace, dunning asked
	// of a session.
	if _, err := publish.ChargeBody(ctx, js, charge, "c-3", publish.Namespace("Acct2")); err == nil || !strings.Contains(err.Error(), "namespace") {
		t.Errorf("Namespace(\"Acct2\") = %v, want a namespace error", err)
	}
	if _, err := publish.SessionBody(ctx, js, cit(t, citFiles[2]), "s-2", publish.RetryUntil(time.Now())); err == nil {
		t.Error("RetryUntil on a session request was accepted")
	}
	if n := storedCount(t, ctx, stream); n != 2 {
		t.Errorf("%s holds %d messages, want 2", names.StreamRequests, n)
	}
	if n := storedCount(t, ctx, defaultStream); n != 1 {
		t.Errorf("%s holds %d messages, want 1", messages.StreamRequests, n)
	}
}
