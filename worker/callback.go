package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"golang.org/x/time/rate"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/messages"
)

// CallbackPath is where Callbacks is mounted: point a session's
// url.callback_url at https://<this worker>/dintero/callback.
const CallbackPath = "/dintero/callback"

// Bounds of a callback request, checked before any other work: Dintero's
// callbacks carry a handful of query parameters, and the body of a POST
// callback (the transaction) is not used.
const (
	MaxCallbackQuery = 8 << 10
	MaxCallbackBody  = 64 << 10
)

// Deliveries remembers handled callback deliveries (*idempotency.Store
// implements it).
type Deliveries interface {
	DeliveryHandled(ctx context.Context, id string) (bool, error)
	MarkDelivery(ctx context.Context, id string) error
}

// TransactionGetter is what Callbacks needs of Dintero (*dintero.Client
// implements it).
type TransactionGetter interface {
	GetTransaction(ctx context.Context, id string, includes ...string) (*dintero.Transaction, error)
}

// CallbackConfig configures Callbacks. The zero value of an optional field
// means its documented default.
type CallbackConfig struct {
	// Secret is the account's callback signature secret. Required.
	Secret []byte
	// AccountID is the Dintero account the signature covers. Required.
	AccountID string
	// Namespace is the deployment's namespace, as in Config.Namespace:
	// results go to its result subjects. Default "".
	Namespace string
	// PublicURL is the URL Dintero calls, as given to it in
	// url.callback_url (PAYWORKER_CALLBACK_URL): signatures are verified
	// against its host and path, so a proxy in front of the worker may
	// rewrite both. Default: the host and path the request arrived with.
	PublicURL string
	// Tolerance is how far the signature's time may be from now.
	// Default 5 minutes.
	Tolerance time.Duration
	// Logger receives the handler's logs; nil discards them.
	Logger *slog.Logger
	// Metrics records results; nil records nothing.
	Metrics *Metrics
	// Propagator carries the callback's trace context (W3C traceparent,
	// tracestate, baggage) to the result. Default DefaultPropagator.
	Propagator propagation.TextMapPropagator
}

func (c *CallbackConfig) setDefaults() {
	if c.Propagator == nil {
		c.Propagator = DefaultPropagator()
	}
	if c.Tolerance == 0 {
		c.Tolerance = dintero.DefaultSignatureTolerance
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports what is wrong with a config whose defaults are filled in.
func (c CallbackConfig) Validate() error {
	var errs []error
	if len(c.Secret) == 0 || c.AccountID == "" {
		errs = append(errs, errors.New("the signature secret and the account id are required"))
	}
	if err := messages.ValidateNamespace(c.Namespace); err != nil {
		errs = append(errs, err)
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			errs = append(errs, fmt.Errorf("the public URL %q is not an absolute http(s) URL", c.PublicURL))
		}
	}
	if c.Tolerance < 0 {
		errs = append(errs, fmt.Errorf("tolerance must not be negative, got %s", c.Tolerance))
	}
	return errors.Join(errs...)
}

// Callbacks is the HTTP endpoint Dintero calls when a customer-initiated
// payment is authorized (or failed, with report_error=true). It refuses an
// oversized request (414, 413) before anything else, verifies the
// Dintero-Signature against the public URL (401: never retried), skips
// deliveries it already handled (event-delivery), fetches the transaction
// from Dintero (the callback itself is not signed data), and publishes the
// session's completed or failed result. It answers 5xx whenever it cannot
// finish, so that Dintero delivers again.
type Callbacks struct {
	pub        Publisher
	gw         TransactionGetter
	deliveries Deliveries
	cfg        CallbackConfig
	public     *url.URL // nil: the request's own host and path
	log        *slog.Logger
	now        func() time.Time

	// Refused signatures are logged a few at a time, with how many were
	// not: a flood of forged callbacks must not flood the logs.
	badLog     rate.Sometimes
	badSkipped atomic.Int64
}

// NewCallbacks returns the callback handler.
func NewCallbacks(pub Publisher, gw TransactionGetter, deliveries Deliveries, cfg CallbackConfig) (*Callbacks, error) {
	if pub == nil || gw == nil || deliveries == nil {
		return nil, errors.New("callbacks: a publisher, a gateway and deliveries are required")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("callbacks: %w", err)
	}
	c := &Callbacks{pub: pub, gw: gw, deliveries: deliveries, cfg: cfg, log: cfg.Logger, now: time.Now,
		badLog: rate.Sometimes{First: 3, Interval: 10 * time.Second}}
	if cfg.PublicURL != "" {
		c.public, _ = url.Parse(cfg.PublicURL) // checked by Validate
	}
	return c, nil
}

func (c *Callbacks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method != http.MethodGet && r.Method != http.MethodPost:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	case len(r.URL.RawQuery) > MaxCallbackQuery:
		http.Error(w, "query too long", http.StatusRequestURITooLong)
		return
	case r.ContentLength > MaxCallbackBody:
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	if r.Body != nil {
		if _, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, MaxCallbackBody)); err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
	}
	if err := c.verify(r); err != nil {
		c.refused(r, err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	status, msg := c.handle(r.Context(), r)
	if status != http.StatusOK {
		http.Error(w, msg, status)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// verify checks the signature against the public URL, with the query the
// request arrived with.
func (c *Callbacks) verify(r *http.Request) error {
	if c.public == nil {
		return dintero.VerifyCallback(r, c.cfg.Secret, c.cfg.AccountID, c.now(), c.cfg.Tolerance)
	}
	u := *c.public
	u.RawQuery = r.URL.RawQuery
	return dintero.VerifyCallbackURL(c.cfg.Secret, c.cfg.AccountID, r.Method, &u,
		r.Header.Get(dintero.SignatureHeader), c.now(), c.cfg.Tolerance)
}

// refused logs a refused signature, sampled.
func (c *Callbacks) refused(r *http.Request, err error) {
	logged := false
	c.badLog.Do(func() {
		logged = true
		c.log.Warn("callback refused: bad signature", "err", err, "remote", r.RemoteAddr,
			"refused_since_last_line", c.badSkipped.Swap(0))
	})
	if !logged {
		c.badSkipped.Add(1)
	}
}

// handle does the work of a verified callback and says how to answer.
func (c *Callbacks) handle(ctx context.Context, r *http.Request) (int, string) {
	q := r.URL.Query()
	txID, ref, delivery := q.Get("transaction_id"), q.Get("merchant_reference"), r.Header.Get(dintero.EventDeliveryHeader)
	log := c.log.With("merchant_reference", ref, "transaction_id", txID, "event_delivery", delivery)
	if txID == "" {
		// report_error callbacks may come without a transaction: nothing
		// to publish, and nothing Dintero should send again.
		log.Info("callback without transaction_id", "callback_error", q.Get("error"))
		return http.StatusOK, ""
	}
	if delivery != "" {
		seen, err := c.deliveries.DeliveryHandled(ctx, delivery)
		if err != nil {
			log.Warn("callback: delivery store unavailable", "err", err)
			return http.StatusServiceUnavailable, "try again"
		}
		if seen {
			log.Debug("callback delivery already handled")
			return http.StatusOK, ""
		}
	}
	tx, err := c.gw.GetTransaction(ctx, txID)
	if err != nil {
		log.Warn("callback: cannot fetch the transaction", "err", err)
		return http.StatusBadGateway, "try again"
	}
	if ref != "" && tx.MerchantReference != "" && tx.MerchantReference != ref {
		log.Error("callback names another merchant_reference than its transaction", "transaction_reference", tx.MerchantReference)
		return http.StatusBadRequest, "reference mismatch"
	}
	res := paymentResult(tx, c.now())
	if res == nil {
		// ON_HOLD and the like: Dintero calls again when the status changes.
		log.Info("callback for a transaction not final yet", "status", tx.Status)
		return http.StatusOK, ""
	}
	r2 := sessionResult(res)
	// One result per transaction and outcome.
	id := "callback:" + tx.ID + ":" + string(res.Outcome)
	m := resultMsg(messages.NamesFor(c.cfg.Namespace), r2, id, c.now())
	c.cfg.Propagator.Inject(c.cfg.Propagator.Extract(ctx, propagation.HeaderCarrier(r.Header)), natsCarrier(m.Header))
	if _, err := c.pub.PublishMsg(ctx, m); err != nil {
		log.Warn("callback: cannot publish the result", "err", err)
		return http.StatusServiceUnavailable, "try again"
	}
	if delivery != "" {
		if err := c.deliveries.MarkDelivery(ctx, delivery); err != nil {
			// The result is out; a repeat is de-duplicated by its Nats-Msg-Id.
			log.Warn("callback: could not remember the delivery", "err", err)
		}
	}
	c.cfg.Metrics.result(res.Outcome, false, -1)
	log.Info("customer-initiated payment finished", "outcome", res.Outcome, "status", tx.Status)
	return http.StatusOK, ""
}

// paymentResult is the session result of a customer's payment: completed,
// failed with Dintero's reasons, or nil while the transaction is not final.
func paymentResult(tx *dintero.Transaction, now time.Time) *messages.SessionResult {
	res := &messages.SessionResult{
		MerchantReference:  tx.MerchantReference,
		SessionID:          tx.SessionID,
		TransactionID:      tx.ID,
		Status:             tx.Status,
		Amount:             tx.Amount,
		Currency:           tx.Currency,
		PaymentProductType: tx.PaymentProductType,
		CompletedAt:        now.UTC(),
	}
	switch {
	case dintero.Succeeded(tx.Status):
		res.Outcome = messages.OutcomeCompleted
	case dintero.Declined(tx.Status):
		res.Outcome = messages.OutcomeFailed
		res.Error = declineError(tx)
	default:
		return nil
	}
	return res
}
