package dinterotest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/time/rate"
)

// newLimiter returns the token bucket of f, or nil when f has no limit.
func newLimiter(f Faults) *rate.Limiter {
	if f.RateLimit <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(f.RateLimit), f.RateBurst)
}

// Faults are failures injected into /v1 API calls (never into the admin
// endpoints or the customer's pages). For every call they are tried in
// this order: Latency and LatencyJitter, RateLimit, ResetRate, ErrorRate,
// RateLimitRate; each rate is an independent draw and the first hit
// answers the call. A rate of 1 always hits, 0 never.
// TimeoutAfterChargeRate applies only to /v1/sessions/pay, after the
// transaction has been recorded.
//
// In JSON (the admin endpoint) the fields are snake_case and durations are
// Go duration strings such as "150ms".
type Faults struct {
	// Latency is added to every API call. The sleep ends early if the
	// client gives up.
	Latency time.Duration `json:"latency"`
	// LatencyJitter adds a uniform random [0, LatencyJitter) on top.
	LatencyJitter time.Duration `json:"latency_jitter"`
	// ErrorRate is the fraction of calls answered 500 or 503 (half each)
	// before doing anything.
	ErrorRate float64 `json:"error_rate"`
	// RateLimitRate is the fraction of calls answered 429 with a
	// Retry-After header, before doing anything.
	RateLimitRate float64 `json:"rate_limit_rate"`
	// RetryAfter is sent in Retry-After as whole seconds, rounded up, at
	// least 1. Default 1s.
	RetryAfter time.Duration `json:"retry_after"`
	// TimeoutAfterChargeRate is the fraction of /v1/sessions/pay calls
	// (those that recorded a transaction) that are never answered: the
	// charge stands, the handler hangs until the client gives up or
	// Options.HangLimit passes, then the connection is dropped.
	TimeoutAfterChargeRate float64 `json:"timeout_after_charge_rate"`
	// ResetRate is the fraction of calls whose connection is dropped
	// without an answer and without doing anything.
	ResetRate float64 `json:"reset_rate"`
	// RateLimit is the account's request rate, per second, as a token
	// bucket over every API call (the token endpoint included): a call
	// that finds the bucket empty is answered 429 TOO_MANY_REQUESTS with
	// Retry-After, the whole seconds (rounded up, at least 1) until the
	// bucket holds a token again, and is counted in Counters.RateLimited.
	// 0 means no limit. Changing it (or RateBurst) starts a full bucket.
	RateLimit float64 `json:"rate_limit"`
	// RateBurst is the bucket's size: how many calls may come at once.
	// Default a tenth of a second's worth of RateLimit, at least 1.
	RateBurst int `json:"rate_burst"`
}

// Validate reports whether every rate is within [0, 1] and no duration is
// negative.
func (f Faults) Validate() error {
	var errs []error
	for _, r := range []struct {
		name string
		v    float64
	}{
		{"error_rate", f.ErrorRate},
		{"rate_limit_rate", f.RateLimitRate},
		{"timeout_after_charge_rate", f.TimeoutAfterChargeRate},
		{"reset_rate", f.ResetRate},
	} {
		if math.IsNaN(r.v) || r.v < 0 || r.v > 1 {
			errs = append(errs, fmt.Errorf("dinterotest: faults: %s must be within [0, 1]", r.name))
		}
	}
	if math.IsNaN(f.RateLimit) || math.IsInf(f.RateLimit, 0) || f.RateLimit < 0 {
		errs = append(errs, errors.New("dinterotest: faults: rate_limit must be a finite number ≥ 0 (0: no limit)"))
	}
	if f.RateBurst < 0 {
		errs = append(errs, errors.New("dinterotest: faults: rate_burst must not be negative"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"latency", f.Latency},
		{"latency_jitter", f.LatencyJitter},
		{"retry_after", f.RetryAfter},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("dinterotest: faults: %s must not be negative", d.name))
		}
	}
	return errors.Join(errs...)
}

func (f Faults) withDefaults() Faults {
	if f.RetryAfter == 0 {
		f.RetryAfter = defaultRetryAfter
	}
	if f.RateLimit > 0 && f.RateBurst == 0 {
		f.RateBurst = max(1, int(math.Ceil(f.RateLimit/10)))
	}
	return f
}

type faultsJSON struct {
	Latency                string  `json:"latency"`
	LatencyJitter          string  `json:"latency_jitter"`
	ErrorRate              float64 `json:"error_rate"`
	RateLimitRate          float64 `json:"rate_limit_rate"`
	RetryAfter             string  `json:"retry_after"`
	TimeoutAfterChargeRate float64 `json:"timeout_after_charge_rate"`
	ResetRate              float64 `json:"reset_rate"`
	RateLimit              float64 `json:"rate_limit"`
	RateBurst              int     `json:"rate_burst"`
}

// MarshalJSON encodes durations as Go duration strings.
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{
		Latency:                f.Latency.String(),
		LatencyJitter:          f.LatencyJitter.String(),
		ErrorRate:              f.ErrorRate,
		RateLimitRate:          f.RateLimitRate,
		RetryAfter:             f.RetryAfter.String(),
		TimeoutAfterChargeRate: f.TimeoutAfterChargeRate,
		ResetRate:              f.ResetRate,
		RateLimit:              f.RateLimit,
		RateBurst:              f.RateBurst,
	})
}

// UnmarshalJSON decodes durations from Go duration strings ("" or a
// missing field means 0) and rejects unknown fields. It does not validate
// ranges; call Validate.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var fj faultsJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fj); err != nil {
		return fmt.Errorf("dinterotest: faults: %w", err)
	}
	var out Faults
	for _, d := range []struct {
		name string
		s    string
		dst  *time.Duration
	}{
		{"latency", fj.Latency, &out.Latency},
		{"latency_jitter", fj.LatencyJitter, &out.LatencyJitter},
		{"retry_after", fj.RetryAfter, &out.RetryAfter},
	} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil {
			return fmt.Errorf("dinterotest: faults: %s: %w", d.name, err)
		}
		*d.dst = v
	}
	out.ErrorRate = fj.ErrorRate
	out.RateLimitRate = fj.RateLimitRate
	out.TimeoutAfterChargeRate = fj.TimeoutAfterChargeRate
	out.ResetRate = fj.ResetRate
	out.RateLimit = fj.RateLimit
	out.RateBurst = fj.RateBurst
	*f = out
	return nil
}

// chance draws true with probability rate.
func (s *Server) chance(rate float64) bool {
	switch {
	case rate <= 0:
		return false
	case rate >= 1:
		return true
	}
	s.rngMu.Lock()
	v := s.rng.Float64()
	s.rngMu.Unlock()
	return v < rate
}

func (s *Server) randN(n int64) int64 {
	s.rngMu.Lock()
	v := s.rng.Int64N(n)
	s.rngMu.Unlock()
	return v
}

// applyFaults injects the pre-request faults into a call to ep. It
// reports whether the call should proceed; when it returns false the
// answer has been written. A dropped connection panics with
// http.ErrAbortHandler.
func (s *Server) applyFaults(w http.ResponseWriter, r *http.Request, ep endpoint) bool {
	f := s.faults.Load()
	if f.Latency > 0 || f.LatencyJitter > 0 {
		d := f.Latency
		if f.LatencyJitter > 0 {
			d += time.Duration(s.randN(int64(f.LatencyJitter)))
		}
		if !s.sleep(r.Context(), d) {
			// The client gave up or the sandbox is closing: nobody to answer.
			panic(http.ErrAbortHandler)
		}
	}
	if lim := s.limiter.Load(); lim != nil {
		now := time.Now()
		if !lim.AllowN(now, 1) {
			s.c.rateLimited.Add(1)
			if ep == epPay {
				s.c.rateLimitedPay.Add(1)
			}
			// The wait until the bucket holds a whole token again.
			wait := (1 - lim.TokensAt(now)) / float64(lim.Limit())
			w.Header().Set("Retry-After", strconv.FormatInt(max(int64(math.Ceil(wait)), 1), 10))
			writeError(w, http.StatusTooManyRequests, "TOO_MANY_REQUESTS", "rate limit exceeded", nil)
			return false
		}
	}
	if s.chance(f.ResetRate) {
		s.c.faultResets.Add(1)
		panic(http.ErrAbortHandler)
	}
	if s.chance(f.ErrorRate) {
		s.c.faultErrors.Add(1)
		if s.randN(2) == 0 {
			writeError(w, http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", "sandbox fault: internal server error", nil)
		} else {
			writeError(w, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "sandbox fault: service unavailable", nil)
		}
		return false
	}
	if s.chance(f.RateLimitRate) {
		s.c.faultRateLimits.Add(1)
		secs := int64((f.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
		writeError(w, http.StatusTooManyRequests, "TOO_MANY_REQUESTS", "sandbox fault: too many requests", nil)
		return false
	}
	return true
}

// hangAfterCharge never answers: it waits until the client gives up, the
// hang limit passes or the sandbox closes, then drops the connection.
func (s *Server) hangAfterCharge(r *http.Request) {
	s.sleep(r.Context(), s.opts.HangLimit)
	panic(http.ErrAbortHandler)
}
