package worker

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/messages"
)

// Metrics are the worker's Prometheus metrics. Create them with NewMetrics
// and pass them in Config.Metrics; a nil Metrics records nothing.
type Metrics struct {
	requests     *prometheus.CounterVec
	claims       *prometheus.CounterVec
	inFlight     prometheus.Gauge
	endToEnd     prometheus.Histogram
	retries      *prometheus.CounterVec
	redeliveries prometheus.Counter
	deadLetters  prometheus.Counter
	dintero      *prometheus.HistogramVec
	tokens       prometheus.Counter
	parks        *prometheus.CounterVec
	resolutions  *prometheus.CounterVec
	reviews      prometheus.Counter
	parkedAges   prometheus.Histogram
	declines     *prometheus.CounterVec
	tokenBlocks  *prometheus.CounterVec
	dunning      *prometheus.CounterVec
	recovered    *prometheus.CounterVec
	recoveredAmt *prometheus.CounterVec
	slots        prometheus.Gauge
	rateLimited  *prometheus.CounterVec
	rateWaits    *prometheus.HistogramVec
	parkedReqs   prometheus.Gauge
}

// NewMetrics registers the worker's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payworker_requests_total",
			Help: "Requests answered with a final result, by outcome and whether the answer came from the idempotency record.",
		}, []string{"outcome", "duplicate"}),
		claims: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payworker_idempotency_answers_total",
			Help: "Answers of the idempotency store to a claim: new, duplicate, conflict, recovered, in_progress.",
		}, []string{"kind"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "payworker_in_flight",
			Help: "Requests being handled right now.",
		}),
		endToEnd: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "payworker_request_duration_seconds",
			Help:    "From the request's arrival in JetStream to its result being published.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payworker_retries_total",
			Help: "Requests handed back for a later delivery (NakWithDelay), by reason.",
		}, []string{"reason"}),
		redeliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "payworker_redeliveries_total",
			Help: "Deliveries of a request after its first.",
		}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "payworker_dead_letters_total",
			Help: "Requests copied to the dead-letter stream (rejected, conflicting, or given up on).",
		}),
		dintero: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "payworker_dintero_request_duration_seconds",
			Help:    "Dintero HTTP calls by endpoint (auth, pay, create_session, get_transaction, list_transactions) and HTTP status (0: no response).",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"endpoint", "status"}),
		tokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "payworker_dintero_token_refreshes_total",
			Help: "Access tokens obtained from Dintero.",
		}),
	}
	m.parks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "payworker_parked_total",
		Help: "Requests (charges and sessions) parked because their outcome is unknown, by the step of the resolution schedule they were parked for (1: first parked).",
	}, []string{"step"})
	m.resolutions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "payworker_resolutions_total",
		Help: "Parked requests resolved, by final outcome and by the step of the resolution schedule that resolved them (0: a request meeting a parked record).",
	}, []string{"outcome", "step"})
	m.reviews = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "payworker_needs_review_total",
		Help: "Parked requests whose outcome was still unknown at the end of the resolution schedule: an operator must close them (payctl resolve).",
	})
	m.parkedAges = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "payworker_parked_age_seconds",
		Help:    "Age of a parked request (since its request was published) at each scheduled lookup.",
		Buckets: []float64{60, 300, 900, 3600, 6 * 3600, 24 * 3600, 3 * 24 * 3600, 7 * 24 * 3600, 30 * 24 * 3600},
	})
	m.declines = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "payworker_declines_total",
		Help: "Charges Dintero declined, by decline type and retry code (\"none\" when it gave none).",
	}, []string{"type", "retry_code"})
	m.tokenBlocks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "payworker_token_blocked_total",
		Help: "Charges answered declined without calling Dintero by the token governor: quarantine (the token is blocked) or budget (too many declines in a window). Each is a network fee avoided.",
	}, []string{"reason"})
	m.dunning = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "payworker_dunning_scheduled_total",
		Help: "Soft declines of requests with dunning whose next attempt was scheduled, by the attempt declined.",
	}, []string{"attempt"})
	m.recovered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "payworker_dunning_recovered_total",
		Help: "Requests with dunning that succeeded after a decline, by the attempt that succeeded.",
	}, []string{"attempt"})
	m.recoveredAmt = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "payworker_dunning_recovered_amount_total",
		Help: "Amount recovered by dunning, in minor units, by currency.",
	}, []string{"currency"})
	m.parkedReqs = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "payworker_parked_requests",
		Help: "Requests parked now because their outcome is unknown: the schedules in the requests stream (every pod reports the same count).",
	})
	m.slots = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "payworker_dintero_call_slots",
		Help: "Calls to Dintero this worker may have in flight now: PAYWORKER_MAX_IN_FLIGHT, less while Dintero answers 429.",
	})
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "payworker_dintero_rate_limited_total",
		Help: "Dintero calls answered 429 (rate limited), by endpoint.",
	}, []string{"endpoint"})
	m.rateWaits = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "payworker_dintero_rate_wait_seconds",
		Help:    "Time a Dintero call waited for its turn under the shared rate limit (PAYWORKER_DINTERO_RATE), by endpoint.",
		Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 10, 30},
	}, []string{"endpoint"})
	reg.MustRegister(m.requests, m.claims, m.inFlight, m.endToEnd, m.retries, m.redeliveries, m.deadLetters, m.dintero, m.tokens,
		m.parks, m.resolutions, m.reviews, m.parkedAges, m.declines, m.tokenBlocks, m.dunning, m.recovered, m.recoveredAmt,
		m.slots, m.rateLimited, m.rateWaits, m.parkedReqs)
	return m
}

// ObserveDintero records one Dintero HTTP call; it fits dintero.Config.Observe.
func (m *Metrics) ObserveDintero(op string, status int, elapsed time.Duration) {
	if m == nil {
		return
	}
	m.dintero.WithLabelValues(op, strconv.Itoa(status)).Observe(elapsed.Seconds())
	if status == 429 {
		m.rateLimited.WithLabelValues(op).Inc()
	}
	if op == dintero.OpAuth && status == 200 {
		m.tokens.Inc()
	}
}

func (m *Metrics) claim(s idempotency.State) {
	if m == nil {
		return
	}
	kind := "unknown"
	switch s {
	case idempotency.StateNew:
		kind = "new"
	case idempotency.StateCompleted:
		kind = "duplicate"
	case idempotency.StateConflict:
		kind = "conflict"
	case idempotency.StateRecovered:
		kind = "recovered"
	case idempotency.StateInProgress:
		kind = "in_progress"
	case idempotency.StateParked:
		kind = "parked"
	}
	m.claims.WithLabelValues(kind).Inc()
}

// result counts one result by outcome; seconds < 0 records no latency.
func (m *Metrics) result(outcome messages.Outcome, duplicate bool, seconds float64) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(string(outcome), strconv.FormatBool(duplicate)).Inc()
	if seconds >= 0 {
		m.endToEnd.Observe(seconds)
	}
}

func (m *Metrics) retry(reason string) {
	if m != nil {
		m.retries.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) redelivered() {
	if m != nil {
		m.redeliveries.Inc()
	}
}

func (m *Metrics) deadLettered() {
	if m != nil {
		m.deadLetters.Inc()
	}
}

func (m *Metrics) inflight(delta float64) {
	if m != nil {
		m.inFlight.Add(delta)
	}
}

func (m *Metrics) parked(step int) {
	if m != nil {
		m.parks.WithLabelValues(strconv.Itoa(step)).Inc()
	}
}

func (m *Metrics) resolved(outcome messages.Outcome, step int) {
	if m != nil {
		m.resolutions.WithLabelValues(string(outcome), strconv.Itoa(step)).Inc()
	}
}

func (m *Metrics) needsReview() {
	if m != nil {
		m.reviews.Inc()
	}
}

func (m *Metrics) parkedAge(d time.Duration) {
	if m != nil {
		m.parkedAges.Observe(d.Seconds())
	}
}

func (m *Metrics) tokenBlocked(reason string) {
	if m != nil {
		m.tokenBlocks.WithLabelValues(reason).Inc()
	}
}

// declined counts a decline by its first type and retry code.
func (m *Metrics) declined(e *dintero.EventError) {
	if m == nil {
		return
	}
	typ, code := "none", "none"
	if e != nil {
		if len(e.Type) > 0 {
			typ = e.Type[0]
		}
		if e.RetryPolicy != nil && len(e.RetryPolicy.RetryCodes) > 0 {
			code = e.RetryPolicy.RetryCodes[0]
		}
	}
	m.declines.WithLabelValues(typ, code).Inc()
}

func (m *Metrics) dunningScheduled(attempt int) {
	if m != nil {
		m.dunning.WithLabelValues(strconv.Itoa(attempt)).Inc()
	}
}

func (m *Metrics) dunningRecovered(attempt int, amount int64, currency string) {
	if m != nil {
		m.recovered.WithLabelValues(strconv.Itoa(attempt)).Inc()
		m.recoveredAmt.WithLabelValues(currency).Add(float64(amount))
	}
}

func (m *Metrics) callSlots(n int) {
	if m != nil {
		m.slots.Set(float64(n))
	}
}

// ObserveRateWait records how long a call waited for the shared rate limit;
// it fits ratelimit.Config.Observe.
func (m *Metrics) ObserveRateWait(op string, waited time.Duration) {
	if m != nil {
		m.rateWaits.WithLabelValues(op).Observe(waited.Seconds())
	}
}

func (m *Metrics) parkedNow(n int) {
	if m != nil {
		m.parkedReqs.Set(float64(n))
	}
}
