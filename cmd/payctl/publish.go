package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/messages/publish"
)

// requestFlags are the flags charge and session share: where to publish,
// and either a file or a sample built from the command's own flags.
type requestFlags struct {
	nats                    *natsFlags
	file, ref, token, msgID *string
	sample, json            *bool
	amount                  *int64
	provider                *string
}

func addRequestFlags(f *cmdFlags, what, defaultProvider string) requestFlags {
	return requestFlags{
		nats:     addNATSFlags(f),
		file:     f.String("file", "", "publish this request body ("+what+")"),
		sample:   f.Bool("sample", false, "publish a sample request built from the flags below"),
		ref:      f.String("ref", "", "merchant_reference (default: sample-<time>)"),
		amount:   f.Int64("amount", 29990, "amount in minor units"),
		provider: f.String("provider", defaultProvider, "payment_product_type of the saved card"),
		token:    f.String("card-token", "sandbox-ok-4242", "card token of the sample (the sandbox's test cards start with sandbox-ok-, sandbox-insufficient-funds-, ...)"),
		msgID:    f.String("msg-id", "", "Nats-Msg-Id for JetStream de-duplication (default: the merchant_reference)"),
		json:     f.Bool("json", false, "print one JSON object: merchant_reference, subject, stream, sequence, duplicate"),
	}
}

// body reads --file, or builds a sample with build (after defaulting --ref).
func (f requestFlags) body(build func() ([]byte, error)) ([]byte, error) {
	switch {
	case *f.file != "" && *f.sample:
		return nil, usagef("give --file or --sample, not both")
	case *f.file != "":
		return os.ReadFile(*f.file)
	case *f.sample:
		if *f.ref == "" {
			*f.ref = "sample-" + strconv.FormatInt(time.Now().UnixMilli(), 10)
		}
		return build()
	}
	return nil, usagef("give --file FILE or --sample")
}

// published is what charge and session print with --json.
type published struct {
	MerchantReference string `json:"merchant_reference"`
	Subject           string `json:"subject"`
	Stream            string `json:"stream"`
	Sequence          uint64 `json:"sequence"`
	Duplicate         bool   `json:"duplicate"`
}

// publish connects, publishes a request of kind with fn (on the request
// subject of --namespace, which fn is given as an option) and says where
// the request went.
func (f requestFlags) publish(ctx context.Context, c cli, ref, kind string,
	fn func(ctx context.Context, js jetstream.JetStream, ns publish.Option) (*jetstream.PubAck, error)) error {
	nc, js, err := f.nats.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	subject := f.nats.names.RequestSubject(kind)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ack, err := fn(ctx, js, publish.Namespace(f.nats.names.Namespace))
	if err != nil {
		return err
	}
	if *f.json {
		return printJSON(c.stdout, published{MerchantReference: ref, Subject: subject, Stream: ack.Stream, Sequence: ack.Sequence, Duplicate: ack.Duplicate})
	}
	dup := ""
	if ack.Duplicate {
		dup = " (duplicate Nats-Msg-Id: JetStream kept the earlier one)"
	}
	fmt.Fprintf(c.stdout, "published %s to %s as %s #%d%s\n", ref, subject, ack.Stream, ack.Sequence, dup)
	return nil
}

// noArgs rejects positional arguments of a command that takes none.
func noArgs(name string, pos []string) error {
	if len(pos) > 0 {
		return usagef("%s takes no arguments, got %q (see %s -h)", name, pos, name)
	}
	return nil
}
