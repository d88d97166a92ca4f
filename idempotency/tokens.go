package idempotency

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Card tokens. Besides merchant references, the store keeps what the card
// networks count per card: whether a token is blocked (Dintero said not to
// retry it) and its declined attempts in rolling windows. A token is named
// by a keyed hash of its provider and value (the caller makes it; the token
// itself never reaches Redis). Its two keys share the hash tag {hash}, so
// the scripts run on Redis Cluster: Prefix + "token:{<hash>}" (a hash: the
// block) and Prefix + "token:{<hash>}:attempts" (a sorted set of attempts
// by time).

// A TokenLimit is one rolling window of declined attempts: at most Max in
// any Window.
type TokenLimit struct {
	Window time.Duration
	Max    int
}

// A TokenVerdict is the answer of TokenAcquire.
type TokenVerdict struct {
	// Blocked: the token is blocked; Reason says why.
	Blocked bool
	Reason  string
	// LimitReached: the attempt would exceed Limit; Until is when the
	// window frees an attempt.
	LimitReached bool
	Limit        TokenLimit
	Until        time.Time
}

// Allowed reports whether the attempt may be made.
func (v TokenVerdict) Allowed() bool { return !v.Blocked && !v.LimitReached }

// TokenInfo is what the store keeps of a token, for inspection.
type TokenInfo struct {
	Blocked   bool
	Reason    string
	BlockedAt time.Time
	// Attempts are the declined (or reserved) attempts within the longest
	// window, oldest first.
	Attempts []time.Time
}

func (s *Store) tokenKeys(hash string) ([]string, error) {
	if hash == "" {
		return nil, fmt.Errorf("idempotency: token: empty hash: %w", ErrInvalidArgument)
	}
	k := s.prefix + "token:{" + hash + "}"
	return []string{k, k + ":attempts"}, nil
}

// TokenAcquire reserves one attempt of the token unless it is blocked or
// the attempt would exceed one of limits; the reservation counts as a
// declined attempt until TokenRelease takes it back (the attempt did not
// reach the card, or succeeded). attempt names the reservation uniquely.
// One round trip; atomic, so concurrent requests with one token cannot
// both take its last attempt.
func (s *Store) TokenAcquire(ctx context.Context, hash, attempt string, limits []TokenLimit) (TokenVerdict, error) {
	keys, err := s.tokenKeys(hash)
	if err != nil {
		return TokenVerdict{}, err
	}
	args := []any{attempt}
	for _, l := range limits {
		args = append(args, l.Window.Milliseconds(), l.Max)
	}
	vals, err := s.tokenAcquireScript.Run(ctx, s.hot, keys, args...).Slice()
	if err != nil {
		return TokenVerdict{}, fmt.Errorf("idempotency: token acquire: %w", err)
	}
	code, _ := toInt64(vals[0])
	switch code {
	case 0:
		return TokenVerdict{}, nil
	case 1:
		reason, _ := vals[1].(string)
		return TokenVerdict{Blocked: true, Reason: reason}, nil
	}
	w, _ := toInt64(vals[2])
	m, _ := toInt64(vals[3])
	at, _ := toInt64(vals[4])
	return TokenVerdict{LimitReached: true, Limit: TokenLimit{Window: time.Duration(w) * time.Millisecond, Max: int(m)},
		Until: time.UnixMilli(at)}, nil
}

// TokenBlocked reports whether the token is blocked, and why (the decline
// code TokenBlock was given). One round trip.
func (s *Store) TokenBlocked(ctx context.Context, hash string) (bool, string, error) {
	keys, err := s.tokenKeys(hash)
	if err != nil {
		return false, "", err
	}
	reason, err := s.hot.HGet(ctx, keys[0], "blocked").Result()
	switch {
	case errors.Is(err, redis.Nil):
		return false, "", nil
	case err != nil:
		return false, "", fmt.Errorf("idempotency: token blocked: %w", err)
	}
	return reason != "", reason, nil
}

// TokenRelease takes a reservation back: the attempt did not count.
func (s *Store) TokenRelease(ctx context.Context, hash, attempt string) error {
	keys, err := s.tokenKeys(hash)
	if err != nil {
		return err
	}
	if err := s.rdb.ZRem(ctx, keys[1], attempt).Err(); err != nil {
		return fmt.Errorf("idempotency: token release: %w", err)
	}
	return nil
}

// TokenSucceeded clears the token's declined attempts: a success resets
// the networks' count (Dintero's tokenization error handling guide).
func (s *Store) TokenSucceeded(ctx context.Context, hash string) error {
	keys, err := s.tokenKeys(hash)
	if err != nil {
		return err
	}
	if err := s.hot.Del(ctx, keys[1]).Err(); err != nil {
		return fmt.Errorf("idempotency: token succeeded: %w", err)
	}
	return nil
}

// TokenBlock blocks the token for reason (a decline code) for the store's
// retention: every later TokenAcquire answers Blocked.
func (s *Store) TokenBlock(ctx context.Context, hash, reason string) error {
	keys, err := s.tokenKeys(hash)
	if err != nil {
		return err
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, keys[0], "blocked", reason, "blocked_ms", strconv.FormatInt(time.Now().UnixMilli(), 10))
		p.PExpire(ctx, keys[0], time.Duration(s.retentionMS)*time.Millisecond)
		return nil
	})
	if err != nil {
		return fmt.Errorf("idempotency: token block: %w", err)
	}
	return nil
}

// TokenUnblock lifts a token's block and clears its attempts, and reports
// whether it was blocked.
func (s *Store) TokenUnblock(ctx context.Context, hash string) (bool, error) {
	keys, err := s.tokenKeys(hash)
	if err != nil {
		return false, err
	}
	n, err := s.rdb.Del(ctx, keys...).Result()
	if err != nil {
		return false, fmt.Errorf("idempotency: token unblock: %w", err)
	}
	return n > 0, nil
}

// Token returns what the store keeps of the token.
func (s *Store) Token(ctx context.Context, hash string) (TokenInfo, error) {
	keys, err := s.tokenKeys(hash)
	if err != nil {
		return TokenInfo{}, err
	}
	m, err := s.rdb.HGetAll(ctx, keys[0]).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return TokenInfo{}, fmt.Errorf("idempotency: token: %w", err)
	}
	zs, err := s.rdb.ZRangeWithScores(ctx, keys[1], 0, -1).Result()
	if err != nil {
		return TokenInfo{}, fmt.Errorf("idempotency: token: %w", err)
	}
	info := TokenInfo{Blocked: m["blocked"] != "", Reason: m["blocked"], BlockedAt: msTime(m["blocked_ms"])}
	for _, z := range zs {
		info.Attempts = append(info.Attempts, time.UnixMilli(int64(z.Score)))
	}
	return info, nil
}

// tokenAcquireSrc: KEYS[1] the token's hash, KEYS[2] its attempts; ARGV[1]
// attempt id, then pairs of window ms and max. Reply: {0} allowed,
// {1, reason} blocked, {2, ”, window ms, max, ms when the window frees}.
const tokenAcquireSrc = `
local blocked = redis.call('HGET', KEYS[1], 'blocked')
if blocked then
  return {1, blocked}
end
if #ARGV < 3 then
  return {0}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local longest = 0
for i = 2, #ARGV, 2 do
  longest = math.max(longest, tonumber(ARGV[i]))
end
if longest > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now - longest))
end
for i = 2, #ARGV, 2 do
  local w, m = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  local from = string.format('(%.0f', now - w)
  local n = redis.call('ZCOUNT', KEYS[2], from, '+inf')
  if n >= m then
    local oldest = redis.call('ZRANGEBYSCORE', KEYS[2], from, '+inf', 'WITHSCORES', 'LIMIT', n - m, 1)
    return {2, '', w, m, string.format('%.0f', tonumber(oldest[2]) + w)}
  end
end
redis.call('ZADD', KEYS[2], now, ARGV[1])
if longest > 0 then
  redis.call('PEXPIRE', KEYS[2], string.format('%.0f', longest))
end
return {0}
`
