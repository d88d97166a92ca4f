package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/payworker/payworker/idempotency"
)

// record is the idempotency record as status --json prints it.
type record struct {
	MerchantReference string     `json:"merchant_reference"`
	Kind              string     `json:"kind"` // "charge" or "session"
	State             string     `json:"state"`
	Attempts          int        `json:"attempts"`
	Owner             string     `json:"owner,omitempty"`
	LeaseUntil        *time.Time `json:"lease_until,omitempty"`
	RequestSequence   uint64     `json:"request_sequence"`
	Reopenable        bool       `json:"reopenable"`
	MaybeSent         bool       `json:"maybe_sent"`
	// Parked: the outcome is unknown and the reference is being resolved;
	// it is never charged again while parked.
	Parked      bool            `json:"parked"`
	UpdatedAt   time.Time       `json:"updated_at"`
	Fingerprint string          `json:"fingerprint,omitempty"`
	Result      json.RawMessage `json:"result,omitempty"`
	// Schedules are the scheduled lookups of a parked reference, read from
	// NATS; SchedulesError says why they could not be.
	Schedules      []parked `json:"schedules,omitempty"`
	SchedulesError string   `json:"schedules_error,omitempty"`
}

func status(ctx context.Context, c cli, args []string) error {
	f := newFlags("payctl status", "[flags] <merchant_reference>", `
Shows the idempotency record of a merchant_reference in Redis: its state,
attempts, lease, and the stored result. Exits 3 when there is no record
(never claimed, or older than PAYWORKER_IDEMPOTENCY_RETENTION).
REDIS_URL is read as payworker reads it; "payworker dev" prints its own.

For a parked reference (outcome unknown, being resolved) it also lists the
scheduled lookups from NATS: request, step, when due, and an operator's
verdict waiting in one (payctl resolve). When NATS cannot be reached it says
so and still exits 0.`)
	rurl := f.String("redis", redisURL(), "Redis URL of the idempotency store (env REDIS_URL)")
	conn := addNATSFlags(f)
	prefixFlag := addPrefixFlag(f)
	session := f.Bool("session", false, "the reference of a customer-initiated session request, not a charge")
	asJSON := f.Bool("json", false, "print the record as one JSON object")
	verbose := f.Bool("v", false, "show the Redis client's own log lines on stderr")
	pos, err := f.parse(c, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("give exactly one merchant_reference (see payctl status -h)")
	}
	ref := pos[0]
	prefix, err := conn.namespace.prefix(*prefixFlag)
	if err != nil {
		return err
	}
	opts, err := redis.ParseURL(*rurl)
	if err != nil {
		// url.Parse's errors quote the URL, password and all.
		return usagef("--redis (REDIS_URL): %s", urlError(err, *rurl))
	}
	// go-redis logs dial retries and pool events on its own; they are not
	// payctl's output.
	logTo := io.Discard
	if *verbose {
		logTo = c.stderr
	}
	redis.SetLogger(redisLogger{logTo})
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	store, err := idempotency.New(rdb, idempotency.Options{Prefix: prefix})
	if err != nil {
		return err
	}
	key, kind := idempotency.ChargeKey(ref), "charge"
	if *session {
		key, kind = idempotency.SessionKey(ref), "session"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rec, err := store.Get(ctx, key)
	if errors.Is(err, idempotency.ErrNotFound) {
		return notFoundf("no record for %q (%s): never claimed, or older than the retention", ref, kind)
	}
	if err != nil {
		return err
	}
	var schedules []parked
	var schedErr error
	if rec.Parked || rec.State == idempotency.RecordParked {
		schedules, schedErr = parkedSchedules(ctx, conn, kind, ref)
	}
	if *asJSON {
		out := record{
			MerchantReference: ref, Kind: kind, State: rec.State, Attempts: rec.Attempts, Owner: rec.Owner,
			RequestSequence: rec.Sequence, Reopenable: rec.Reopenable, MaybeSent: rec.MaybeSent,
			Parked: rec.Parked, UpdatedAt: rec.UpdatedAt.UTC(), Fingerprint: rec.Fingerprint, Schedules: schedules,
		}
		if schedErr != nil {
			out.SchedulesError = schedErr.Error()
		}
		if !rec.LeaseUntil.IsZero() {
			t := rec.LeaseUntil.UTC()
			out.LeaseUntil = &t
		}
		if len(rec.Result) > 0 {
			out.Result = rawJSON(rec.Result)
		}
		return printJSON(c.stdout, out)
	}
	w := c.stdout
	fmt.Fprintf(w, "merchant_reference  %s\n", ref)
	fmt.Fprintf(w, "state               %s\n", rec.State)
	fmt.Fprintf(w, "attempts            %d\n", rec.Attempts)
	fmt.Fprintf(w, "owner               %s\n", rec.Owner)
	if !rec.LeaseUntil.IsZero() {
		fmt.Fprintf(w, "lease until         %s\n", rec.LeaseUntil.UTC().Format(time.RFC3339Nano))
	}
	fmt.Fprintf(w, "request sequence    %d\n", rec.Sequence)
	fmt.Fprintf(w, "re-openable         %v\n", rec.Reopenable)
	fmt.Fprintf(w, "may have been sent  %v\n", rec.MaybeSent)
	fmt.Fprintf(w, "parked              %v\n", rec.Parked)
	fmt.Fprintf(w, "updated             %s\n", rec.UpdatedAt.UTC().Format(time.RFC3339Nano))
	if len(rec.Result) > 0 {
		fmt.Fprintf(w, "result              %s\n", rec.Result)
	}
	switch {
	case schedErr != nil:
		fmt.Fprintf(w, "schedules           not shown: %v\n", schedErr)
	case len(schedules) == 0 && (rec.Parked || rec.State == idempotency.RecordParked):
		fmt.Fprintf(w, "schedules           none (a lookup may be running now)\n")
	}
	for _, p := range schedules {
		fmt.Fprintf(w, "schedule            %s\n", p.describe())
	}
	return nil
}

// parkedSchedules lists the scheduled lookups of a parked reference from
// the requests stream.
func parkedSchedules(ctx context.Context, conn *natsFlags, kind, ref string) ([]parked, error) {
	nc, js, err := conn.connect()
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	stream, err := js.Stream(ctx, conn.names.StreamRequests)
	if err != nil {
		return nil, fmt.Errorf("requests stream %s: %w", conn.names.StreamRequests, err)
	}
	return schedulesOf(ctx, stream, conn.names, kind, ref)
}

// redisLogger sends go-redis's log lines to w (io.Discard unless -v).
type redisLogger struct{ w io.Writer }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	fmt.Fprintf(l.w, "redis: "+format+"\n", v...)
}
