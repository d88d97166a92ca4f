package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/messages"
)

func watch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("payctl watch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("nats", natsURL(), "NATS server URL (env NATS_URL)")
	outcome := fs.String("outcome", "", "only this outcome: succeeded, declined, failed, rejected, created or completed")
	all := fs.Bool("all", false, "replay every stored result first, not only new ones")
	if err := fs.Parse(args); err != nil {
		return err
	}
	subject := messages.SubjectResults
	if *outcome != "" {
		switch messages.Outcome(*outcome) {
		case messages.OutcomeSucceeded, messages.OutcomeDeclined, messages.OutcomeFailed, messages.OutcomeRejected,
			messages.OutcomeCreated, messages.OutcomeCompleted:
		default:
			return fmt.Errorf("--outcome: want succeeded, declined, failed, rejected, created or completed, got %q", *outcome)
		}
		subject = "payments.*.result." + *outcome
	}
	nc, js, err := connect(*url)
	if err != nil {
		return err
	}
	defer nc.Close()
	policy := jetstream.DeliverNewPolicy
	if *all {
		policy = jetstream.DeliverAllPolicy
	}
	cons, err := js.OrderedConsumer(ctx, messages.StreamResults, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject},
		DeliverPolicy:  policy,
	})
	if err != nil {
		return fmt.Errorf("results stream %s: %w (has payworker started once?)", messages.StreamResults, err)
	}
	fmt.Fprintf(stderr, "watching %s (Ctrl-C to stop)\n", subject)
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
		fmt.Fprintf(stdout, "%s %s\n", msg.Subject(), msg.Data())
	}
}
