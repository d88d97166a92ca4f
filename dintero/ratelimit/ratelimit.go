// Package ratelimit keeps the calls of every process that shares a Dintero
// account under one rate: a GCRA bucket in Redis
// (github.com/go-redis/redis_rate), asked before every HTTP attempt (it is
// a dintero.Limiter). Dintero publishes no rate limit; set the rate a
// little under what the account is allowed.
//
// The rate is split in two buckets. Lookups, session creations and token
// fetches have Share of it to themselves, and borrow from the payments'
// bucket when theirs is spent. Payments have the rest, and borrow from the
// other bucket only while it is at least half full: charges use the whole
// rate when nothing else does, and cannot starve the calls that resolve
// them.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/payworker/payworker/dintero"
)

// Config configures a Limiter. The zero value of an optional field means
// its documented default.
type Config struct {
	// Rate is the requests per second allowed to all processes together.
	// Required.
	Rate int
	// Burst is how many requests may go at once after a quiet spell.
	// Default Rate/10, at least 1.
	Burst int
	// Share is the part of Rate kept for lookups, sessions and token
	// fetches, from 0 to 0.9. Default 0.2.
	Share float64
	// Key names the buckets in Redis; processes with the same key share
	// them. Default "payworker:dintero".
	Key string
	// Observe, when set, is called after every wait with the operation and
	// how long it waited (a histogram, say).
	Observe func(op string, waited time.Duration)
}

func (c *Config) setDefaults() {
	if c.Burst == 0 {
		c.Burst = max(1, c.Rate/10)
	}
	if c.Share == 0 {
		c.Share = 0.2
	}
	if c.Key == "" {
		c.Key = "payworker:dintero"
	}
}

// Validate reports what is wrong with a config whose defaults are filled in.
func (c Config) Validate() error {
	var errs []error
	if c.Rate < 1 {
		errs = append(errs, fmt.Errorf("ratelimit: Rate must be at least 1 per second, got %d", c.Rate))
	}
	if c.Burst < 1 {
		errs = append(errs, fmt.Errorf("ratelimit: Burst must be at least 1, got %d", c.Burst))
	}
	if c.Share < 0 || c.Share > 0.9 {
		errs = append(errs, fmt.Errorf("ratelimit: Share must be between 0 and 0.9, got %g", c.Share))
	}
	return errors.Join(errs...)
}

// Limiter is a rate limit shared through Redis. It is safe for concurrent
// use.
type Limiter struct {
	rl        *redis_rate.Limiter
	cfg       Config
	pay, rest redis_rate.Limit
	// turn lets one caller of this process at a time ask Redis: the others
	// queue here, instead of all asking again each time a turn frees.
	turn chan struct{}
}

var _ dintero.Limiter = (*Limiter)(nil)

// New returns a Limiter over rdb. It does not contact Redis.
func New(rdb redis.UniversalClient, cfg Config) (*Limiter, error) {
	if rdb == nil {
		return nil, errors.New("ratelimit: nil redis client")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	part := func(f float64) redis_rate.Limit {
		r := max(1, int(math.Round(float64(cfg.Rate)*f)))
		return redis_rate.Limit{Rate: r, Period: time.Second, Burst: max(1, int(math.Round(float64(cfg.Burst)*f)))}
	}
	return &Limiter{rl: redis_rate.NewLimiter(rdb), cfg: cfg, pay: part(1 - cfg.Share), rest: part(cfg.Share),
		turn: make(chan struct{}, 1)}, nil
}

// Wait blocks until op may be sent, or ctx ends. When Redis cannot be
// asked it lets the call go: the limit protects Dintero, it must not stop
// payworker (and Dintero's own 429s still slow it down).
func (l *Limiter) Wait(ctx context.Context, op string) error {
	start := time.Now()
	defer func() {
		if l.cfg.Observe != nil {
			l.cfg.Observe(op, time.Since(start))
		}
	}()
	select {
	case l.turn <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	defer func() { <-l.turn }()
	for {
		wait, err := l.take(ctx, op)
		if err != nil || wait <= 0 {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case <-t.C:
		}
	}
}

// take takes a turn for op, or says how long to wait for one.
func (l *Limiter) take(ctx context.Context, op string) (time.Duration, error) {
	if op != dintero.OpPay {
		res, err := l.rl.Allow(ctx, l.cfg.Key+":other", l.rest)
		if err != nil || res.Allowed > 0 {
			return 0, err
		}
	}
	res, err := l.rl.Allow(ctx, l.cfg.Key+":pay", l.pay)
	if err != nil {
		return 0, err
	}
	if res.Allowed > 0 || op != dintero.OpPay {
		return max(0, res.RetryAfter), nil
	}
	// A payment borrows from an idle other bucket. AllowN of 0 reads the
	// bucket without taking from it.
	peek, err := l.rl.AllowN(ctx, l.cfg.Key+":other", l.rest, 0)
	if err == nil && peek.Remaining*2 >= l.rest.Burst {
		if other, err := l.rl.Allow(ctx, l.cfg.Key+":other", l.rest); err != nil || other.Allowed > 0 {
			return 0, err
		}
	}
	return res.RetryAfter, nil
}
