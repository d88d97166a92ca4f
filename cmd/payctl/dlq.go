package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/messages"
)

const dlqAbout = `
Dead letters are requests payworker gave up on or rejected, kept in the
PAYMENT_DEADLETTERS stream (<NAMESPACE>_PAYMENT_DEADLETTERS with
--namespace) with the reason (Payworker-Dead-Reason).

Commands:
  list      one line per dead letter: sequence, time, subject, merchant_reference, reason
            (never the payload, which holds card tokens)
  replay    publish dead letters to their request subject again, then remove them

Run "payctl dlq <command> -h" for its flags.`

func dlq(ctx context.Context, c cli, args []string) error {
	if len(args) == 0 {
		newFlags("payctl dlq", "<list|replay> [flags]", dlqAbout).help(c.stderr)
		return usagef("give list or replay")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		newFlags("payctl dlq", "<list|replay> [flags]", dlqAbout).help(c.stdout)
		return nil
	case "list":
		return dlqList(ctx, c, args[1:])
	case "replay":
		return dlqReplay(ctx, c, args[1:])
	}
	newFlags("payctl dlq", "<list|replay> [flags]", dlqAbout).help(c.stderr)
	return usagef("unknown dlq command %q: give list or replay", args[0])
}

// deadStream connects and opens the dead-letter stream.
func deadStream(ctx context.Context, n *natsFlags) (*nats.Conn, jetstream.JetStream, jetstream.Stream, error) {
	nc, js, err := n.connect()
	if err != nil {
		return nil, nil, nil, err
	}
	stream, err := js.Stream(ctx, n.names.StreamDeadLetters)
	if err != nil {
		nc.Close()
		return nil, nil, nil, fmt.Errorf("dead-letter stream %s: %w (has payworker started once?)", n.names.StreamDeadLetters, err)
	}
	return nc, js, stream, nil
}

// deadLetter is one line of dlq list --json.
type deadLetter struct {
	Sequence          uint64    `json:"sequence"`
	Time              time.Time `json:"time"`
	Subject           string    `json:"subject"`
	MerchantReference string    `json:"merchant_reference"`
	Reason            string    `json:"reason"`
}

// dlqList prints one line per dead letter; never the payload, which holds
// card tokens.
func dlqList(ctx context.Context, c cli, args []string) error {
	f := newFlags("payctl dlq list", "[flags]", `
Lists the dead letters: sequence, time, original subject, merchant_reference
and reason; never the payload, which holds card tokens.`)
	conn := addNATSFlags(f)
	asJSON := f.Bool("json", false, "print a JSON array of {sequence, time, subject, merchant_reference, reason}")
	pos, err := f.parse(c, args)
	if err != nil {
		return err
	}
	if err := noArgs(f.Name(), pos); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	nc, _, stream, err := deadStream(ctx, conn)
	if err != nil {
		return err
	}
	defer nc.Close()
	info, err := stream.Info(ctx)
	if err != nil {
		return err
	}
	letters := []deadLetter{}
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
		letters = append(letters, deadLetter{Sequence: m.Sequence, Time: m.Time.UTC(),
			Subject: m.Header.Get(messages.HeaderDeadSubject), MerchantReference: ref, Reason: m.Header.Get(messages.HeaderDeadReason)})
	}
	if *asJSON {
		return printJSON(c.stdout, letters)
	}
	return printDeadLetters(c.stdout, letters)
}

func printDeadLetters(w io.Writer, letters []deadLetter) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tSUBJECT\tMERCHANT_REFERENCE\tREASON")
	for _, d := range letters {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", d.Sequence, d.Time.Format(time.RFC3339), d.Subject, d.MerchantReference, d.Reason)
	}
	return tw.Flush()
}

// replayed is one line of dlq replay --json.
type replayed struct {
	DeadLetter uint64 `json:"dead_letter"`
	Subject    string `json:"subject"`
	Stream     string `json:"stream"`
	Sequence   uint64 `json:"sequence"`
}

// dlqReplay publishes dead letters' payloads to their original subject
// again (a fresh Nats-Msg-Id, so JetStream takes them) and then deletes
// them from the dead-letter stream. The worker treats each like any
// request: a completed reference is answered from its record, a failed
// one is looked up at Dintero before any new charge.
func dlqReplay(ctx context.Context, c cli, args []string) error {
	f := newFlags("payctl dlq replay", "[flags] <seq>...", `
Publishes each dead letter to its original request subject again (with a
fresh Nats-Msg-Id) and then removes it from PAYMENT_DEADLETTERS. payworker
treats a replay like any request: a completed reference is answered from its
record, a failed one is looked up at Dintero before any new charge.
Exits 3 when a sequence is not in the stream (the ones before it were
replayed).`)
	conn := addNATSFlags(f)
	asJSON := f.Bool("json", false, "print one JSON object per replayed dead letter: dead_letter, subject, stream, sequence")
	pos, err := f.parse(c, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("give the sequence numbers to replay (see payctl dlq list)")
	}
	seqs := make([]uint64, len(pos))
	for i, a := range pos {
		if seqs[i], err = strconv.ParseUint(a, 10, 64); err != nil || seqs[i] == 0 {
			return usagef("%q is not a sequence number", a)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	nc, js, stream, err := deadStream(ctx, conn)
	if err != nil {
		return err
	}
	defer nc.Close()
	for _, seq := range seqs {
		r, err := replayOne(ctx, js, stream, conn.names, seq)
		if err != nil {
			return err
		}
		if *asJSON {
			err = printJSON(c.stdout, r)
		} else {
			_, err = fmt.Fprintf(c.stdout, "replayed dead letter %d to %s as %s #%d\n", seq, r.Subject, r.Stream, r.Sequence)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func replayOne(ctx context.Context, js jetstream.JetStream, stream jetstream.Stream, names messages.Names, seq uint64) (replayed, error) {
	m, err := stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return replayed{}, notFoundf("no dead letter %d in %s (see payctl dlq list)", seq, names.StreamDeadLetters)
	}
	if err != nil {
		return replayed{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	subject := m.Header.Get(messages.HeaderDeadSubject)
	if subject != names.SubjectChargeRequest && subject != names.SubjectSessionRequest {
		return replayed{}, fmt.Errorf("dead letter %d came from %q, not a request subject; not replayed", seq, subject)
	}
	msg := nats.NewMsg(subject)
	msg.Data = m.Data
	msg.Header.Set(messages.HeaderMsgID, fmt.Sprintf("replay:%d:%d", seq, time.Now().UnixNano()))
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		return replayed{}, fmt.Errorf("replay %d: %w", seq, err)
	}
	if err := stream.DeleteMsg(ctx, seq); err != nil {
		return replayed{}, fmt.Errorf("replayed %d as %s #%d, but could not delete it: %w", seq, ack.Stream, ack.Sequence, err)
	}
	return replayed{DeadLetter: seq, Subject: subject, Stream: ack.Stream, Sequence: ack.Sequence}, nil
}
