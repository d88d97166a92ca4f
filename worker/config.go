package worker

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/payworker/payworker/messages"
)

// Config tunes a Worker. The zero value of every field means the documented
// default.
type Config struct {
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
	// SkipSetup stops New's caller from creating or updating streams and
	// the consumer (for clusters where they are managed elsewhere).
	SkipSetup bool
	// ShutdownGrace is how long in-flight requests may run after Run's
	// context is cancelled. Default 25s.
	ShutdownGrace time.Duration
	// Logger receives the worker's logs; nil discards them.
	Logger *slog.Logger
	// Metrics records Prometheus metrics; nil records nothing.
	Metrics *Metrics
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
		c.ShutdownGrace = 25 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func (c *Config) validate() error {
	var errs []error
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
	return errors.Join(errs...)
}

// filterSubjects are the request subjects this worker's consumer takes.
var filterSubjects = []string{messages.SubjectChargeRequest, messages.SubjectSessionRequest}
