package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/messages"
)

func dlq(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "Usage: payctl dlq list [flags] | payctl dlq replay [flags] <seq>...")
		return errors.New("give list or replay")
	}
	fs := flag.NewFlagSet("payctl dlq "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("nats", natsURL(), "NATS server URL (env NATS_URL)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	nc, js, err := connect(*url)
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, messages.StreamDeadLetters)
	if err != nil {
		return fmt.Errorf("dead-letter stream %s: %w", messages.StreamDeadLetters, err)
	}
	switch args[0] {
	case "list":
		return dlqList(ctx, stream, stdout)
	case "replay":
		if fs.NArg() == 0 {
			return errors.New("give the sequence numbers to replay (see payctl dlq list)")
		}
		for _, a := range fs.Args() {
			seq, err := strconv.ParseUint(a, 10, 64)
			if err != nil {
				return fmt.Errorf("%q is not a sequence number", a)
			}
			if err := dlqReplay(ctx, js, stream, seq, stdout); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown dlq command %q: give list or replay", args[0])
}

// dlqList prints one line per dead letter; never the payload, which holds
// card tokens.
func dlqList(ctx context.Context, stream jetstream.Stream, stdout io.Writer) error {
	info, err := stream.Info(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tSUBJECT\tMERCHANT_REFERENCE\tREASON")
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		ref := messages.MerchantReference(m.Data)
		if ref == "" {
			ref = messages.SessionMerchantReference(m.Data)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", m.Sequence, m.Time.UTC().Format(time.RFC3339),
			m.Header.Get(messages.HeaderDeadSubject), ref, m.Header.Get(messages.HeaderDeadReason))
	}
	return tw.Flush()
}

// dlqReplay publishes a dead letter's payload to its original subject again
// (a fresh Nats-Msg-Id, so JetStream takes it) and then deletes it from the
// dead-letter stream. The worker treats it like any request: a completed
// reference is answered from its record, a failed one is looked up at
// Dintero before any new charge.
func dlqReplay(ctx context.Context, js jetstream.JetStream, stream jetstream.Stream, seq uint64, stdout io.Writer) error {
	m, err := stream.GetMsg(ctx, seq)
	if err != nil {
		return fmt.Errorf("dead letter %d: %w", seq, err)
	}
	subject := m.Header.Get(messages.HeaderDeadSubject)
	if subject != messages.SubjectChargeRequest && subject != messages.SubjectSessionRequest {
		return fmt.Errorf("dead letter %d came from %q, not a request subject; not replayed", seq, subject)
	}
	msg := nats.NewMsg(subject)
	msg.Data = m.Data
	msg.Header.Set(messages.HeaderMsgID, fmt.Sprintf("replay:%d:%d", seq, time.Now().UnixNano()))
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		return fmt.Errorf("replay %d: %w", seq, err)
	}
	if err := stream.DeleteMsg(ctx, seq); err != nil {
		return fmt.Errorf("replayed %d as %s #%d, but could not delete it: %w", seq, ack.Stream, ack.Sequence, err)
	}
	fmt.Fprintf(stdout, "replayed dead letter %d to %s as %s #%d\n", seq, subject, ack.Stream, ack.Sequence)
	return nil
}
