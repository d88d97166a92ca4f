package idempotency

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/payworker/payworker/idempotency/redistest"
)

// backend is a Redis the core suite runs against.
type backend struct {
	name   string
	client redis.UniversalClient
	// batcher, when set, is the stores' Options.Batcher.
	batcher redis.Cmdable
	// advance lets d of server time pass: the real server sleeps, miniredis
	// moves its clock.
	advance func(d time.Duration)
}

func realBackend(t *testing.T) backend {
	srv := redistest.Start(t, redistest.Options{})
	return backend{name: "redis", client: srv.Client(t), advance: time.Sleep}
}

// autoPipelineBackend is realBackend with Claim and Complete going through
// a go-redis auto-pipeliner, as payworker runs them.
func autoPipelineBackend(t *testing.T) backend {
	srv := redistest.Start(t, redistest.Options{})
	c := srv.Client(t)
	ap, err := c.AutoPipeline()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ap.Close() })
	return backend{name: "redis+autopipeline", client: c, batcher: ap, advance: time.Sleep}
}

func miniBackend(t *testing.T) backend {
	m := miniredis.RunT(t)
	var mu sync.Mutex
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	m.SetTime(now)
	m.ClockTTL(true)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return backend{name: "miniredis", client: c, advance: func(d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(d)
		m.SetTime(now)
	}}
}

const (
	testLease     = 300 * time.Millisecond
	testRetention = time.Hour
)

// newStore returns a store with a key prefix of its own for the (sub)test.
func newStore(t *testing.T, b backend, opts Options) *Store {
	t.Helper()
	opts.Prefix = "test:" + t.Name() + ":"
	if opts.Lease == 0 {
		opts.Lease = testLease
	}
	if opts.Retention == 0 {
		opts.Retention = testRetention
	}
	if opts.Batcher == nil {
		opts.Batcher = b.batcher
	}
	s, err := New(b.client, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func mustClaim(t *testing.T, s *Store, ref, fp string, seq uint64) Claim {
	t.Helper()
	c, err := s.Claim(context.Background(), ChargeKey(ref), fp, seq)
	if err != nil {
		t.Fatalf("Claim(%q): %v", ref, err)
	}
	return c
}

func mustOwn(t *testing.T, s *Store, ref, fp string, seq uint64) Claim {
	t.Helper()
	c := mustClaim(t, s, ref, fp, seq)
	if c.State != StateNew {
		t.Fatalf("setup Claim(%q) = %v, want new", ref, c.State)
	}
	return c
}

// claimAfterExpiry lets the lease run out and claims until the answer is no
// longer in_progress (polling with a deadline; the real server's clock runs
// on its own).
func claimAfterExpiry(t *testing.T, b backend, s *Store, ref, fp string, seq uint64) Claim {
	t.Helper()
	b.advance(testLease + 10*time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := mustClaim(t, s, ref, fp, seq)
		if c.State != StateInProgress {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("Claim(%q) still in_progress %v after the lease", ref, c.LeaseRemaining)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStore(t *testing.T) {
	for _, b := range []backend{realBackend(t), autoPipelineBackend(t), miniBackend(t)} {
		t.Run(b.name, func(t *testing.T) {
			t.Run("Transitions", func(t *testing.T) { testTransitions(t, b) })
			t.Run("LeaseExpiry", func(t *testing.T) { testLeaseExpiry(t, b) })
			t.Run("Extend", func(t *testing.T) { testExtend(t, b) })
			t.Run("LostReply", func(t *testing.T) { testLostReply(t, b) })
			t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, b) })
			t.Run("NotOwner", func(t *testing.T) { testNotOwner(t, b) })
			t.Run("CompleteTwice", func(t *testing.T) { testCompleteTwice(t, b) })
			t.Run("Retention", func(t *testing.T) { testRetentionTTL(t, b) })
			t.Run("Get", func(t *testing.T) { testGet(t, b) })
			t.Run("ScriptFlush", func(t *testing.T) { testScriptFlush(t, b) })
			t.Run("Values", func(t *testing.T) { testValues(t, b) })
			t.Run("CorruptRecord", func(t *testing.T) { testCorruptRecord(t, b) })
			t.Run("FailedResultKept", func(t *testing.T) { testFailedResultKept(t, b) })
			t.Run("Hold", func(t *testing.T) { testHold(t, b) })
		})
	}
}

// testHold: request 1 is between two dunning attempts (Hold); request 2,
// a duplicate, waits (in progress) instead of charging, while request 1's
// next attempt claims the record; once request 1 completes, request 2 is
// answered with its result. A hold that lapsed is no longer honoured.
func testHold(t *testing.T, b backend) {
	ctx := context.Background()
	s := newStore(t, b, Options{})
	key := ChargeKey("held")
	first := mustOwn(t, s, "held", "fp", 1)
	if err := s.Hold(ctx, key, first.Token, 1, time.Hour, false); err != nil {
		t.Fatal(err)
	}
	if c := mustClaim(t, s, "held", "fp", 2); c.State != StateInProgress || c.LeaseRemaining <= 0 {
		t.Fatalf("request 2 while request 1 holds the record = %+v, want in progress with a wait", c)
	}
	next := mustClaim(t, s, "held", "fp", 1)
	if next.State != StateNew {
		t.Fatalf("request 1's next attempt = %+v, want new (it may charge)", next)
	}
	if err := s.Release(ctx, key, next.Token, false); err != nil { // a transient failure: still held
		t.Fatal(err)
	}
	if c := mustClaim(t, s, "held", "fp", 2); c.State != StateInProgress {
		t.Fatalf("request 2 after request 1's attempt was released = %+v, want in progress", c)
	}
	again := mustClaim(t, s, "held", "fp", 1)
	if err := s.Complete(ctx, key, again.Token, 1, []byte(`{"outcome":"succeeded"}`), false); err != nil {
		t.Fatal(err)
	}
	if c := mustClaim(t, s, "held", "fp", 2); c.State != StateCompleted || c.Sequence != 1 {
		t.Fatalf("request 2 after request 1 completed = %+v, want request 1's result", c)
	}

	lapsed := mustOwn(t, s, "lapsed", "fp", 1)
	if err := s.Hold(ctx, ChargeKey("lapsed"), lapsed.Token, 1, 100*time.Millisecond, false); err != nil {
		t.Fatal(err)
	}
	b.advance(200 * time.Millisecond)
	if c := mustClaim(t, s, "lapsed", "fp", 2); c.State != StateNew {
		t.Fatalf("request 2 after the hold lapsed = %+v, want new", c)
	}
}

// testFailedResultKept: request 1 ends failed (re-openable); request 2, a
// duplicate, re-opens the record and charges; request 1 delivered again
// (its ack was lost) is answered with its own failed result, never claimed
// for a charge, whether request 2 is still charging or done, and whatever
// body request 2 carried.
func testFailedResultKept(t *testing.T, b backend) {
	ctx := context.Background()
	s := newStore(t, b, Options{})
	key := ChargeKey("kept")
	first := mustOwn(t, s, "kept", "fp", 1)
	failed := []byte(`{"outcome":"failed"}`)
	if err := s.Complete(ctx, key, first.Token, 1, failed, true); err != nil {
		t.Fatal(err)
	}
	second := mustClaim(t, s, "kept", "fp", 2)
	if second.State != StateRecovered {
		t.Fatalf("request 2's claim of a failed record = %v, want recovered (re-opened)", second.State)
	}
	check := func(when string) {
		t.Helper()
		again := mustClaim(t, s, "kept", "fp", 1)
		if again.State != StateCompleted || string(again.Result) != string(failed) || again.Sequence != 1 {
			t.Errorf("%s: request 1 again = %+v, want completed with its failed result under seq 1", when, again)
		}
	}
	check("while request 2 charges")
	if err := s.Complete(ctx, key, second.Token, 2, []byte(`{"outcome":"succeeded"}`), false); err != nil {
		t.Fatal(err)
	}
	check("after request 2 succeeded")
	if c := mustClaim(t, s, "kept", "fp", 3); c.State != StateCompleted || c.Sequence != 2 {
		t.Errorf("request 3 = %+v, want request 2's completed result", c)
	}
	// A request that failed for good keeps its own answer even against a
	// body that now conflicts.
	if again, err := s.Claim(ctx, key, "other-fp", 1); err != nil || again.State != StateCompleted {
		t.Errorf("request 1 again with another fingerprint = %+v, %v; want its completed result", again, err)
	}
}

func testTransitions(t *testing.T, b backend) {
	ctx := context.Background()
	const fp = "fp-1"
	tests := []struct {
		name  string
		setup func(t *testing.T, s *Store, ref string)
		fp    string
		// want
		state    State
		attempts int
		seq      uint64
		result   string
	}{
		{
			name:  "no record",
			setup: func(*testing.T, *Store, string) {},
			fp:    fp, state: StateNew, attempts: 1, seq: 9,
		},
		{
			name:  "claimed by a live owner",
			setup: func(t *testing.T, s *Store, ref string) { mustOwn(t, s, ref, fp, 5) },
			fp:    fp, state: StateInProgress, attempts: 1, seq: 5,
		},
		{
			name:  "claimed, other fingerprint",
			setup: func(t *testing.T, s *Store, ref string) { mustOwn(t, s, ref, fp, 5) },
			fp:    "fp-2", state: StateConflict, attempts: 1, seq: 5,
		},
		{
			name: "completed",
			setup: func(t *testing.T, s *Store, ref string) {
				c := mustOwn(t, s, ref, fp, 5)
				if err := s.Complete(ctx, ChargeKey(ref), c.Token, 6, []byte(`{"outcome":"succeeded"}`), false); err != nil {
					t.Fatal(err)
				}
			},
			fp: fp, state: StateCompleted, attempts: 1, seq: 6, result: `{"outcome":"succeeded"}`,
		},
		{
			name: "completed, other fingerprint",
			setup: func(t *testing.T, s *Store, ref string) {
				c := mustOwn(t, s, ref, fp, 5)
				if err := s.Complete(ctx, ChargeKey(ref), c.Token, 5, []byte(`{}`), false); err != nil {
					t.Fatal(err)
				}
			},
			fp: "fp-2", state: StateConflict, attempts: 1, seq: 5,
		},
		{
			name: "completed reopenable",
			setup: func(t *testing.T, s *Store, ref string) {
				c := mustOwn(t, s, ref, fp, 5)
				if err := s.Complete(ctx, ChargeKey(ref), c.Token, 5, []byte(`{"outcome":"failed"}`), true); err != nil {
					t.Fatal(err)
				}
			},
			fp: fp, state: StateRecovered, attempts: 2, seq: 9,
		},
		{
			name: "released, nothing sent",
			setup: func(t *testing.T, s *Store, ref string) {
				c := mustOwn(t, s, ref, fp, 5)
				if err := s.Release(ctx, ChargeKey(ref), c.Token, false); err != nil {
					t.Fatal(err)
				}
			},
			fp: fp, state: StateNew, attempts: 2, seq: 9,
		},
		{
			name: "released, maybe sent",
			setup: func(t *testing.T, s *Store, ref string) {
				c := mustOwn(t, s, ref, fp, 5)
				if err := s.Release(ctx, ChargeKey(ref), c.Token, true); err != nil {
					t.Fatal(err)
				}
			},
			fp: fp, state: StateRecovered, attempts: 2, seq: 9,
		},
		{
			name: "released, other fingerprint",
			setup: func(t *testing.T, s *Store, ref string) {
				c := mustOwn(t, s, ref, fp, 5)
				if err := s.Release(ctx, ChargeKey(ref), c.Token, false); err != nil {
					t.Fatal(err)
				}
			},
			fp: "fp-2", state: StateConflict, attempts: 1, seq: 5,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, b, Options{})
			const ref = "order-1"
			tt.setup(t, s, ref)
			before, err := s.Get(ctx, ChargeKey(ref))
			if err != nil && !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}

			c := mustClaim(t, s, ref, tt.fp, 9)

			if c.State != tt.state {
				t.Fatalf("State = %v, want %v", c.State, tt.state)
			}
			if c.Attempts != tt.attempts {
				t.Errorf("Attempts = %d, want %d", c.Attempts, tt.attempts)
			}
			if c.Sequence != tt.seq {
				t.Errorf("Sequence = %d, want %d", c.Sequence, tt.seq)
			}
			if string(c.Result) != tt.result {
				t.Errorf("Result = %q, want %q", c.Result, tt.result)
			}
			owns := tt.state == StateNew || tt.state == StateRecovered
			if owns != (len(c.Token) == 32) || (!owns && c.Token != "") {
				t.Errorf("Token = %q for state %v", c.Token, c.State)
			}
			if (tt.state == StateInProgress) != (c.LeaseRemaining > 0) || c.LeaseRemaining > testLease {
				t.Errorf("LeaseRemaining = %v for state %v", c.LeaseRemaining, c.State)
			}
			after, err := s.Get(ctx, ChargeKey(ref))
			if err != nil {
				t.Fatal(err)
			}
			if owns {
				if after.State != RecordClaimed || !strings.HasPrefix(c.Token, after.Owner) || after.Attempts != tt.attempts {
					t.Errorf("record after claim = %+v", after)
				}
				if after.Result != nil || after.Reopenable || after.MaybeSent {
					t.Errorf("record after take-over kept old outcome: %+v", after)
				}
			} else if !recordsEqual(before, after) {
				t.Errorf("%v claim changed the record:\nbefore %+v\nafter  %+v", c.State, before, after)
			}
		})
	}
}

func recordsEqual(a, b Record) bool {
	return a.Reference == b.Reference && a.Fingerprint == b.Fingerprint && a.State == b.State &&
		a.Owner == b.Owner && a.Attempts == b.Attempts && a.LeaseUntil.Equal(b.LeaseUntil) &&
		a.Sequence == b.Sequence && bytes.Equal(a.Result, b.Result) && a.Reopenable == b.Reopenable &&
		a.MaybeSent == b.MaybeSent && a.UpdatedAt.Equal(b.UpdatedAt)
}

func testLeaseExpiry(t *testing.T, b backend) {
	ctx := context.Background()
	s := newStore(t, b, Options{})
	first := mustOwn(t, s, "r", "fp", 1)

	c := claimAfterExpiry(t, b, s, "r", "fp", 2)
	if c.State != StateRecovered || c.Attempts != 2 || c.Sequence != 2 || c.Token == first.Token {
		t.Fatalf("claim after expiry = %+v, want recovered, attempts 2, seq 2, new token", c)
	}
	if err := s.Extend(ctx, ChargeKey("r"), first.Token); !errors.Is(err, ErrNotOwner) {
		t.Errorf("Extend by the expired owner = %v, want ErrNotOwner", err)
	}
	if err := s.Complete(ctx, ChargeKey("r"), first.Token, 1, []byte("{}"), false); !errors.Is(err, ErrNotOwner) {
		t.Errorf("Complete by the expired owner = %v, want ErrNotOwner", err)
	}
	if err := s.Release(ctx, ChargeKey("r"), first.Token, false); !errors.Is(err, ErrNotOwner) {
		t.Errorf("Release by the expired owner = %v, want ErrNotOwner", err)
	}
	if err := s.Complete(ctx, ChargeKey("r"), c.Token, 2, []byte("{}"), false); err != nil {
		t.Errorf("Complete by the new owner = %v", err)
	}

	// A recovered owner that dies too: the next claim is recovered again.
	mustOwn(t, s, "r2", "fp", 1)
	c3 := claimAfterExpiry(t, b, s, "r2", "fp", 2)
	c4 := claimAfterExpiry(t, b, s, "r2", "fp", 3)
	if c3.State != StateRecovered || c4.State != StateRecovered || c4.Attempts != 3 {
		t.Errorf("claims after two expiries = %v/%v attempts %d, want recovered twice, attempts 3", c3.State, c4.State, c4.Attempts)
	}
}

func testExtend(t *testing.T, b backend) {
	ctx := context.Background()
	s := newStore(t, b, Options{})
	owner := mustOwn(t, s, "r", "fp", 1)
	// Keep the claim for more than three leases by extending it often.
	const step = testLease / 6
	for range 20 {
		b.advance(step)
		if err := s.Extend(ctx, ChargeKey("r"), owner.Token); err != nil {
			t.Fatalf("Extend: %v", err)
		}
		if c := mustClaim(t, s, "r", "fp", 2); c.State != StateInProgress {
			t.Fatalf("competing claim while extended = %v, want in_progress", c.State)
		}
	}
	rec, err := s.Get(ctx, ChargeKey("r"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Attempts != 1 || rec.State != RecordClaimed || rec.LeaseUntil.IsZero() {
		t.Errorf("record after extends = %+v", rec)
	}
	// Once no longer extended, the lease runs out.
	if c := claimAfterExpiry(t, b, s, "r", "fp", 3); c.State != StateRecovered {
		t.Errorf("claim after the last extend ran out = %v, want recovered", c.State)
	}
}

func testLostReply(t *testing.T, b backend) {
	ctx := context.Background()
	s := newStore(t, b, Options{})

	t.Run("new", func(t *testing.T) {
		const token = "0123456789abcdef0123456789abcdef"
		for i := range 2 {
			c, err := s.claim(ctx, ChargeKey("new"), "fp", 7, token)
			if err != nil {
				t.Fatal(err)
			}
			if c.State != StateNew || c.Token != token || c.Attempts != 1 || c.Sequence != 7 {
				t.Fatalf("claim #%d with the same token = %+v, want new, attempts 1", i+1, c)
			}
		}
	})
	t.Run("recovered", func(t *testing.T) {
		mustOwn(t, s, "rec", "fp", 1)
		b.advance(testLease + 10*time.Millisecond)
		const token = "fedcba9876543210fedcba9876543210"
		deadline := time.Now().Add(5 * time.Second)
		var c Claim
		for {
			var err error
			if c, err = s.claim(ctx, ChargeKey("rec"), "fp", 2, token); err != nil {
				t.Fatal(err)
			}
			if c.State != StateInProgress || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if c.State != StateRecovered || c.Attempts != 2 {
			t.Fatalf("take-over = %+v, want recovered, attempts 2", c)
		}
		again, err := s.claim(ctx, ChargeKey("rec"), "fp", 2, token)
		if err != nil {
			t.Fatal(err)
		}
		if again.State != StateRecovered || again.Attempts != 2 || again.Token != token {
			t.Fatalf("resent take-over = %+v, want recovered, attempts 2 (not new, not counted twice)", again)
		}
	})
	t.Run("release", func(t *testing.T) {
		c := mustOwn(t, s, "rel", "fp", 1)
		for i := range 2 {
			if err := s.Release(ctx, ChargeKey("rel"), c.Token, true); err != nil {
				t.Fatalf("Release #%d: %v", i+1, err)
			}
		}
		if next := mustClaim(t, s, "rel", "fp", 2); next.State != StateRecovered || next.Attempts != 2 {
			t.Fatalf("claim after release = %+v, want recovered, attempts 2", next)
		}
	})
}

func testConcurrent(t *testing.T, b backend) {
	s := newStore(t, b, Options{Lease: time.Minute})
	const n = 50
	var (
		wg     sync.WaitGroup
		start  = make(chan struct{})
		claims = make([]Claim, n)
		errs   = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			claims[i], errs[i] = s.Claim(context.Background(), ChargeKey("same"), "fp", uint64(i+1))
		})
	}
	close(start)
	wg.Wait()
	count := map[State]int{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Claim #%d: %v", i, errs[i])
		}
		count[claims[i].State]++
	}
	if count[StateNew] != 1 || count[StateInProgress] != n-1 {
		t.Fatalf("answers = %v, want exactly one new and %d in_progress", count, n-1)
	}
}

func testNotOwner(t *testing.T, b backend) {
	ctx := context.Background()
	s := newStore(t, b, Options{})
	owner := mustOwn(t, s, "r", "fp", 1)
	const stranger = "00000000000000000000000000000000"
	ops := []struct {
		name string
		fn   func(ref, token string) error
	}{
		{"Extend", func(ref, token string) error { return s.Extend(ctx, ChargeKey(ref), token) }},
		{"Complete", func(ref, token string) error { return s.Complete(ctx, ChargeKey(ref), token, 1, []byte("{}"), false) }},
		{"Release", func(ref, token string) error { return s.Release(ctx, ChargeKey(ref), token, false) }},
	}
	for _, op := range ops {
		t.Run(op.name+"/other token", func(t *testing.T) {
			if err := op.fn("r", stranger); !errors.Is(err, ErrNotOwner) {
				t.Errorf("err = %v, want ErrNotOwner", err)
			}
		})
		t.Run(op.name+"/empty token", func(t *testing.T) {
			if err := op.fn("r", ""); !errors.Is(err, ErrNotOwner) {
				t.Errorf("err = %v, want ErrNotOwner", err)
			}
		})
		t.Run(op.name+"/no record", func(t *testing.T) {
			if err := op.fn("missing", owner.Token); !errors.Is(err, ErrNotOwner) {
				t.Errorf("err = %v, want ErrNotOwner", err)
			}
		})
	}
	if rec, err := s.Get(ctx, ChargeKey("r")); err != nil || rec.State != RecordClaimed || rec.Attempts != 1 {
		t.Fatalf("record after strangers = %+v, %v", rec, err)
	}
	if _, err := s.Get(ctx, ChargeKey("missing")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(missing) = %v, want ErrNotFound", err)
	}

	// After completion the owner can neither extend nor release.
	if err := s.Complete(ctx, ChargeKey("r"), owner.Token, 1, []byte("{}"), false); err != nil {
		t.Fatal(err)
	}
	if err := s.Extend(ctx, ChargeKey("r"), owner.Token); !errors.Is(err, ErrNotOwner) {
		t.Errorf("Extend after Complete = %v, want ErrNotOwner", err)
	}
	if err := s.Release(ctx, ChargeKey("r"), owner.Token, false); !errors.Is(err, ErrNotOwner) {
		t.Errorf("Release after Complete = %v, want ErrNotOwner", err)
	}
	// After release the owner can neither extend nor complete.
	rel := mustOwn(t, s, "rel", "fp", 1)
	if err := s.Release(ctx, ChargeKey("rel"), rel.Token, false); err != nil {
		t.Fatal(err)
	}
	if err := s.Extend(ctx, ChargeKey("rel"), rel.Token); !errors.Is(err, ErrNotOwner) {
		t.Errorf("Extend after Release = %v, want ErrNotOwner", err)
	}
	if err := s.Complete(ctx, ChargeKey("rel"), rel.Token, 1, []byte("{}"), false); !errors.Is(err, ErrNotOwner) {
		t.Errorf("Complete after Release = %v, want ErrNotOwner", err)
	}
	// A re-opened result: the first owner's late Complete is refused.
	re := mustOwn(t, s, "re", "fp", 1)
	if err := s.Complete(ctx, ChargeKey("re"), re.Token, 1, []byte(`{"outcome":"failed"}`), true); err != nil {
		t.Fatal(err)
	}
	if c := mustClaim(t, s, "re", "fp", 2); c.State != StateRecovered {
		t.Fatalf("claim of reopenable = %v", c.State)
	}
	if err := s.Complete(ctx, ChargeKey("re"), re.Token, 1, []byte(`{}`), false); !errors.Is(err, ErrNotOwner) {
		t.Errorf("Complete by the previous owner after re-open = %v, want ErrNotOwner", err)
	}
}

func testCompleteTwice(t *testing.T, b backend) {
	ctx := context.Background()
	s := newStore(t, b, Options{})
	c := mustOwn(t, s, "r", "fp", 1)
	for i := range 2 {
		if err := s.Complete(ctx, ChargeKey("r"), c.Token, 3, []byte(`{"n":1}`), false); err != nil {
			t.Fatalf("Complete #%d: %v", i+1, err)
		}
	}
	got := mustClaim(t, s, "r", "fp", 4)
	if got.State != StateCompleted || string(got.Result) != `{"n":1}` || got.Sequence != 3 {
		t.Fatalf("claim after completion = %+v", got)
	}
}

func testRetentionTTL(t *testing.T, b backend) {
	ctx := context.Background()
	s := newStore(t, b, Options{})
	c := mustOwn(t, s, "r", "fp", 1)
	checkTTL := func(when string) {
		t.Helper()
		ttl, err := b.client.PTTL(ctx, s.prefix+"charge:"+"r").Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= testRetention-10*time.Second || ttl > testRetention {
			t.Errorf("PTTL %s = %v, want about %v", when, ttl, testRetention)
		}
	}
	checkTTL("after claim")
	if err := b.client.PExpire(ctx, s.prefix+"charge:"+"r", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Extend(ctx, ChargeKey("r"), c.Token); err != nil {
		t.Fatal(err)
	}
	checkTTL("after extend")
	if err := b.client.PExpire(ctx, s.prefix+"charge:"+"r", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, ChargeKey("r"), c.Token, 1, []byte("{}"), false); err != nil {
		t.Fatal(err)
	}
	checkTTL("after complete")
}

func testGet(t *testing.T, b backend) {
	ctx := context.Background()
	s := newStore(t, b, Options{})
	c := mustOwn(t, s, "r", "fp", 41)
	rec, err := s.Get(ctx, ChargeKey("r"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Reference != "r" || rec.Fingerprint != "fp" || rec.State != RecordClaimed ||
		rec.Owner != c.Token[:8] || rec.Attempts != 1 || rec.Sequence != 41 ||
		rec.LeaseUntil.IsZero() || rec.UpdatedAt.IsZero() || !rec.LeaseUntil.After(rec.UpdatedAt) ||
		rec.Result != nil || rec.Reopenable || rec.MaybeSent {
		t.Errorf("claimed record = %+v", rec)
	}
	if err := s.Complete(ctx, ChargeKey("r"), c.Token, 42, []byte(`{"outcome":"failed"}`), true); err != nil {
		t.Fatal(err)
	}
	rec, err = s.Get(ctx, ChargeKey("r"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != RecordCompleted || rec.Sequence != 42 || string(rec.Result) != `{"outcome":"failed"}` ||
		!rec.Reopenable || !rec.LeaseUntil.IsZero() || rec.Owner != c.Token[:8] {
		t.Errorf("completed record = %+v", rec)
	}

	r2 := mustOwn(t, s, "r2", "fp", 1)
	if err := s.Release(ctx, ChargeKey("r2"), r2.Token, true); err != nil {
		t.Fatal(err)
	}
	rec, err = s.Get(ctx, ChargeKey("r2"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != RecordReleased || !rec.MaybeSent || !rec.LeaseUntil.IsZero() {
		t.Errorf("released record = %+v", rec)
	}
}

func testScriptFlush(t *testing.T, b backend) {
	ctx := context.Background()
	s := newStore(t, b, Options{})
	c := mustOwn(t, s, "r", "fp", 1)
	if err := b.client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, ChargeKey("r"), c.Token, 1, []byte("{}"), false); err != nil {
		t.Fatalf("Complete after SCRIPT FLUSH: %v", err)
	}
	if got := mustClaim(t, s, "r", "fp", 2); got.State != StateCompleted {
		t.Fatalf("Claim after SCRIPT FLUSH = %v", got.State)
	}
}

// testValues checks values that are easy to mangle: sequences beyond 2^53,
// binary results, long and odd references.
func testValues(t *testing.T, b backend) {
	ctx := context.Background()
	s := newStore(t, b, Options{})
	refs := []string{
		strings.Repeat("x", 255),
		"with space:and:colons/and/slashes {tag}",
		"unicode-æøå-✓",
	}
	result := []byte("{\"a\":\"\x00\xff\n\"}")
	for i, ref := range refs {
		c := mustOwn(t, s, ref, "fp", math.MaxUint64)
		if c.Sequence != math.MaxUint64 {
			t.Errorf("Sequence = %d, want MaxUint64", c.Sequence)
		}
		if err := s.Complete(ctx, ChargeKey(ref), c.Token, math.MaxUint64-uint64(i), result, false); err != nil {
			t.Fatal(err)
		}
		got := mustClaim(t, s, ref, "fp", 1)
		if got.State != StateCompleted || got.Sequence != math.MaxUint64-uint64(i) || !bytes.Equal(got.Result, result) {
			t.Errorf("Claim(%q) = %+v", ref, got)
		}
	}
	if _, err := s.Claim(ctx, ChargeKey(""), "fp", 1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Claim with empty ref = %v, want ErrInvalidArgument", err)
	}
	if _, err := s.Claim(ctx, ChargeKey("r"), "", 1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Claim with empty fingerprint = %v, want ErrInvalidArgument", err)
	}
}

// testCorruptRecord: a record in an unknown state is an error, never a
// charge.
func testCorruptRecord(t *testing.T, b backend) {
	ctx := context.Background()
	s := newStore(t, b, Options{})
	if err := b.client.HSet(ctx, s.prefix+"charge:"+"r", "fp", "fp", "state", "bogus").Err(); err != nil {
		t.Fatal(err)
	}
	c, err := s.Claim(ctx, ChargeKey("r"), "fp", 1)
	if err == nil {
		t.Fatalf("Claim of a corrupt record = %+v, want an error", c)
	}
	if c.State != 0 || c.Token != "" {
		t.Errorf("Claim returned %+v along with the error", c)
	}
}

func TestRestartKeepsCompleted(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	rdb := srv.Client(t)
	s, err := New(rdb, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Claim(ctx, ChargeKey("r"), "fp", 1)
	if err != nil || c.State != StateNew {
		t.Fatalf("Claim = %+v, %v", c, err)
	}
	if err := s.Complete(ctx, ChargeKey("r"), c.Token, 1, []byte(`{"ok":true}`), false); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Claim(ctx, ChargeKey("r"), "fp", 2)
	if err != nil {
		t.Fatalf("Claim after restart: %v", err)
	}
	if got.State != StateCompleted || string(got.Result) != `{"ok":true}` || got.Sequence != 1 {
		t.Fatalf("Claim after restart = %+v, want the completed record", got)
	}
	ttl, err := rdb.PTTL(ctx, s.prefix+"charge:"+"r").Result()
	if err != nil || ttl < DefaultRetention-time.Minute {
		t.Errorf("PTTL after restart = %v, %v", ttl, err)
	}
}

func TestNew(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { _ = rdb.Close() })
	tests := []struct {
		name    string
		rdb     redis.UniversalClient
		opts    Options
		wantErr bool
	}{
		{"defaults", rdb, Options{}, false},
		{"custom", rdb, Options{Prefix: "x:", Lease: time.Second, Retention: time.Hour}, false},
		{"nil client", nil, Options{}, true},
		{"negative lease", rdb, Options{Lease: -time.Second}, true},
		{"sub-millisecond lease", rdb, Options{Lease: time.Microsecond}, true},
		{"negative retention", rdb, Options{Retention: -time.Second}, true},
		{"retention not above lease", rdb, Options{Lease: time.Minute, Retention: time.Minute}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.rdb, tt.opts)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && (s.prefix == "" || s.leaseMS <= 0 || s.retentionMS <= s.leaseMS) {
				t.Errorf("store not defaulted: %+v", s)
			}
		})
	}
	s, err := New(rdb, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.prefix != DefaultPrefix || s.leaseMS != DefaultLease.Milliseconds() || s.retentionMS != DefaultRetention.Milliseconds() {
		t.Errorf("defaults = %q %d %d", s.prefix, s.leaseMS, s.retentionMS)
	}
}

func TestStateString(t *testing.T) {
	tests := []struct {
		s    State
		want string
	}{
		{StateNew, "new"},
		{StateCompleted, "completed"},
		{StateInProgress, "in_progress"},
		{StateRecovered, "recovered"},
		{StateConflict, "conflict"},
		{0, "State(0)"},
		{State(42), "State(42)"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("State(%d).String() = %q, want %q", int(tt.s), got, tt.want)
		}
	}
}

func TestNewTokenUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		tok := newToken()
		if len(tok) != 32 || strings.Trim(tok, "0123456789abcdef") != "" || seen[tok] {
			t.Fatalf("bad or repeated token %q", tok)
		}
		seen[tok] = true
	}
}
