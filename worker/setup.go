package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/messages"
)

// Setup creates or updates the requests, results and dead-letter streams and
// the durable pull consumer. It is safe to run from every pod at start.
func Setup(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	streams := []jetstream.StreamConfig{
		{
			Name:        messages.StreamRequests,
			Description: "payworker requests (work queue: a message is removed when a worker acks it)",
			Subjects:    []string{messages.SubjectRequests},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Duplicates:  10 * time.Minute,
		},
		{
			Name:        messages.StreamResults,
			Description: "payworker results, one final event per request",
			Subjects:    []string{messages.SubjectResults},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Duplicates:  cfg.ResultsDuplicateWindow,
			MaxAge:      cfg.ResultsMaxAge,
		},
		{
			Name:        messages.StreamDeadLetters,
			Description: "payworker requests that were rejected or given up on, with the reason in a header",
			Subjects:    []string{messages.SubjectDeadLetters},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			MaxAge:      cfg.ResultsMaxAge,
		},
	}
	for _, sc := range streams {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	_, err := js.CreateOrUpdateConsumer(ctx, messages.StreamRequests, consumerConfig(cfg))
	if err != nil {
		return fmt.Errorf("consumer %s: %w", cfg.Consumer, err)
	}
	return nil
}

func consumerConfig(cfg Config) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        cfg.Consumer,
		Description:    "payworker pods share this consumer",
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        cfg.AckWait,
		MaxDeliver:     -1, // the worker gives up itself; see the package doc
		MaxAckPending:  cfg.MaxAckPending,
		FilterSubjects: filterSubjects,
	}
}

// consumer binds to the durable consumer, creating it unless SkipSetup.
func (w *Worker) consumer(ctx context.Context) (jetstream.Consumer, error) {
	if !w.cfg.SkipSetup {
		if err := Setup(ctx, w.js, w.cfg); err != nil {
			return nil, err
		}
	}
	c, err := w.js.Consumer(ctx, messages.StreamRequests, w.cfg.Consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("consumer %s on stream %s does not exist (setup is skipped): %w", w.cfg.Consumer, messages.StreamRequests, err)
	}
	return c, err
}
