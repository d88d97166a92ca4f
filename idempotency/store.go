package idempotency

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults for the zero fields of [Options].
const (
	DefaultPrefix    = "payworker:idem:"
	DefaultRetention = 30 * 24 * time.Hour
	DefaultLease     = 30 * time.Second
)

// Options configures a [Store]. The zero value is valid and means the
// documented defaults.
type Options struct {
	// Prefix is prepended to the reference to form the Redis key.
	// Default DefaultPrefix ("payworker:idem:").
	Prefix string
	// Retention is how long a record is kept after its last change
	// (completed, released or still claimed). Default DefaultRetention (30
	// days). Must be longer than Lease.
	Retention time.Duration
	// Lease is how long a claim stays exclusive without Extend. When it runs
	// out, the next Claim takes the record over as StateRecovered.
	// Default DefaultLease (30s); at least 1ms.
	Lease time.Duration
	// Batcher, when set, runs the calls every charge makes (the scripts of
	// Claim, Complete and TokenAcquire, and TokenSucceeded) instead of the
	// client given to New. Pass a
	// go-redis auto-pipeliner (redis.Client.AutoPipeline) so that the calls
	// of many concurrent requests share one write, one read and one Redis
	// event-loop pass. The scripts and their arguments are the same, so are
	// the answers: every script answers a resent call like the first one.
	// Default: the client.
	Batcher redis.Cmdable
}

// Store is a Redis idempotency store keyed on a request's merchant
// reference, in a key space per kind of request (see [Key]). It is safe for
// concurrent use.
type Store struct {
	rdb         redis.UniversalClient
	hot         redis.Cmdable // runs every charge's calls: Options.Batcher or rdb
	prefix      string
	leaseMS     int64
	retentionMS int64

	claimScript    *redis.Script
	extendScript   *redis.Script
	completeScript *redis.Script
	releaseScript  *redis.Script
	forgetScript   *redis.Script
	parkScript     *redis.Script

	tokenAcquireScript *redis.Script
}

func (o *Options) setDefaults() {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Lease == 0 {
		o.Lease = DefaultLease
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
}

// Validate reports what is wrong with options whose defaults are filled in
// (New does both).
func (o Options) Validate() error {
	if o.Lease < time.Millisecond {
		return fmt.Errorf("idempotency: lease %v must be at least 1ms", o.Lease)
	}
	if o.Retention <= o.Lease {
		return fmt.Errorf("idempotency: retention %v must be longer than the lease %v", o.Retention, o.Lease)
	}
	return nil
}

// New returns a Store using rdb. It fills in defaults and validates opts; it
// does not contact Redis (scripts are loaded on first use).
func New(rdb redis.UniversalClient, opts Options) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("idempotency: nil redis client")
	}
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	hot := opts.Batcher
	if hot == nil {
		hot = rdb
	}
	return &Store{
		rdb:            rdb,
		hot:            hot,
		prefix:         opts.Prefix,
		leaseMS:        opts.Lease.Milliseconds(),
		retentionMS:    opts.Retention.Milliseconds(),
		claimScript:    redis.NewScript(claimSrc),
		extendScript:   redis.NewScript(extendSrc),
		completeScript: redis.NewScript(completeSrc),
		releaseScript:  redis.NewScript(releaseSrc),
		forgetScript:   redis.NewScript(forgetSrc),
		parkScript:     redis.NewScript(parkSrc),

		tokenAcquireScript: redis.NewScript(tokenAcquireSrc),
	}, nil
}

// Space is a key space of the store. Each kind of request has its own, and
// callback deliveries and card tokens have theirs, so that no reference can
// reach another kind's record: the Redis key is Prefix + space + ":" + ref.
type Space string

// The key spaces of requests.
const (
	Charges  Space = "charge"
	Sessions Space = "session"
)

// Key names one record: a merchant reference in a key space.
type Key struct {
	Space Space
	Ref   string
}

// ChargeKey is the key of a charge request's merchant_reference.
func ChargeKey(ref string) Key { return Key{Space: Charges, Ref: ref} }

// SessionKey is the key of a customer-initiated session request's
// merchant_reference.
func SessionKey(ref string) Key { return Key{Space: Sessions, Ref: ref} }

// String is the key as it is written in errors: "charge:order-1".
func (k Key) String() string { return string(k.Space) + ":" + k.Ref }

// redisKey returns the Redis key of k, or an error for a key that names no
// known space or no reference.
func (s *Store) redisKey(k Key) (string, error) {
	if (k.Space != Charges && k.Space != Sessions) || k.Ref == "" {
		return "", fmt.Errorf("idempotency: key %q: %w", k.String(), ErrInvalidArgument)
	}
	return s.prefix + string(k.Space) + ":" + k.Ref, nil
}

// newToken returns 16 random bytes, hex encoded.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand crashes the program instead)
	var h [32]byte
	hex.Encode(h[:], b[:])
	return string(h[:])
}

// Claim atomically reads and, when appropriate, takes the record for ref, in
// one round trip. fingerprint identifies the request body; seq is the
// request's stream sequence. See [State] for what each answer means.
//
// The owner token is generated before the call and sent with it, so when
// go-redis resends the command after a lost reply, the script recognises the
// caller's own claim and answers as the first time instead of StateInProgress.
func (s *Store) Claim(ctx context.Context, key Key, fingerprint string, seq uint64) (Claim, error) {
	if fingerprint == "" {
		return Claim{}, fmt.Errorf("idempotency: claim: empty fingerprint: %w", ErrInvalidArgument)
	}
	return s.claim(ctx, key, fingerprint, seq, newToken())
}

func (s *Store) claim(ctx context.Context, key Key, fingerprint string, seq uint64, token string) (Claim, error) {
	rk, err := s.redisKey(key)
	if err != nil {
		return Claim{}, err
	}
	vals, err := s.claimScript.Run(ctx, s.hot, []string{rk},
		fingerprint, token, seq, s.leaseMS, s.retentionMS).Slice()
	if err != nil {
		return Claim{}, fmt.Errorf("idempotency: claim %q: %w", key, err)
	}
	c, err := parseClaim(vals)
	if err != nil {
		return Claim{}, fmt.Errorf("idempotency: claim %q: %w", key, err)
	}
	if c.State == StateNew || c.State == StateRecovered || c.State == StateParked {
		c.Token = token
	}
	return c, nil
}

func parseClaim(vals []any) (Claim, error) {
	if len(vals) != 5 {
		return Claim{}, fmt.Errorf("unexpected script reply of %d elements", len(vals))
	}
	code, err := toInt64(vals[0])
	if err != nil {
		return Claim{}, err
	}
	attempts, err := toInt64(vals[1])
	if err != nil {
		return Claim{}, err
	}
	seqStr, _ := vals[2].(string)
	seq, err := strconv.ParseUint(seqStr, 10, 64)
	if err != nil {
		return Claim{}, fmt.Errorf("bad stored sequence: %w", err)
	}
	leftMS, err := toInt64(vals[3])
	if err != nil {
		return Claim{}, err
	}
	c := Claim{
		State:          State(code),
		Attempts:       int(attempts),
		Sequence:       seq,
		LeaseRemaining: time.Duration(leftMS) * time.Millisecond,
	}
	if c.State < StateNew || c.State > StateParked {
		return Claim{}, fmt.Errorf("unexpected state code %d", code)
	}
	if c.State == StateCompleted {
		if r, _ := vals[4].(string); r != "" {
			c.Result = []byte(r)
		}
	}
	return c, nil
}

func toInt64(v any) (int64, error) {
	switch n := v.(type) {
	case int64:
		return n, nil
	case string:
		return strconv.ParseInt(n, 10, 64)
	}
	return 0, fmt.Errorf("unexpected script reply element %T", v)
}

// Extend renews the lease of the caller's claim for another Lease. It
// returns ErrNotOwner if token no longer owns the claim (taken over after the
// lease ran out, completed or released). A lease that ran out but was not
// taken over by anyone is renewed.
func (s *Store) Extend(ctx context.Context, key Key, token string) error {
	rk, err := s.redisKey(key)
	if err != nil {
		return err
	}
	n, err := s.extendScript.Run(ctx, s.rdb, []string{rk}, token, s.leaseMS, s.retentionMS).Int64()
	if err != nil {
		return fmt.Errorf("idempotency: extend %q: %w", key, err)
	}
	if n != 1 {
		return fmt.Errorf("idempotency: extend %q: %w", key, ErrNotOwner)
	}
	return nil
}

// Complete stores the final result and seq if token still owns the claim,
// and keeps the record for Retention. reopenable marks a result (a "failed"
// outcome) that a later Claim turns into StateRecovered instead of
// StateCompleted. If the record is already completed by this same token (a
// retried call whose reply was lost) Complete returns nil; otherwise it
// returns ErrNotOwner. One round trip.
func (s *Store) Complete(ctx context.Context, key Key, token string, seq uint64, result []byte, reopenable bool) error {
	rk, err := s.redisKey(key)
	if err != nil {
		return err
	}
	n, err := s.completeScript.Run(ctx, s.hot, []string{rk},
		token, seq, result, boolArg(reopenable), s.retentionMS).Int64()
	if err != nil {
		return fmt.Errorf("idempotency: complete %q: %w", key, err)
	}
	if n != 1 {
		return fmt.Errorf("idempotency: complete %q: %w", key, ErrNotOwner)
	}
	return nil
}

// Release gives up the caller's claim without a result, keeping the attempt
// count. The next Claim takes the record as StateNew, or as StateRecovered if
// maybeSent is true (the caller cannot be sure that nothing was charged).
// Releasing an already released claim with the same token returns nil;
// otherwise a token that does not own the claim gets ErrNotOwner.
func (s *Store) Release(ctx context.Context, key Key, token string, maybeSent bool) error {
	rk, err := s.redisKey(key)
	if err != nil {
		return err
	}
	return s.release(ctx, rk, key, token, maybeSent, false, 0, 0)
}

// Hold releases the caller's claim of request seq between two of its
// dunning attempts (nothing is in flight; its next attempt is scheduled),
// clearing the parked mark when unpark is set. Until the request's
// final result is stored, or for d (by Redis's clock), a claim by any other request of
// the reference answers StateInProgress: it waits for that result instead
// of charging the reference beside the request's own attempts.
func (s *Store) Hold(ctx context.Context, key Key, token string, seq uint64, d time.Duration, unpark bool) error {
	rk, err := s.redisKey(key)
	if err != nil {
		return err
	}
	return s.release(ctx, rk, key, token, false, unpark, seq, d)
}

// Unpark releases the caller's claim of a parked record whose outcome is
// known now and holds nothing in flight (a dunning attempt Dintero
// declined), and clears the parked mark: the next claim may charge again.
func (s *Store) Unpark(ctx context.Context, key Key, token string) error {
	rk, err := s.redisKey(key)
	if err != nil {
		return err
	}
	return s.release(ctx, rk, key, token, false, true, 0, 0)
}

func (s *Store) release(ctx context.Context, rk string, key Key, token string, maybeSent, unpark bool, holdSeq uint64, holdFor time.Duration) error {
	hold := ""
	if holdSeq != 0 {
		hold = strconv.FormatUint(holdSeq, 10)
	}
	n, err := s.releaseScript.Run(ctx, s.rdb, []string{rk},
		token, boolArg(maybeSent), s.retentionMS, boolArg(unpark), hold, max(holdFor.Milliseconds(), 1)).Int64()
	if err != nil {
		return fmt.Errorf("idempotency: release %q: %w", key, err)
	}
	if n != 1 {
		return fmt.Errorf("idempotency: release %q: %w", key, ErrNotOwner)
	}
	return nil
}

// Forget deletes the caller's record, so that the next Claim finds none.
// A worker uses it when the record it made is in another request's way:
// the reference turned out to belong to a payment Dintero already holds.
// Forgetting a record already gone returns nil; a token that does not own
// it gets ErrNotOwner.
func (s *Store) Forget(ctx context.Context, key Key, token string) error {
	rk, err := s.redisKey(key)
	if err != nil {
		return err
	}
	n, err := s.forgetScript.Run(ctx, s.rdb, []string{rk}, token).Int64()
	if err != nil {
		return fmt.Errorf("idempotency: forget %q: %w", key, err)
	}
	if n != 1 {
		return fmt.Errorf("idempotency: forget %q: %w", key, ErrNotOwner)
	}
	return nil
}

// Park marks the caller's claim parked: the reference's outcome is unknown
// and is being resolved by lookups, and seq is the request that parked it.
// Every later Claim with the same fingerprint is answered StateParked (so
// nobody charges the reference again) until a resolver completes the
// record. Parking again with the same token returns nil; a token that does
// not own the claim gets ErrNotOwner.
func (s *Store) Park(ctx context.Context, key Key, token string, seq uint64) error {
	rk, err := s.redisKey(key)
	if err != nil {
		return err
	}
	n, err := s.parkScript.Run(ctx, s.rdb, []string{rk}, token, seq, s.retentionMS).Int64()
	if err != nil {
		return fmt.Errorf("idempotency: park %q: %w", key, err)
	}
	if n != 1 {
		return fmt.Errorf("idempotency: park %q: %w", key, ErrNotOwner)
	}
	return nil
}

// Lease is how long a claim stays exclusive without Extend (Options.Lease).
func (s *Store) Lease() time.Duration { return time.Duration(s.leaseMS) * time.Millisecond }

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Get returns the record for key, or ErrNotFound.
func (s *Store) Get(ctx context.Context, key Key) (Record, error) {
	rk, err := s.redisKey(key)
	if err != nil {
		return Record{}, err
	}
	m, err := s.rdb.HGetAll(ctx, rk).Result()
	if err != nil {
		return Record{}, fmt.Errorf("idempotency: get %q: %w", key, err)
	}
	if len(m) == 0 {
		return Record{}, fmt.Errorf("idempotency: get %q: %w", key, ErrNotFound)
	}
	owner := m["token"]
	if len(owner) > 8 {
		owner = owner[:8]
	}
	r := Record{
		Reference:   key.Ref,
		Fingerprint: m["fp"],
		State:       m["state"],
		Owner:       owner,
		Reopenable:  m["reopen"] == "1",
		MaybeSent:   m["maybe_sent"] == "1",
		Parked:      m["parked"] == "1",
		LeaseUntil:  msTime(m["lease_until_ms"]),
		UpdatedAt:   msTime(m["updated_ms"]),
	}
	r.Attempts, _ = strconv.Atoi(m["attempts"])
	r.Sequence, _ = strconv.ParseUint(m["seq"], 10, 64)
	if v, ok := m["result"]; ok {
		r.Result = []byte(v)
	}
	return r, nil
}

// msTime converts a stored millisecond timestamp; "", "0" and garbage give
// the zero time.
func msTime(v string) time.Time {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(n)
}
