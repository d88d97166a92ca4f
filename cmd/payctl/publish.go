package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// requestFlags are the flags charge and session share: where to publish,
// and either a file or a sample built from the command's own flags.
type requestFlags struct {
	url, file, ref, token, msgID *string
	sample                       *bool
	amount                       *int64
	provider                     *string
}

func addRequestFlags(fs *flag.FlagSet, what, defaultProvider string) requestFlags {
	return requestFlags{
		url:      fs.String("nats", natsURL(), "NATS server URL (env NATS_URL)"),
		file:     fs.String("file", "", "publish this request body ("+what+")"),
		sample:   fs.Bool("sample", false, "publish a sample request built from the flags below"),
		ref:      fs.String("ref", "", "merchant_reference (default: sample-<time>)"),
		amount:   fs.Int64("amount", 29990, "amount in minor units"),
		provider: fs.String("provider", defaultProvider, "payment_product_type of the saved card"),
		token:    fs.String("token", "sandbox-ok-4242", "card token (the sandbox's test cards start with sandbox-ok-, sandbox-insufficient-funds-, ...)"),
		msgID:    fs.String("msg-id", "", "Nats-Msg-Id for JetStream de-duplication (default: the merchant_reference)"),
	}
}

// body reads --file, or builds a sample with build (after defaulting --ref).
func (f requestFlags) body(build func() ([]byte, error)) ([]byte, error) {
	switch {
	case *f.file != "" && *f.sample:
		return nil, fmt.Errorf("give --file or --sample, not both")
	case *f.file != "":
		return os.ReadFile(*f.file)
	case *f.sample:
		if *f.ref == "" {
			*f.ref = "sample-" + strconv.FormatInt(time.Now().UnixMilli(), 10)
		}
		return build()
	}
	return nil, fmt.Errorf("give --file FILE or --sample")
}

// publish connects, publishes with fn and says where the request went.
func (f requestFlags) publish(ctx context.Context, stdout io.Writer, ref, subject string,
	fn func(ctx context.Context, js jetstream.JetStream) (*jetstream.PubAck, error)) error {
	nc, js, err := connect(*f.url)
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ack, err := fn(ctx, js)
	if err != nil {
		return err
	}
	dup := ""
	if ack.Duplicate {
		dup = " (duplicate Nats-Msg-Id: JetStream kept the earlier one)"
	}
	fmt.Fprintf(stdout, "published %s to %s as %s #%d%s\n", ref, subject, ack.Stream, ack.Sequence, dup)
	return nil
}
