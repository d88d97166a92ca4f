package worker

import (
	"context"
	"regexp"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/payworker/payworker/messages"
)

// resultMsg builds a result event: the deterministic Nats-Msg-Id, the
// CloudEvents attributes as headers (binary mode; ce-id is the Nats-Msg-Id,
// so a republished event keeps its identity), and the request's trace
// context when it had one.
func resultMsg(kind string, outcome messages.Outcome, ref, msgID string, data []byte, traceparent string, now time.Time) *nats.Msg {
	m := newMsg(messages.ResultSubject(kind, outcome), data, msgID)
	m.Header.Set(messages.HeaderCESpecVersion, "1.0")
	m.Header.Set(messages.HeaderCEType, messages.CEType(kind, outcome))
	m.Header.Set(messages.HeaderCESource, messages.CESource)
	m.Header.Set(messages.HeaderCEID, msgID)
	m.Header.Set(messages.HeaderCETime, now.UTC().Format(time.RFC3339Nano))
	if ref != "" {
		m.Header.Set(messages.HeaderCESubject, ref)
	}
	m.Header.Set(messages.HeaderContentType, "application/json")
	if traceparent != "" {
		m.Header.Set(messages.HeaderTraceparent, traceparent)
	}
	return m
}

// publishAndAck publishes a result and, once JetStream has stored it, acks
// the request (or terminates it with termReason when that is set). A failed
// publish hands the request back for a later delivery, which answers it
// from its record. It reports whether the request was settled.
func (w *Worker) publishAndAck(ctx context.Context, d *delivery, msg *nats.Msg, termReason string) bool {
	if _, err := w.js.PublishMsg(ctx, msg); err != nil {
		d.log.Warn("could not publish the result; retrying later", "subject", msg.Subject, "err", err)
		w.m.retry("publish")
		_ = d.msg.NakWithDelay(w.retryDelay(d.delivered))
		return false
	}
	var err error
	if termReason != "" {
		err = d.msg.TermWithReason(termReason)
	} else {
		err = d.msg.Ack()
	}
	if err != nil {
		d.log.Warn("ack failed; the request will be redelivered and answered from its record", "err", err)
		return false
	}
	return true
}

// validTraceparent matches a W3C traceparent (version 00); anything else on
// a request is dropped rather than passed on.
var validTraceparent = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)

// traceparentOf returns the request's traceparent header if it is valid.
func traceparentOf(h nats.Header) string { return checkTraceparent(h.Get(messages.HeaderTraceparent)) }

// checkTraceparent returns tp if it is a valid W3C traceparent, else "".
func checkTraceparent(tp string) string {
	if tp == "" || !validTraceparent.MatchString(tp) || tp[3:35] == "00000000000000000000000000000000" {
		return ""
	}
	return tp
}
