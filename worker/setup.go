package worker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Minimums the JetStream setup needs.
const (
	// MinServerVersion is the oldest nats-server payworker runs against:
	// it parks and schedules requests with message schedules (2.12), and
	// its consumer takes several filter subjects (2.10).
	MinServerVersion = "2.12.0"
	// minResultsDuplicates is the shortest de-duplication window of the
	// results stream that keeps a result republished after a crash single.
	minResultsDuplicates = 2 * time.Minute
)

// Streams returns the configuration of the streams Setup creates when they
// are missing: requests (a work queue), results and dead letters, named
// and listening in cfg.Namespace.
func Streams(cfg Config) []jetstream.StreamConfig {
	cfg.setDefaults()
	n := namesOf(cfg.Namespace)
	return []jetstream.StreamConfig{
		{
			Name:        n.StreamRequests,
			Description: "payworker requests (work queue: a message is removed when a worker acks it), and the schedules of parked and retried requests",
			Subjects:    []string{n.SubjectRequests, n.schedules, n.retries},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Duplicates:  10 * time.Minute,
			Replicas:    cfg.StreamReplicas,
			// Message schedules need roll-ups, and purges not denied.
			AllowMsgSchedules: true,
			AllowRollup:       true,
		},
		{
			Name:        n.StreamResults,
			Description: "payworker results, one final event per request",
			Subjects:    []string{n.SubjectResults},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Duplicates:  cfg.ResultsDuplicateWindow,
			MaxAge:      cfg.ResultsMaxAge,
			Replicas:    cfg.StreamReplicas,
		},
		{
			Name:        n.StreamDeadLetters,
			Description: "payworker requests that were rejected or given up on, with the reason in a header",
			Subjects:    []string{n.SubjectDeadLetters},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			MaxAge:      cfg.ResultsMaxAge,
			Replicas:    cfg.StreamReplicas,
		},
	}
}

// ConsumerConfig returns the configuration of the durable consumer Setup
// creates when it is missing.
func ConsumerConfig(cfg Config) jetstream.ConsumerConfig {
	cfg.setDefaults()
	return jetstream.ConsumerConfig{
		Durable:        cfg.Consumer,
		Description:    "payworker pods share this consumer",
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        cfg.AckWait,
		MaxDeliver:     -1, // the worker gives up itself; see the package doc
		MaxAckPending:  cfg.MaxAckPending,
		FilterSubjects: namesOf(cfg.Namespace).filters,
		Replicas:       cfg.StreamReplicas,
	}
}

// Setup creates the streams, the sessions bucket and the consumer that do
// not exist yet, and checks those that do. It never changes what an
// operator tuned in one that exists (limits, replicas, placement); it only
// adds the subjects and features a newer payworker needs (the schedules'
// subject and message schedules). Settings that would break a guarantee
// stop it with an error wrapping ErrConfig that says what is wrong and what
// it must be. It is safe to run from every pod at start.
func Setup(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	n := namesOf(cfg.Namespace)
	for _, want := range Streams(cfg) {
		s, err := js.Stream(ctx, want.Name)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			_, err = js.CreateStream(ctx, want)
		case err == nil:
			if upd, changed := withNeeds(s.CachedInfo().Config, want); changed {
				_, err = js.UpdateStream(ctx, upd)
			}
		}
		if err != nil {
			return fmt.Errorf("stream %s: %w", want.Name, err)
		}
	}
	if _, err := js.KeyValue(ctx, n.sessions); errors.Is(err, jetstream.ErrBucketNotFound) {
		_, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: n.sessions,
			Description: "payworker: the session created at Dintero for each merchant_reference",
			TTL:         cfg.ResultsMaxAge, Storage: jetstream.FileStorage, Replicas: cfg.StreamReplicas})
		if err != nil {
			return fmt.Errorf("key-value bucket %s: %w", n.sessions, err)
		}
	} else if err != nil {
		return fmt.Errorf("key-value bucket %s: %w", n.sessions, err)
	}
	_, err := js.Consumer(ctx, n.StreamRequests, cfg.Consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		_, err = js.CreateConsumer(ctx, n.StreamRequests, ConsumerConfig(cfg))
	}
	if err != nil {
		return fmt.Errorf("consumer %s: %w", cfg.Consumer, err)
	}
	return nil
}

// withNeeds returns have with the subjects and features of want it lacks,
// and whether anything was added.
func withNeeds(have, want jetstream.StreamConfig) (jetstream.StreamConfig, bool) {
	changed := false
	for _, subj := range want.Subjects {
		if !anyMatches(have.Subjects, subj) {
			have.Subjects = append(have.Subjects, subj)
			changed = true
		}
	}
	if want.AllowMsgSchedules && !have.AllowMsgSchedules {
		have.AllowMsgSchedules, have.AllowRollup, have.DenyPurge = true, true, false
		changed = true
	}
	return have, changed
}

// checkStreams refuses streams whose settings break a guarantee.
func checkStreams(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	results := namesOf(cfg.Namespace).StreamResults
	for _, want := range Streams(cfg) {
		s, err := js.Stream(ctx, want.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("stream %s: %w: it does not exist (setup is skipped)", want.Name, ErrConfig)
		}
		if err == nil {
			err = checkStream(s.CachedInfo().Config, want, want.Name == results)
		}
		if err != nil {
			return fmt.Errorf("stream %s: %w", want.Name, err)
		}
	}
	return nil
}

// checkStream refuses an existing stream whose settings break a guarantee;
// results says it is the results stream.
func checkStream(have, want jetstream.StreamConfig, results bool) error {
	if have.Retention != want.Retention {
		return fmt.Errorf("%w: retention is %s; it must be %s", ErrConfig, have.Retention, want.Retention)
	}
	for _, subj := range want.Subjects {
		if !anyMatches(have.Subjects, subj) {
			return fmt.Errorf("%w: its subjects %v do not take %s", ErrConfig, have.Subjects, subj)
		}
	}
	if want.AllowMsgSchedules && !have.AllowMsgSchedules {
		return fmt.Errorf("%w: message schedules are off; they must be on (allow_msg_schedules), to park and retry requests", ErrConfig)
	}
	if results && have.Duplicates < minResultsDuplicates {
		return fmt.Errorf("%w: its de-duplication window is %s; it must be at least %s, so that a result published again after a crash stays single",
			ErrConfig, have.Duplicates, minResultsDuplicates)
	}
	return nil
}

// checkConsumer refuses a consumer whose settings break a guarantee.
func (w *Worker) checkConsumer(have jetstream.ConsumerConfig) error {
	name := "consumer " + w.cfg.Consumer
	if have.AckPolicy != jetstream.AckExplicitPolicy {
		return fmt.Errorf("%s: %w: ack policy is %s; it must be explicit", name, ErrConfig, have.AckPolicy)
	}
	if have.MaxDeliver != -1 && have.MaxDeliver < w.cfg.MaxDeliver {
		return fmt.Errorf("%s: %w: MaxDeliver is %d, below the worker's %d (PAYWORKER_MAX_DELIVER): requests would be stranded without a result; set it to -1",
			name, ErrConfig, have.MaxDeliver, w.cfg.MaxDeliver)
	}
	if have.AckWait < w.cfg.AckWait {
		return fmt.Errorf("%s: %w: AckWait is %s, below the worker's %s (PAYWORKER_ACK_WAIT): requests would be redelivered while being charged",
			name, ErrConfig, have.AckWait, w.cfg.AckWait)
	}
	filters := have.FilterSubjects
	if have.FilterSubject != "" {
		filters = append(filters, have.FilterSubject)
	}
	for _, subj := range w.names.filters {
		if len(filters) > 0 && !anyMatches(filters, subj) {
			return fmt.Errorf("%s: %w: its filter %v does not take %s", name, ErrConfig, filters, subj)
		}
	}
	if have.MaxAckPending != w.cfg.MaxAckPending {
		w.log.Info("the consumer keeps its own MaxAckPending", "consumer", w.cfg.Consumer,
			"max_ack_pending", have.MaxAckPending, "configured", w.cfg.MaxAckPending)
	}
	return nil
}

// bind sets up (unless SkipSetup) and checks the server, the streams and
// the consumer, and returns the consumer.
func (w *Worker) bind(ctx context.Context) (jetstream.Consumer, error) {
	if v := w.js.Conn().ConnectedServerVersion(); v != "" && versionBelow(v, MinServerVersion) {
		return nil, fmt.Errorf("%w: nats-server %s is too old: payworker needs %s or newer (it parks and retries requests with JetStream message schedules, new in 2.12)",
			ErrConfig, v, MinServerVersion)
	}
	if !w.cfg.SkipSetup {
		if err := Setup(ctx, w.js, w.cfg); err != nil {
			return nil, err
		}
	}
	cons, err := w.js.Consumer(ctx, w.names.StreamRequests, w.cfg.Consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("%w: consumer %s on stream %s does not exist (setup is skipped)", ErrConfig, w.cfg.Consumer, w.names.StreamRequests)
	}
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", w.cfg.Consumer, err)
	}
	if err := w.checkConsumer(cons.CachedInfo().Config); err != nil {
		return nil, err
	}
	if err := checkStreams(ctx, w.js, w.cfg); err != nil {
		return nil, err
	}
	kv, err := w.js.KeyValue(ctx, w.names.sessions)
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", w.names.sessions, err)
	}
	w.sessions = &sessionLog{kv: kv}
	return cons, nil
}

// anyMatches reports whether one of the subject filters takes subject.
func anyMatches(filters []string, subject string) bool {
	for _, f := range filters {
		if subjectMatches(f, subject) {
			return true
		}
	}
	return false
}

// subjectMatches reports whether the NATS subject filter (with * and >
// wildcards) takes the literal subject.
func subjectMatches(filter, subject string) bool {
	ft, st := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, f := range ft {
		switch {
		case f == ">":
			return len(st) > i
		case i >= len(st):
			return false
		case f != "*" && f != st[i]:
			return false
		}
	}
	return len(ft) == len(st)
}

// versionBelow compares "major.minor.patch" versions (a -suffix ignored).
func versionBelow(v, min string) bool {
	parse := func(s string) [3]int {
		s, _, _ = strings.Cut(strings.TrimPrefix(s, "v"), "-")
		var out [3]int
		for i, p := range strings.SplitN(s, ".", 3) {
			out[i], _ = strconv.Atoi(p)
		}
		return out
	}
	a, b := parse(v), parse(min)
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}
