package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/messages"
	"github.com/payworker/payworker/worker"
)

const resolveAbout = `
A charge whose outcome is unknown (its pay call got no answer and the lookups
by merchant_reference failed) is parked: payworker looks it up at Dintero on a
schedule (PAYWORKER_RESOLVE_SCHEDULE) and never charges it again meanwhile.
So is a customer-initiated session request whose creation may have made a
session Dintero could not tell about. resolve makes the next lookup of each
of the reference's parked requests happen now. It exits 3 when nothing is
parked for the reference.

With --as declined or --as failed (and --why), an operator who checked
Dintero's backoffice closes the request: the worker looks it up first and
applies the verdict only when Dintero shows no transaction (it also applies
it when the lookup cannot reach Dintero); a transaction Dintero shows always
wins. A parked session request can only be closed as failed, applied unless
a session was answered for the reference (the open sessions Dintero holds
for it are cancelled). With --wait, resolve follows the results and prints
each request's final result (a session request's is created or failed),
saying when Dintero's transaction or session overrode the verdict; it
exits 1 when a final result did not come within the wait (the lookup did
not settle it and the request was parked again).

Who asked and why is logged on stderr and travels with the verdict into the
worker's log and the result's error message.`

// Limits of what a verdict carries in headers.
const (
	maxWhyBytes = 500
	maxByBytes  = 200
)

// verdict is an operator's verdict on a parked request.
type verdict struct {
	as      messages.Outcome
	by, why string
}

// resolvedRequest is one parked request in resolve's output.
type resolvedRequest struct {
	parked
	// WasDue is when the lookup was due before resolve moved it to now.
	WasDue *time.Time `json:"was_due,omitempty"`
	// Rescheduled says the lookup was moved to now; false when the
	// schedule fired on its own while resolve was moving it.
	Rescheduled bool `json:"rescheduled"`
	// ResultSubject and Result are the request's final result (--wait).
	ResultSubject string          `json:"result_subject,omitempty"`
	Result        json.RawMessage `json:"result,omitempty"`
	// VerdictOverridden says Dintero's transaction decided, not the
	// verdict: the final outcome differs from --as.
	VerdictOverridden bool `json:"verdict_overridden,omitempty"`
	// ParkedAgain is, when the lookup did not settle the request, when it
	// is looked up next.
	ParkedAgain *time.Time `json:"parked_again_until,omitempty"`

	// final is the request's final result; a session's decodes into it
	// as far as the fields are shared.
	final *messages.ChargeResult
}

// resolveOutput is what resolve --json prints.
type resolveOutput struct {
	MerchantReference string            `json:"merchant_reference"`
	RequestedBy       string            `json:"requested_by"`
	Why               string            `json:"why,omitempty"`
	ResolveAs         string            `json:"resolve_as,omitempty"`
	Requests          []resolvedRequest `json:"requests"`
	// Complete is true when every request got its final result (--wait).
	Complete bool `json:"complete"`
}

func resolve(ctx context.Context, c cli, args []string) error {
	f := newFlags("payctl resolve", "[flags] <merchant_reference>", resolveAbout)
	conn := addNATSFlags(f)
	as := f.String("as", "", "close the request as `outcome` (declined or failed) unless Dintero shows a transaction; needs --why")
	by := f.String("by", "", "who closes it (default $USER@hostname)")
	why := f.String("why", "", "why: what the operator checked (required with --as; at most 500 bytes)")
	wait := f.Duration("wait", 0, "wait this long for the final results and print them (0: do not wait)")
	asJSON := f.Bool("json", false, "print one JSON object: merchant_reference, requested_by, why, resolve_as, requests, complete")
	pos, err := f.parse(c, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("give exactly one merchant_reference (see payctl resolve -h)")
	}
	ref := pos[0]
	v := verdict{as: messages.Outcome(*as), by: oneLine(*by), why: oneLine(strings.TrimSpace(*why))}
	switch {
	case v.as != "" && v.as != messages.OutcomeDeclined && v.as != messages.OutcomeFailed:
		return usagef("--as: want declined or failed, got %q", *as)
	case v.as != "" && v.why == "":
		return usagef("--as needs --why: say what you checked (Dintero's backoffice shows no payment, ...)")
	case len(v.why) > maxWhyBytes:
		return usagef("--why: at most %d bytes, got %d", maxWhyBytes, len(v.why))
	case len(v.by) > maxByBytes:
		return usagef("--by: at most %d bytes, got %d", maxByBytes, len(v.by))
	case *wait < 0:
		return usagef("--wait must not be negative")
	}
	if v.by == "" {
		v.by = operator()
	}

	nc, js, err := conn.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	opCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	requests, err := js.Stream(opCtx, conn.names.StreamRequests)
	if err != nil {
		return fmt.Errorf("requests stream %s: %w (has payworker started once?)", conn.names.StreamRequests, err)
	}
	var found []parked
	for _, kind := range []string{messages.KindCharge, messages.KindSession} {
		ps, err := schedulesOf(opCtx, requests, conn.names, kind, ref)
		if err != nil {
			return err
		}
		found = append(found, ps...)
	}
	if len(found) == 0 {
		return notFoundf("nothing is parked for %q: it has no scheduled lookup in %s (payctl status %s shows its record)",
			ref, conn.names.StreamRequests, ref)
	}
	for _, p := range found {
		if p.Kind == messages.KindSession && v.as == messages.OutcomeDeclined {
			return usagef("--as declined: request #%d of %q is a session request, which can only be closed as failed", p.RequestSequence, ref)
		}
	}

	// Follow the results from before the first lookup is due, so that no
	// result is missed.
	var results *resultFollower
	if *wait > 0 {
		if results, err = followResults(opCtx, js, conn.names); err != nil {
			return err
		}
		defer results.stop()
	}

	logLine := fmt.Sprintf("%s payctl resolve %s: lookup now of %d parked request(s), asked by %s", time.Now().UTC().Format(time.RFC3339), ref, len(found), v.by)
	if v.why != "" {
		logLine += ": " + v.why
	}
	if v.as != "" {
		logLine += fmt.Sprintf("; verdict %s unless Dintero shows a transaction", v.as)
	}
	fmt.Fprintln(c.stderr, logLine)

	out := resolveOutput{MerchantReference: ref, RequestedBy: v.by, Why: v.why, ResolveAs: string(v.as)}
	for _, p := range found {
		r, err := reschedule(opCtx, js, requests, p, ref, v)
		if err != nil {
			return err
		}
		out.Requests = append(out.Requests, r)
		if !*asJSON {
			if r.Rescheduled {
				was := "?"
				if r.WasDue != nil {
					was = r.WasDue.Format(time.RFC3339)
				}
				fmt.Fprintf(c.stdout, "request #%d: lookup now (was due %s, step %d)\n", r.RequestSequence, was, r.Step)
			} else {
				note := ""
				if v.as != "" {
					note = ", without the verdict (run resolve again if it is parked again)"
				}
				fmt.Fprintf(c.stdout, "request #%d: its scheduled lookup fired meanwhile and runs now%s\n", r.RequestSequence, note)
			}
		}
	}

	if results != nil {
		err = awaitFinal(ctx, c, requests, results, &out, v, *wait, *asJSON)
	}
	out.Complete = err == nil && *wait > 0
	if *asJSON {
		if perr := printJSON(c.stdout, out); perr != nil && err == nil {
			err = perr
		}
	}
	return err
}

// operator is $USER@hostname, the default --by.
func operator() string {
	name := os.Getenv("USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	if name == "" {
		name = "unknown"
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		return name
	}
	return name + "@" + host
}

// oneLine replaces line breaks, which a header value cannot hold.
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(s)
}

// reschedule publishes p's schedule again on its subject, due now, with
// the verdict when there is one: a schedule replaces the one on its
// subject. The publish expects the schedule it read to be the last on the
// subject, so that a schedule that fired (and whose request may be
// finished) is never brought back.
func reschedule(ctx context.Context, js jetstream.JetStream, stream jetstream.Stream, p parked, ref string, v verdict) (resolvedRequest, error) {
	for range 3 {
		r := resolvedRequest{parked: p, WasDue: p.Due}
		m := nats.NewMsg(p.Subject)
		m.Data = p.msg.Data
		for k, vals := range p.msg.Header {
			if k == jetstream.MsgIDHeader || strings.HasPrefix(k, "Nats-Expected-") {
				continue
			}
			m.Header[k] = vals
		}
		m.Header.Set(jetstream.ScheduleHeader, "@at "+time.Now().UTC().Format(time.RFC3339))
		if v.as != "" {
			m.Header.Set(worker.HeaderResolveAs, string(v.as))
			m.Header.Set(worker.HeaderResolvedBy, v.by)
			m.Header.Set(worker.HeaderResolveWhy, v.why)
		}
		ack, err := js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(p.ScheduleSequence))
		if err == nil {
			r.Rescheduled, r.ScheduleSequence = true, ack.Sequence
			now := time.Now().UTC()
			r.Due, r.Schedule = &now, ""
			if v.as != "" {
				r.ResolveAs, r.ResolvedBy, r.ResolveWhy = string(v.as), v.by, v.why
			}
			return r, nil
		}
		if !wrongLastSequence(err) {
			return r, fmt.Errorf("request #%d: rescheduling %s: %w", p.RequestSequence, p.Subject, err)
		}
		// The schedule changed since it was read: it fired, or the worker
		// parked the request again.
		last, err := stream.GetLastMsgForSubject(ctx, p.Subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return r, nil // it fired: its lookup runs now
		}
		if err != nil {
			return r, fmt.Errorf("request #%d: reading %s again: %w", p.RequestSequence, p.Subject, err)
		}
		np, ok := readParked(last, ref)
		if !ok {
			return r, fmt.Errorf("request #%d: %s no longer holds a parked request's schedule", p.RequestSequence, p.Subject)
		}
		p = np
	}
	return resolvedRequest{}, fmt.Errorf("request #%d: its schedule kept changing while resolve moved it; try again", p.RequestSequence)
}

func wrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// resultFollower delivers the charge and session results published after it
// started.
type resultFollower struct {
	it   jetstream.MessagesContext
	msgs chan jetstream.Msg
	errc chan error
	done chan struct{}
}

// followResults follows the charge and session results (in names'
// namespace) from the next message of the results stream on, with an
// ordered consumer.
func followResults(ctx context.Context, js jetstream.JetStream, names messages.Names) (*resultFollower, error) {
	rs, err := js.Stream(ctx, names.StreamResults)
	if err != nil {
		return nil, fmt.Errorf("results stream %s: %w", names.StreamResults, err)
	}
	cons, err := js.OrderedConsumer(ctx, names.StreamResults, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{names.Subject("payments." + messages.KindCharge + ".result.>"), names.Subject("payments." + messages.KindSession + ".result.>")},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    rs.CachedInfo().State.LastSeq + 1,
	})
	if err != nil {
		return nil, fmt.Errorf("results stream %s: %w", names.StreamResults, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("results stream %s: %w", names.StreamResults, err)
	}
	f := &resultFollower{it: it, msgs: make(chan jetstream.Msg), errc: make(chan error, 1), done: make(chan struct{})}
	go func() {
		for {
			m, err := it.Next()
			if err != nil {
				f.errc <- err
				return
			}
			select {
			case f.msgs <- m:
			case <-f.done:
				return
			}
		}
	}()
	return f, nil
}

func (f *resultFollower) stop() {
	close(f.done)
	f.it.Stop()
}

// pollEvery is how often awaitFinal looks whether a request was parked
// again.
const pollEvery = 500 * time.Millisecond

// awaitFinal waits up to wait for the final result of every request in out,
// prints each, and returns an error when some did not come. A request
// parked again with its next lookup after the wait is given up on at once.
func awaitFinal(ctx context.Context, c cli, stream jetstream.Stream, results *resultFollower, out *resolveOutput, v verdict, wait time.Duration, asJSON bool) error {
	deadline := time.Now().Add(wait)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	bySeq := make(map[uint64]*resolvedRequest, len(out.Requests))
	for i := range out.Requests {
		bySeq[out.Requests[i].RequestSequence] = &out.Requests[i]
	}
	open := func() (waiting, hopeless int) {
		for _, r := range bySeq {
			if r.final != nil {
				continue
			}
			waiting++
			if r.ParkedAgain != nil && r.ParkedAgain.After(deadline) {
				hopeless++
			}
		}
		return waiting, hopeless
	}
	for {
		waiting, hopeless := open()
		if waiting == 0 {
			return nil
		}
		if hopeless == waiting {
			return fmt.Errorf("no final result for %q: the lookup did not settle %d request(s), which stay parked (payctl status %s)",
				out.MerchantReference, waiting, out.MerchantReference)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return fmt.Errorf("no final result for %q within %s for %d request(s): they stay parked (payctl status %s)",
				out.MerchantReference, wait, waiting, out.MerchantReference)
		case err := <-results.errc:
			return fmt.Errorf("following results: %w", err)
		case m := <-results.msgs:
			var res messages.ChargeResult
			if err := json.Unmarshal(m.Data(), &res); err != nil || res.MerchantReference != out.MerchantReference {
				continue
			}
			seq := resultSequence(m.Headers().Get(messages.HeaderMsgID))
			r := bySeq[seq]
			// A session request's created result is its answer.
			answer := res.Outcome.Final() || m.Subject() == messages.ResultSubject(messages.KindSession, messages.OutcomeCreated)
			if !answer || r == nil || r.final != nil {
				fmt.Fprintf(c.stderr, "%s request #%d: %s event\n", out.MerchantReference, seq, res.Outcome)
				continue
			}
			r.final, r.Result, r.ResultSubject = &res, rawJSON(m.Data()), m.Subject()
			r.VerdictOverridden = v.as != "" && res.Outcome != v.as
			if !asJSON {
				printFinal(c, r, v)
			}
		case <-tick.C:
			for _, r := range bySeq {
				if r.final == nil {
					checkParkedAgain(ctx, c, stream, r, out.MerchantReference, asJSON)
				}
			}
		}
	}
}

// resultSequence is the request sequence a result's Nats-Msg-Id ends
// with ("<reference>:<outcome>:<sequence>"); 0 when there is none.
func resultSequence(msgID string) uint64 {
	n, _ := strconv.ParseUint(msgID[strings.LastIndexByte(msgID, ':')+1:], 10, 64)
	return n
}

// checkParkedAgain notes when the worker parked r again: its schedule
// subject holds a schedule newer than the one resolve published.
func checkParkedAgain(ctx context.Context, c cli, stream jetstream.Stream, r *resolvedRequest, ref string, asJSON bool) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := stream.GetLastMsgForSubject(ctx, r.Subject)
	if err != nil || m.Sequence <= r.ScheduleSequence {
		return
	}
	p, ok := readParked(m, ref)
	if !ok || p.Due == nil {
		return
	}
	r.ScheduleSequence, r.ParkedAgain = m.Sequence, p.Due
	if !asJSON {
		fmt.Fprintf(c.stdout, "request #%d: the lookup did not settle it (Dintero unreachable, or its transaction still pending): parked again, step %d, next lookup at %s\n",
			r.RequestSequence, p.Step, p.Due.Format(time.RFC3339))
	}
}

// printFinal prints a request's final result for people.
func printFinal(c cli, r *resolvedRequest, v verdict) {
	res := r.final
	line := fmt.Sprintf("request #%d: %s", r.RequestSequence, res.Outcome)
	switch {
	case res.TransactionID != "":
		line += " (transaction " + res.TransactionID + ")"
	case res.SessionID != "":
		line += " (session " + res.SessionID + ")"
	}
	if res.Error != nil {
		line += fmt.Sprintf(" [%s] %s", res.Error.Code, res.Error.Message)
	}
	fmt.Fprintln(c.stdout, line)
	if r.VerdictOverridden {
		what := "transaction"
		if r.Kind == messages.KindSession {
			what = "session"
		}
		fmt.Fprintf(c.stdout, "request #%d: Dintero's %s overrode the verdict %s: the final outcome is %s\n",
			r.RequestSequence, what, v.as, res.Outcome)
	}
}
