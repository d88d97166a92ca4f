package worker

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/messages"
)

// CallbackPath is where Callbacks is mounted: point a session's
// url.callback_url at https://<this worker>/dintero/callback.
const CallbackPath = "/dintero/callback"

// Deliveries remembers handled callback deliveries (*idempotency.Store
// implements it).
type Deliveries interface {
	DeliveryHandled(ctx context.Context, id string) (bool, error)
	MarkDelivery(ctx context.Context, id string) error
}

// CallbackConfig configures Callbacks.
type CallbackConfig struct {
	// Secret is the account's callback signature secret (required).
	Secret []byte
	// AccountID is the Dintero account the signature covers (required).
	AccountID string
	// PublicURL, when set, is the URL Dintero calls (PAYWORKER_CALLBACK_URL):
	// signatures are verified against its host and path rather than those
	// the server saw, which a proxy in front of it may have rewritten.
	PublicURL string
	// Tolerance is how far the signature's time may be from now.
	// Default 5 minutes.
	Tolerance time.Duration
	// Logger receives the handler's logs; nil discards them.
	Logger *slog.Logger
	// Metrics records results; nil records nothing.
	Metrics *Metrics
}

// Callbacks is the HTTP endpoint Dintero calls when a customer-initiated
// payment is authorized (or failed, with report_error=true). It verifies
// the Dintero-Signature (4xx: never retried), skips deliveries it already
// handled (event-delivery), fetches the transaction from Dintero (the
// callback itself is not signed data), and publishes the session's
// completed or failed result. It answers 5xx whenever it cannot finish, so
// that Dintero delivers again.
type Callbacks struct {
	js         jetstream.JetStream
	gw         Gateway
	deliveries Deliveries
	cfg        CallbackConfig
	log        *slog.Logger
	now        func() time.Time
}

// NewCallbacks returns the callback handler.
func NewCallbacks(js jetstream.JetStream, gw Gateway, deliveries Deliveries, cfg CallbackConfig) (*Callbacks, error) {
	if js == nil || gw == nil || deliveries == nil {
		return nil, errors.New("callbacks: JetStream, gateway and deliveries are required")
	}
	if len(cfg.Secret) == 0 || cfg.AccountID == "" {
		return nil, errors.New("callbacks: the signature secret and the account id are required")
	}
	if cfg.Tolerance == 0 {
		cfg.Tolerance = dintero.DefaultSignatureTolerance
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Callbacks{js: js, gw: gw, deliveries: deliveries, cfg: cfg, log: cfg.Logger, now: time.Now}, nil
}

func (c *Callbacks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := dintero.VerifyCallback(r, c.cfg.Secret, c.cfg.AccountID, c.now(), c.cfg.Tolerance); err != nil {
		c.log.Warn("callback refused: bad signature", "err", err, "remote", r.RemoteAddr)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	q := r.URL.Query()
	txID, ref, delivery := q.Get("transaction_id"), q.Get("merchant_reference"), r.Header.Get(dintero.EventDeliveryHeader)
	log := c.log.With("merchant_reference", ref, "transaction_id", txID, "event_delivery", delivery)
	if txID == "" {
		// report_error callbacks may come without a transaction: nothing
		// to publish, and nothing Dintero should send again.
		log.Info("callback without transaction_id", "error", q.Get("error"))
		w.WriteHeader(http.StatusOK)
		return
	}
	ctx := r.Context()
	if delivery != "" {
		seen, err := c.deliveries.DeliveryHandled(ctx, delivery)
		if err != nil {
			log.Warn("callback: delivery store unavailable", "err", err)
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		if seen {
			log.Debug("callback delivery already handled")
			w.WriteHeader(http.StatusOK)
			return
		}
	}
	tx, err := c.gw.GetTransaction(ctx, txID)
	if err != nil {
		log.Warn("callback: cannot fetch the transaction", "err", err)
		http.Error(w, "try again", http.StatusBadGateway)
		return
	}
	if ref != "" && tx.MerchantReference != "" && tx.MerchantReference != ref {
		log.Error("callback names another merchant_reference than its transaction", "transaction_reference", tx.MerchantReference)
		http.Error(w, "reference mismatch", http.StatusBadRequest)
		return
	}
	res := &messages.SessionResult{
		MerchantReference:  tx.MerchantReference,
		SessionID:          tx.SessionID,
		TransactionID:      tx.ID,
		Status:             tx.Status,
		Amount:             tx.Amount,
		Currency:           tx.Currency,
		PaymentProductType: tx.PaymentProductType,
		CompletedAt:        c.now().UTC(),
	}
	switch {
	case dintero.Succeeded(tx.Status):
		res.Outcome = messages.OutcomeCompleted
	case dintero.Declined(tx.Status):
		res.Outcome = messages.OutcomeFailed
		res.Error = &messages.ResultError{Code: tx.Status, Message: "authorization " + tx.Status}
		if e := tx.LastError(); e != nil {
			res.Error.Code, res.Error.Message, res.Error.Types = e.Code, e.Message, e.Type
			if e.RetryPolicy != nil {
				res.Error.RetryCodes = e.RetryPolicy.RetryCodes
			}
		}
	default:
		// ON_HOLD and the like: Dintero calls again when the status changes.
		log.Info("callback for a transaction not final yet", "status", tx.Status)
		w.WriteHeader(http.StatusOK)
		return
	}
	id := "callback:" + tx.ID + ":" + string(res.Outcome) // one result per transaction and outcome
	msg := resultMsg(messages.KindSession, res.Outcome, res.MerchantReference, id, mustMarshal(res),
		checkTraceparent(r.Header.Get(messages.HeaderTraceparent)), c.now())

	if _, err := c.js.PublishMsg(ctx, msg); err != nil {
		log.Warn("callback: cannot publish the result", "err", err)
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	if delivery != "" {
		if err := c.deliveries.MarkDelivery(ctx, delivery); err != nil {
			// The result is out; a repeat is de-duplicated by its Nats-Msg-Id.
			log.Warn("callback: could not remember the delivery", "err", err)
		}
	}
	c.cfg.Metrics.result(res.Outcome, false, -1)
	log.Info("customer-initiated payment finished", "outcome", res.Outcome, "status", tx.Status)
	w.WriteHeader(http.StatusOK)
}
