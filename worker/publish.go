package worker

import (
	"context"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/payworker/payworker/messages"
)

// Publisher is what publishing a result or a dead letter needs of
// JetStream (jetstream.JetStream implements it).
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// publishResult publishes a request's result with its deterministic
// Nats-Msg-Id, "<prefix><reference>:<outcome>:<request stream sequence>":
// publishing the same result again after a crash is de-duplicated by the
// results stream.
func (w *Worker) publishResult(ctx context.Context, d *delivery, r *result) error {
	id := messages.ResultMsgID(d.kind.msgIDPrefix+r.ref, r.outcome, d.seq) + r.idSuffix
	ctx, span := w.cfg.Tracer.Start(ctx, "publish "+string(r.outcome), trace.WithSpanKind(trace.SpanKindProducer))
	m := resultMsg(w.names.Names, r, id, w.now())
	w.inject(ctx, m.Header)
	_, err := w.pub.PublishMsg(ctx, m)
	endSpan(span, err)
	return err
}

// resultMsg builds a result event, on its subject in names' namespace: the
// Nats-Msg-Id and the CloudEvents attributes as headers (binary content
// mode of the CloudEvents NATS binding; ce-id is the Nats-Msg-Id, so a
// republished event keeps its identity). The caller adds the trace context.
func resultMsg(names messages.Names, r *result, msgID string, now time.Time) *nats.Msg {
	// One backing array for the header values: a result is published for
	// every request, and a slice per header was a fifth of the worker's
	// allocations per charge.
	vals := [...]string{msgID, "1.0", messages.CEType(r.kind, r.outcome), messages.CESource, ceEncode(msgID),
		now.UTC().Format(time.RFC3339Nano), "application/json", "application/json", ceEncode(r.ref)}
	h := make(nats.Header, len(vals)+3) // and the trace context
	for i, k := range [...]string{messages.HeaderMsgID, messages.HeaderCESpecVersion, messages.HeaderCEType,
		messages.HeaderCESource, messages.HeaderCEID, messages.HeaderCETime, messages.HeaderCEDataContentType,
		messages.HeaderContentType, messages.HeaderCESubject} {
		if vals[i] != "" {
			h[k] = vals[i : i+1 : i+1]
		}
	}
	return &nats.Msg{Subject: names.ResultSubject(r.kind, r.outcome), Data: r.body, Header: h}
}

// ceEncode percent-encodes a CloudEvents attribute value for a header, as
// the HTTP and NATS bindings ask: the bytes of the value's UTF-8 encoding
// that are not printable ASCII, and space, '"' and '%'.
func ceEncode(v string) string {
	clean := true
	for i := 0; i < len(v); i++ {
		if ceEscape(v[i]) {
			clean = false
			break
		}
	}
	if clean {
		return v
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !ceEscape(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func ceEscape(c byte) bool { return c <= ' ' || c >= 0x7f || c == '"' || c == '%' }

// Bounds of what a dead letter's reason and a result's error carry, so that
// a request with a pathological body is still answered (a result or a
// header over the server's max_payload cannot be published).
const (
	maxReasonBytes   = 512
	maxMessageBytes  = 1024
	maxResultFields  = 20
	maxFieldMsgBytes = 200
)

// deadLetter keeps a copy of the request, with the reason, in the
// dead-letter stream.
func (w *Worker) deadLetter(ctx context.Context, d *delivery, reason string) error {
	seq := ""
	if d.seq != 0 {
		seq = strconv.FormatUint(d.seq, 10)
	}
	m := nats.NewMsg(w.names.SubjectDeadLetters)
	m.Data = d.msg.Data()
	if seq != "" {
		m.Header.Set(messages.HeaderMsgID, "dead:"+seq)
	}
	m.Header.Set(messages.HeaderDeadReason, truncate(oneLine(reason), maxReasonBytes))
	m.Header.Set(messages.HeaderDeadSubject, d.msg.Subject())
	m.Header.Set(messages.HeaderDeadSequence, seq)
	if _, err := w.pub.PublishMsg(ctx, m); err != nil {
		return err
	}
	w.m.deadLettered()
	d.log.Info("request dead-lettered", "reason", truncate(oneLine(reason), maxReasonBytes))
	return nil
}

// capFields bounds a result error built from a validation error: at most
// maxResultFields field errors, each message at most maxFieldMsgBytes,
// with FieldsTotal counting them all, and a message of at most
// maxMessageBytes.
func capFields(rerr *messages.ResultError) {
	rerr.Message = capMessage(rerr.Message)
	if len(rerr.Fields) == 0 {
		return
	}
	rerr.FieldsTotal = len(rerr.Fields)
	fields := rerr.Fields[:min(len(rerr.Fields), maxResultFields)]
	rerr.Fields = make([]messages.FieldError, len(fields))
	for i, f := range fields {
		rerr.Fields[i] = messages.FieldError{Field: truncate(f.Field, maxFieldMsgBytes), Message: truncate(f.Message, maxFieldMsgBytes)}
	}
}

// capMessage bounds a result's error message.
func capMessage(s string) string { return truncate(s, maxMessageBytes) }

// truncate shortens s to at most n bytes without splitting a rune.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// oneLine replaces line breaks, which a header value cannot hold.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}
