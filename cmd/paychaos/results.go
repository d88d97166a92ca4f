package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/messages"
)

// resultMsg is one message of the results stream.
type resultMsg struct {
	StreamSeq uint64    // in PAYMENT_RESULTS
	At        time.Time // when the results stream stored it
	MsgID     string    // Nats-Msg-Id: <ref>:<outcome>:<request seq>
	ReqSeq    uint64    // request sequence parsed from MsgID; 0 if unparsable
	Subject   string
	Result    messages.ChargeResult
	DecodeErr error
}

// parseResultMsgID splits "<ref>:<outcome>:<seq>" (see
// messages.ResultMsgID), or "<ref>:<outcome>:<seq>-<attempt>", the id of
// one of a dunning request's retry_scheduled events. The reference may
// itself contain colons.
func parseResultMsgID(id string) (ref, outcome string, seq uint64, ok bool) {
	i := strings.LastIndexByte(id, ':')
	if i < 0 {
		return "", "", 0, false
	}
	n, _, _ := strings.Cut(id[i+1:], "-")
	seq, err := strconv.ParseUint(n, 10, 64)
	if err != nil {
		return "", "", 0, false
	}
	j := strings.LastIndexByte(id[:i], ':')
	if j < 0 {
		return "", "", 0, false
	}
	return id[:j], id[j+1 : i], seq, true
}

func decodeResult(m jetstream.Msg) resultMsg {
	r := resultMsg{Subject: m.Subject(), MsgID: m.Headers().Get(messages.HeaderMsgID)}
	if md, err := m.Metadata(); err == nil {
		r.StreamSeq, r.At = md.Sequence.Stream, md.Timestamp
	}
	if _, _, seq, ok := parseResultMsgID(r.MsgID); ok {
		r.ReqSeq = seq
	}
	r.DecodeErr = json.Unmarshal(m.Data(), &r.Result)
	return r
}

// tracker follows the results stream live, so the load generator knows
// which requests are finished: those with a final result. Non-final events
// (unknown, needs_review, retry_scheduled) are counted apart.
type tracker struct {
	mu      sync.Mutex
	bySeq   map[uint64]int       // request seq -> final results seen
	first   map[uint64]time.Time // request seq -> when its first final result arrived
	total   int
	interim int // non-final events
}

func newTracker() *tracker {
	return &tracker{bySeq: map[uint64]int{}, first: map[uint64]time.Time{}}
}

func (t *tracker) add(r resultMsg) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	// A session request's created result is its answer here: the
	// customer never opens the page. Its unknown and needs_review events
	// (a parked request) are not.
	sessionAnswer := isSessionResult(r.Subject) && r.Result.Outcome == messages.OutcomeCreated
	if r.DecodeErr == nil && !r.Result.Outcome.Final() && !sessionAnswer {
		t.interim++
		return
	}
	if t.bySeq[r.ReqSeq] == 0 {
		t.first[r.ReqSeq] = now
	}
	t.bySeq[r.ReqSeq]++
	t.total++
}

// latencies returns, for each published request with a result, the time
// from its publish ack to its first result as seen live, sorted.
func (t *tracker) latencies(pubs []pubRec) []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]time.Duration, 0, len(pubs))
	for _, p := range pubs {
		if at, ok := t.first[p.Seq]; ok {
			out = append(out, max(0, at.Sub(p.At)))
		}
	}
	slices.Sort(out)
	return out
}

// slow is one request and how long its result took.
type slow struct {
	Pub  pubRec
	Took time.Duration
}

// slowest returns the n requests whose result took longest, slowest first.
func (t *tracker) slowest(pubs []pubRec, n int) []slow {
	t.mu.Lock()
	all := make([]slow, 0, len(pubs))
	for _, p := range pubs {
		if at, ok := t.first[p.Seq]; ok {
			all = append(all, slow{Pub: p, Took: at.Sub(p.At)})
		}
	}
	t.mu.Unlock()
	slices.SortFunc(all, func(a, b slow) int { return int(b.Took - a.Took) })
	return all[:min(n, len(all))]
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(float64(len(ds))*p/100+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// has reports whether the request with stream sequence seq has a result.
func (t *tracker) has(seq uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.bySeq[seq] > 0
}

// missing counts the sequences in seqs without a result.
func (t *tracker) missing(seqs []uint64) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, s := range seqs {
		if t.bySeq[s] == 0 {
			n++
		}
	}
	return n
}

// follow feeds every result, from the first, into t until ctx ends. The
// ordered consumer survives a nats-server restart by recreating itself.
func (t *tracker) follow(ctx context.Context, js jetstream.JetStream) error {
	var cons jetstream.Consumer
	for {
		var err error
		cons, err = js.OrderedConsumer(ctx, messages.StreamResults, jetstream.OrderedConsumerConfig{})
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(250 * time.Millisecond):
		}
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { t.add(decodeResult(m)) })
	if err != nil {
		return fmt.Errorf("follow results: %w", err)
	}
	<-ctx.Done()
	cc.Stop()
	return nil
}

// readAll reads every message of a stream with an ordered consumer and
// returns them in order.
func readAll(ctx context.Context, js jetstream.JetStream, stream string) ([]jetstream.Msg, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	if info.State.Msgs == 0 {
		return nil, nil
	}
	last := info.State.LastSeq
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	defer it.Stop()
	out := make([]jetstream.Msg, 0, info.State.Msgs)
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return out, fmt.Errorf("read %s: got %d of %d messages: %w", stream, len(out), info.State.Msgs, err)
			}
			return out, fmt.Errorf("read %s: %w", stream, err)
		}
		out = append(out, m)
		md, err := m.Metadata()
		if err != nil {
			return out, fmt.Errorf("read %s: %w", stream, err)
		}
		if md.Sequence.Stream >= last {
			return out, nil
		}
	}
}
