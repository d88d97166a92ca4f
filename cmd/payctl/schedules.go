package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/worker"
)

// parked is the schedule of one parked request: the copy of the request
// the worker published into the requests stream as a JetStream message
// schedule, due at the next lookup (see worker/schedule.go).
type parked struct {
	Subject string `json:"subject"`
	// Kind is the request's kind: charge or session.
	Kind string `json:"kind"`
	// ScheduleSequence is the schedule's own sequence in the requests
	// stream.
	ScheduleSequence uint64 `json:"schedule_sequence"`
	// RequestSequence is the stream sequence of the request it stands for
	// (Payworker-Origin-Seq): its identity in results' Nats-Msg-Id.
	RequestSequence uint64 `json:"request_sequence"`
	// Step is the step of the resolution schedule the lookup is (1 for the
	// first; past the schedule's end the request needs review).
	Step int `json:"step"`
	// Due is when the lookup happens; Schedule is the raw Nats-Schedule
	// value when it is not an "@at" time.
	Due      *time.Time `json:"due,omitempty"`
	Schedule string     `json:"schedule,omitempty"`
	// ResolveAs, ResolvedBy and ResolveWhy are an operator's verdict
	// waiting in the schedule (payctl resolve --as).
	ResolveAs  string `json:"resolve_as,omitempty"`
	ResolvedBy string `json:"resolved_by,omitempty"`
	ResolveWhy string `json:"resolve_why,omitempty"`

	msg *jetstream.RawStreamMsg
}

// readParked reads a schedule message. ok is false when it is not the
// schedule of a parked request of ref (another kind of schedule, or a
// reference whose hash collides).
func readParked(m *jetstream.RawStreamMsg, ref string) (p parked, ok bool) {
	h := m.Header
	if h.Get(worker.HeaderResolveStep) == "" || h.Get(jetstream.ScheduleHeader) == "" {
		return parked{}, false
	}
	// A charge body holds the reference under session.order, a session
	// body under order.
	kind := messages.KindCharge
	switch ref {
	case messages.MerchantReference(m.Data):
	case messages.SessionMerchantReference(m.Data):
		kind = messages.KindSession
	default:
		return parked{}, false
	}
	p = parked{Subject: m.Subject, Kind: kind, ScheduleSequence: m.Sequence, msg: m,
		ResolveAs: h.Get(worker.HeaderResolveAs), ResolvedBy: h.Get(worker.HeaderResolvedBy), ResolveWhy: h.Get(worker.HeaderResolveWhy)}
	p.Step, _ = strconv.Atoi(h.Get(worker.HeaderResolveStep))
	p.RequestSequence, _ = strconv.ParseUint(h.Get(worker.HeaderOriginSeq), 10, 64)
	if p.RequestSequence == 0 { // the subject ends in it too
		p.RequestSequence, _ = strconv.ParseUint(m.Subject[strings.LastIndexByte(m.Subject, '.')+1:], 10, 64)
	}
	pattern := h.Get(jetstream.ScheduleHeader)
	if at, isAt := strings.CutPrefix(pattern, "@at "); isAt {
		if t, err := time.Parse(time.RFC3339, at); err == nil {
			t = t.UTC()
			p.Due = &t
		}
	}
	if p.Due == nil {
		p.Schedule = pattern
	}
	return p, true
}

// schedulesOf returns the schedules of ref's parked requests of kind, in
// the requests stream of names' namespace, ordered by request sequence. A
// schedule that fires while it is being read is left out.
func schedulesOf(ctx context.Context, stream jetstream.Stream, names messages.Names, kind, ref string) ([]parked, error) {
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(names.Subject(worker.ScheduleSubjects(kind, ref))))
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", names.StreamRequests, err)
	}
	var out []parked
	for subj := range info.State.Subjects {
		m, err := stream.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // it fired just now
		}
		if err != nil {
			return nil, fmt.Errorf("schedule %s: %w", subj, err)
		}
		if p, ok := readParked(m, ref); ok {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b parked) int { return cmp.Compare(a.RequestSequence, b.RequestSequence) })
	return out, nil
}

// describe is a schedule in one line, for people.
func (p parked) describe() string {
	due := p.Schedule
	if p.Due != nil {
		due = p.Due.Format(time.RFC3339)
	}
	s := fmt.Sprintf("request #%d: lookup step %d due %s (%s)", p.RequestSequence, p.Step, due, p.Subject)
	if p.ResolveAs != "" {
		s += fmt.Sprintf(", with the verdict %s by %s", p.ResolveAs, p.ResolvedBy)
	}
	return s
}
