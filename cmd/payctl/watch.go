package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/messages"
)

// watched is one result as watch --json prints it.
type watched struct {
	Subject  string            `json:"subject"`
	Sequence uint64            `json:"stream_sequence,omitempty"`
	Time     *time.Time        `json:"time,omitempty"`
	Headers  map[string]string `json:"headers,omitempty"`
	Result   any               `json:"result"`
}

// outcomeList names the outcomes watch --outcome takes: the final ones and
// the non-final events.
const outcomeList = "succeeded, declined, failed, rejected, created, completed, " +
	"or the events unknown, needs_review, retry_scheduled"

func watch(ctx context.Context, c cli, args []string) error {
	f := newFlags("payctl watch", "[flags]", `
Follows results as payworker publishes them on payments.*.result.*, from the
PAYMENT_RESULTS stream (both prefixed with --namespace), until Ctrl-C. With --all it replays every stored
result first. With --json every result is one line of JSON.`)
	conn := addNATSFlags(f)
	outcome := f.String("outcome", "", "only this outcome: "+outcomeList)
	all := f.Bool("all", false, "replay every stored result first, not only new ones")
	asJSON := f.Bool("json", false, "one JSON object per result: subject, stream_sequence, time, headers, result")
	pos, err := f.parse(c, args)
	if err != nil {
		return err
	}
	if err := noArgs(f.Name(), pos); err != nil {
		return err
	}
	subject := "payments.*.result.>"
	if *outcome != "" {
		switch messages.Outcome(*outcome) {
		case messages.OutcomeSucceeded, messages.OutcomeDeclined, messages.OutcomeFailed, messages.OutcomeRejected,
			messages.OutcomeCreated, messages.OutcomeCompleted,
			messages.OutcomeUnknown, messages.OutcomeNeedsReview, messages.OutcomeRetryScheduled:
		default:
			return usagef("--outcome: want %s, got %q", outcomeList, *outcome)
		}
		subject = "payments.*.result." + *outcome
	}
	nc, js, err := conn.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	subject = conn.names.Subject(subject)
	policy := jetstream.DeliverNewPolicy
	if *all {
		policy = jetstream.DeliverAllPolicy
	}
	cons, err := js.OrderedConsumer(ctx, conn.names.StreamResults, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject},
		DeliverPolicy:  policy,
	})
	if err != nil {
		return fmt.Errorf("results stream %s: %w (has payworker started once?)", conn.names.StreamResults, err)
	}
	fmt.Fprintf(c.stderr, "watching %s (Ctrl-C to stop)\n", subject)
	it, err := cons.Messages()
	if err != nil {
		return err
	}
	defer it.Stop()
	go func() { <-ctx.Done(); it.Stop() }()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return err
		}
		if !*asJSON {
			fmt.Fprintf(c.stdout, "%s %s\n", msg.Subject(), msg.Data())
			continue
		}
		w := watched{Subject: msg.Subject(), Result: rawJSON(msg.Data())}
		if md, err := msg.Metadata(); err == nil {
			w.Sequence, w.Time = md.Sequence.Stream, &md.Timestamp
		}
		if h := msg.Headers(); len(h) > 0 {
			w.Headers = make(map[string]string, len(h))
			for k := range h {
				w.Headers[k] = h.Get(k)
			}
		}
		if err := printJSON(c.stdout, w); err != nil {
			return err
		}
	}
}
