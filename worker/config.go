package worker

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/messages"
)

// Config tunes a Worker. The zero value of every field means the documented
// default.
type Config struct {
	// Namespace keeps this deployment apart from others on the same NATS
	// account (one per Dintero account, say): its subjects get the prefix
	// "<namespace>.", its streams and key-value bucket "<NAMESPACE>_"
	// (messages.NamesFor). At most 32 characters of a-z, 0-9, '_' and '-'.
	// Default "": the default names (messages.SubjectChargeRequest,
	// messages.StreamRequests, SessionsBucket, ...).
	Namespace string
	// Consumer is the durable consumer shared by all pods. Default "payworker".
	Consumer string
	// MaxInFlight is how many calls to Dintero one worker makes at once
	// (charges, lookups, sessions). It holds up to a quarter more requests
	// than that: those being claimed, or having their results stored and
	// published. Default 256.
	MaxInFlight int
	// MaxAckPending caps unacknowledged messages across all pods sharing the
	// consumer. Default 4 × MaxInFlight.
	MaxAckPending int
	// AckWait is how long the server waits for an ack before redelivering.
	// The worker heartbeats with InProgress every AckWait/3 while charging.
	// Default 30s.
	AckWait time.Duration
	// MaxDeliver is how many deliveries a request gets before the worker
	// gives up with a failed result and a dead letter. Default 20.
	MaxDeliver int
	// RetryDelay is the first NakWithDelay after a transient failure; it
	// doubles with every delivery up to MaxRetryDelay. Defaults 1s and 30s.
	RetryDelay    time.Duration
	MaxRetryDelay time.Duration
	// ResultsDuplicateWindow is the results stream's Nats-Msg-Id
	// de-duplication window; a result republished after a crash within it
	// is dropped by JetStream. Default 30m.
	ResultsDuplicateWindow time.Duration
	// ResultsMaxAge is how long results are kept for replay. Default 30 days.
	ResultsMaxAge time.Duration
	// StreamReplicas is the replica count of the streams, the key-value
	// bucket and the consumer that Setup creates (1, 3 or 5). Setup never
	// changes one that exists. Default 1.
	StreamReplicas int
	// SkipSetup makes Run bind to streams and a consumer made by an
	// operator instead of creating the missing ones; their settings are
	// still checked (see ErrConfig).
	SkipSetup bool
	// ShutdownGrace is how long in-flight requests may run after Run's
	// context is cancelled; it must exceed the Dintero client's timeout,
	// so that a call started before the signal can finish. Default 30s.
	ShutdownGrace time.Duration
	// Tracer makes the worker's spans (trace.go). Default: the global
	// OpenTelemetry tracer provider's, a no-op unless the process installs
	// one.
	Tracer trace.Tracer
	// Propagator carries trace context from a request to Dintero, to its
	// result and to its scheduled copies. Default DefaultPropagator (W3C
	// trace context and baggage).
	Propagator propagation.TextMapPropagator
	// Logger receives the worker's logs; nil discards them.
	Logger *slog.Logger
	// Metrics records Prometheus metrics; nil records nothing.
	Metrics *Metrics
	// ResolveSchedule is the resolution schedule of a parked request (a
	// charge, or a session request, whose outcome is unknown): the wait
	// before each lookup at Dintero.
	// Default 1m, 5m, 15m, 1h, 6h, then 24h seven times (ParseSchedule
	// reads "1m,5m,15m,1h,6h,24h*7").
	ResolveSchedule []time.Duration
	// ReviewEvery is how often a parked request is still looked up once
	// its resolution schedule is over (it then needs review). Default 24h.
	ReviewEvery time.Duration
	// Tokens, when set, turns the token governor on (governor.go): card
	// tokens Dintero said not to retry are blocked, and declined attempts
	// per token are limited by TokenLimits. Nil: off.
	Tokens Tokens
	// TokenKey is the key of the keyed hash that names a card token in
	// the store; every pod must have the same. Required with Tokens.
	TokenKey []byte
	// TokenLimits are the rolling windows of declined attempts per token.
	// Nil means DefaultTokenLimits (10 in 24h, 15 in 30 days); an empty
	// slice means no limit.
	TokenLimits []idempotency.TokenLimit
	// DisableQuarantine keeps tokens from being blocked after a decline
	// no retry can fix (the limits still count them).
	DisableQuarantine bool
	// DunningSchedule is the wait before each further attempt of a request
	// that asked for dunning (messages.HeaderRetryUntil), when Dintero gives
	// no retry_after; its length bounds the number of retries. Default
	// DefaultDunningSchedule.
	DunningSchedule []time.Duration
	// DisableDunning makes every decline final, whatever the request asks.
	DisableDunning bool
	// CallbackURL, when set, is the public URL of this service's
	// Callbacks endpoint. Session requests are then sent to Dintero with
	// url.callback_url set to it (with report_error=true, so that failed
	// payments are called back too), whatever the publisher put there.
	CallbackURL string
}

// maxHeld is how many requests one worker holds at once: MaxInFlight
// calling Dintero and a quarter more before and after their calls.
func (c Config) maxHeld() int { return c.MaxInFlight + (c.MaxInFlight+3)/4 }

func (c *Config) setDefaults() {
	if c.Consumer == "" {
		c.Consumer = "payworker"
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 256
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = 4 * c.MaxInFlight
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = 20
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = time.Second
	}
	if c.MaxRetryDelay == 0 {
		c.MaxRetryDelay = 30 * time.Second
	}
	if c.ResultsDuplicateWindow == 0 {
		c.ResultsDuplicateWindow = 30 * time.Minute
	}
	if c.ResultsMaxAge == 0 {
		c.ResultsMaxAge = 30 * 24 * time.Hour
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 30 * time.Second
	}
	if c.StreamReplicas == 0 {
		c.StreamReplicas = 1
	}
	if c.ResolveSchedule == nil {
		c.ResolveSchedule = DefaultResolveSchedule()
	}
	if c.ReviewEvery == 0 {
		c.ReviewEvery = 24 * time.Hour
	}
	if c.DunningSchedule == nil {
		c.DunningSchedule = DefaultDunningSchedule()
	}
	if c.TokenLimits == nil {
		c.TokenLimits = DefaultTokenLimits()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Tracer == nil {
		c.Tracer = defaultTracer()
	}
	if c.Propagator == nil {
		c.Propagator = DefaultPropagator()
	}
}

// Validate reports every problem of a config whose defaults are filled in
// (New does both).
func (c Config) Validate() error {
	var errs []error
	if err := messages.ValidateNamespace(c.Namespace); err != nil {
		errs = append(errs, fmt.Errorf("Config.Namespace: %w", err))
	}
	if c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("MaxInFlight must be at least 1, got %d", c.MaxInFlight))
	}
	if c.MaxAckPending < c.MaxInFlight {
		errs = append(errs, fmt.Errorf("MaxAckPending (%d) must be at least MaxInFlight (%d)", c.MaxAckPending, c.MaxInFlight))
	}
	if c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("AckWait must be at least 1s, got %s", c.AckWait))
	}
	if c.MaxDeliver < 1 {
		errs = append(errs, fmt.Errorf("MaxDeliver must be at least 1, got %d", c.MaxDeliver))
	}
	if c.RetryDelay < 0 || c.MaxRetryDelay < c.RetryDelay {
		errs = append(errs, fmt.Errorf("RetryDelay (%s) must be between 0 and MaxRetryDelay (%s)", c.RetryDelay, c.MaxRetryDelay))
	}
	if c.StreamReplicas != 1 && c.StreamReplicas != 3 && c.StreamReplicas != 5 {
		errs = append(errs, fmt.Errorf("StreamReplicas must be 1, 3 or 5, got %d", c.StreamReplicas))
	}
	for _, d := range c.ResolveSchedule {
		if d < time.Second {
			errs = append(errs, fmt.Errorf("ResolveSchedule: every wait must be at least 1s, got %s", d))
			break
		}
	}
	if c.Tokens != nil && len(c.TokenKey) < 16 {
		errs = append(errs, errors.New("TokenKey must have at least 16 bytes when the token governor is on"))
	}
	for _, l := range c.TokenLimits {
		if l.Window < time.Minute || l.Max < 1 {
			errs = append(errs, fmt.Errorf("TokenLimits: want at least 1 attempt in at least 1m, got %d in %s", l.Max, l.Window))
			break
		}
	}
	if c.ReviewEvery < time.Second {
		errs = append(errs, fmt.Errorf("ReviewEvery must be at least 1s, got %s", c.ReviewEvery))
	}
	if c.ShutdownGrace < 0 {
		errs = append(errs, fmt.Errorf("ShutdownGrace must not be negative, got %s", c.ShutdownGrace))
	}
	return errors.Join(errs...)
}

// DefaultResolveSchedule is the default Config.ResolveSchedule:
// "1m,5m,15m,1h,6h,24h*7" (as Kill Bill's Janitor and Hyperswitch's payment
// sync do, a week and a quarter of lookups).
func DefaultResolveSchedule() []time.Duration {
	s, _ := ParseSchedule("1m,5m,15m,1h,6h,24h*7")
	return s
}

// SessionsBucket is the JetStream key-value bucket where the sessions
// created at Dintero are remembered apart from Redis ("<NAMESPACE>_"
// before it in a namespace).
const SessionsBucket = "PAYWORKER_SESSIONS"

// names are the subjects, streams and bucket of one namespace
// (Config.Namespace).
type names struct {
	messages.Names
	schedules, retries string   // SubjectSchedules and SubjectRetries
	sessions           string   // SessionsBucket
	filters            []string // the request subjects the consumer takes
}

func namesOf(namespace string) names {
	n := names{Names: messages.NamesFor(namespace)}
	n.schedules, n.retries = n.Subject(SubjectSchedules), n.Subject(SubjectRetries)
	n.sessions = n.Stream(SessionsBucket)
	n.filters = []string{n.SubjectChargeRequest, n.SubjectSessionRequest}
	return n
}
