package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/payworker/payworker/messages"
)

// A request that must be looked at again later (a parked request whose
// outcome is unknown, a dunning attempt) is not kept in worker memory nor
// held unacknowledged: the worker publishes a JetStream message schedule
// (nats-server 2.12+) into the requests stream, on a subject of its own,
// and acks the request. When it is due the server publishes the schedule's
// body, the request as it came, with the headers below, on the request
// subject, where any worker takes it like a new request. A schedule
// survives every restart and is shared by the pods; one subject holds one
// schedule, so scheduling a request again replaces its schedule.
//
// The headers a scheduled copy carries. Publishers never set them.
const (
	// HeaderOriginSeq is the stream sequence of the request the copy
	// stands for: its identity, for the idempotency record and the
	// results' Nats-Msg-Id.
	HeaderOriginSeq = "Payworker-Origin-Seq"
	// HeaderOriginTime is when that request was published (RFC 3339).
	HeaderOriginTime = "Payworker-Origin-Time"
	// HeaderResolveStep is, on the copy of a parked request, the step of
	// the resolution schedule it is (1 for the first lookup).
	HeaderResolveStep = "Payworker-Resolve-Step"
	// HeaderResolveAs, HeaderResolvedBy and HeaderResolveWhy carry an
	// operator's verdict on a parked request (payctl resolve --as): failed
	// or declined, applied unless Dintero shows a transaction.
	HeaderResolveAs  = "Payworker-Resolve-As"
	HeaderResolvedBy = "Payworker-Resolved-By"
	HeaderResolveWhy = "Payworker-Resolve-Why"
)

// JetStream's message schedule headers.
const (
	headerSchedule       = "Nats-Schedule"
	headerScheduleTarget = "Nats-Schedule-Target"
)

// The schedules' subjects, which the requests stream takes: those of parked
// requests (SubjectSchedules) and those of dunning attempts (SubjectRetries).
// They are outside payments.> so that they overlap no request or result
// subject. These and the subjects below are those of the default
// namespace; in a namespace (Config.Namespace) they are prefixed
// "<namespace>." as every subject is (messages.Names.Subject).
const (
	SubjectSchedules = "payworker.schedule.>"
	SubjectRetries   = "payworker.retry.>"
)

// ScheduleSubject is the subject of the schedule of one parked request:
// payworker.schedule.<kind>.<first 16 hex digits of the reference's
// SHA-256>.<origin sequence>. payctl finds a reference's schedules with
// the wildcard payworker.schedule.<kind>.<hash>.*.
func ScheduleSubject(kind, ref string, originSeq uint64) string {
	return scheduleStem(kind, ref) + "." + strconv.FormatUint(originSeq, 10)
}

// ScheduleSubjects is the wildcard subject of every schedule of a
// reference.
func ScheduleSubjects(kind, ref string) string { return scheduleStem(kind, ref) + ".*" }

// RetrySubject is the subject of the next dunning attempt of a request:
// payworker.retry.<kind>.<hash>.<origin sequence>.
func RetrySubject(kind, ref string, originSeq uint64) string {
	return "payworker.retry." + kind + "." + refHash(ref) + "." + strconv.FormatUint(originSeq, 10)
}

func scheduleStem(kind, ref string) string { return "payworker.schedule." + kind + "." + refHash(ref) }

// refHash is the first 16 hex digits of the SHA-256 of ref.
func refHash(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return hex.EncodeToString(sum[:8])
}

// origin is what a scheduled copy says of the request it stands for.
type origin struct {
	copy      bool      // the delivery is a scheduled copy
	published time.Time // when the request itself was published
	step      int       // resolution step (0: not a resolution)
	resolveAs messages.Outcome
	by, why   string
}

// readOrigin reads the headers of a scheduled copy into d.
func readOrigin(d *delivery, h nats.Header) {
	seq, err := strconv.ParseUint(h.Get(HeaderOriginSeq), 10, 64)
	if err != nil || seq == 0 {
		return
	}
	d.seq, d.origin.copy = seq, true
	if t, err := time.Parse(time.RFC3339Nano, h.Get(HeaderOriginTime)); err == nil {
		d.published, d.origin.published = t, t
	}
	d.origin.step, _ = strconv.Atoi(h.Get(HeaderResolveStep))
	if as := messages.Outcome(h.Get(HeaderResolveAs)); as == messages.OutcomeFailed || as == messages.OutcomeDeclined {
		d.origin.resolveAs, d.origin.by, d.origin.why = as, h.Get(HeaderResolvedBy), h.Get(HeaderResolveWhy)
	}
}

// schedule publishes a copy of d's request on subject (ScheduleSubject or
// RetrySubject, in the worker's namespace), due at at, with the origin
// headers and extra.
func (w *Worker) schedule(ctx context.Context, d *delivery, subject string, at time.Time, extra nats.Header) error {
	m := nats.NewMsg(w.names.Subject(subject))
	m.Data = d.msg.Data()
	if !d.retryUntil.IsZero() {
		// A dunning request stays one across its copies.
		m.Header.Set(messages.HeaderRetryUntil, d.retryUntil.UTC().Format(time.RFC3339))
	}
	for k, v := range extra {
		m.Header[k] = v
	}
	m.Header.Set(headerSchedule, "@at "+at.UTC().Format(time.RFC3339))
	m.Header.Set(headerScheduleTarget, w.names.Subject(d.kind.subject))
	m.Header.Set(HeaderOriginSeq, strconv.FormatUint(d.seq, 10))
	m.Header.Set(HeaderOriginTime, d.published.UTC().Format(time.RFC3339Nano))
	w.inject(ctx, m.Header)
	if _, err := w.pub.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("scheduling the request for %s: %w", at.UTC().Format(time.RFC3339), err)
	}
	return nil
}

// ParseSchedule parses a resolution schedule such as
// "1m,5m,15m,1h,6h,24h*7": the waits before each lookup, a "*n" repeating
// one n times.
func ParseSchedule(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		step, times, repeated := strings.Cut(part, "*")
		d, err := time.ParseDuration(step)
		if err != nil || d < time.Second {
			return nil, fmt.Errorf("%q: want a duration of at least 1s, such as 5m", part)
		}
		n := 1
		if repeated {
			if n, err = strconv.Atoi(times); err != nil || n < 1 || n > 1000 {
				return nil, fmt.Errorf("%q: want a repeat count from 1 to 1000 after '*'", part)
			}
		}
		for range n {
			out = append(out, d)
		}
	}
	return out, nil
}
