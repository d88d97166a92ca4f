package dinterotest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/payworker/payworker/dintero"
)

// Sandbox credentials used when Options leaves them empty.
const (
	DefaultAccountID    = "T12345678"
	DefaultClientID     = "sandbox-client"
	DefaultClientSecret = "sandbox-secret"
	AdminPrefix         = "/__sandbox/"
)

// Test cards: the prefix of a payment_token or recurrence_token value picks
// the outcome of /v1/sessions/pay. Any other token value is answered with
// HTTP 400 INVALID_PAYMENT_TOKEN and nothing is recorded. More cards, and
// the card brands, are in cards.go.
const (
	// TokenAuthorized authorizes (status AUTHORIZED), or captures (status
	// CAPTURED) when session.configuration.auto_capture is true.
	TokenAuthorized = "sandbox-ok-"
	// TokenInsufficientFunds fails with HTTP 200, status FAILED, error.type
	// [INSUFFICIENT_FUNDS] and retry_policy RETRY_AFTER_DELAY with
	// retry_after Options.RetryAfterDelay (24h) ahead.
	TokenInsufficientFunds = "sandbox-insufficient-funds-"
	// TokenDoNotRetry is declined with HTTP 200, status DECLINED, error.type
	// [DECLINED] and retry_policy DO_NOT_RETRY.
	TokenDoNotRetry = "sandbox-do-not-retry-"
	// TokenExpiredCard fails with HTTP 200, status FAILED, error.type
	// [EXPIRED_CARD] and retry_policy DO_NOT_RETRY.
	TokenExpiredCard = "sandbox-expired-card-"
)

// Defaults for zero Options and Faults fields.
const (
	defaultTokenTTL   = time.Hour
	defaultHangLimit  = 2 * time.Minute
	defaultRetryAfter = time.Second

	defaultRetryAfterDelay = 24 * time.Hour
	audienceBase           = "https://api.dintero.com/v1/accounts/"
	maxBodyBytes           = 1 << 20

	defaultCallbackRetries = 5
	defaultCallbackBackoff = 100 * time.Millisecond
	defaultCallbackTimeout = 10 * time.Second
	maxCallbackBackoff     = 5 * time.Second
)

var accountIDPattern = regexp.MustCompile(`^[PT]\d{8}$`)

// Options configures a Server. The zero value is a working sandbox with the
// default credentials and no faults.
type Options struct {
	// AccountID is the Dintero account id (T or P and 8 digits); it prefixes
	// session and transaction ids and is the only account the token
	// endpoint accepts. Default DefaultAccountID.
	AccountID string
	// ClientID and ClientSecret are the only HTTP Basic credentials the
	// token endpoint accepts. Defaults DefaultClientID, DefaultClientSecret.
	ClientID, ClientSecret string
	// TokenTTL is the lifetime of issued access tokens, reported as
	// expires_in (whole seconds, at least 1). Default 1h.
	TokenTTL time.Duration
	// Faults are the initial injected faults; see Faults. Default none.
	Faults Faults
	// Outage, when its Duration is set, starts an outage at New; see
	// Outage. Default none.
	Outage Outage
	// Seed seeds the fault randomness so that a run can be repeated.
	// 0 means a time-based seed.
	Seed int64
	// HangLimit is how long a "timeout after charge" answer hangs at most
	// before the connection is dropped. Default 2m.
	HangLimit time.Duration
	// Logger receives one Debug record per request (method, path, status,
	// duration) and per callback attempt. Card tokens, secrets and access
	// tokens are never logged. nil discards.
	Logger *slog.Logger

	// RetryAfterDelay is how far ahead retry_after lies on a
	// RETRY_AFTER_DELAY decline (TokenInsufficientFunds,
	// TokenSoftDecline), so that tests of dunning need not wait a day.
	// Default 24h.
	RetryAfterDelay time.Duration

	// CallbackSecret, when set, is the account's signature secret: every
	// callback carries a Dintero-Signature header made with
	// dintero.SignCallback. Default none: callbacks are unsigned, as
	// Dintero's are for an account without a secret.
	CallbackSecret []byte
	// CallbackRetries is how many times a callback is repeated after a 5xx
	// answer, a timeout or a connection error. Default 5; negative means
	// no retries. (Dintero retries up to 20 times; 4xx is never retried.)
	CallbackRetries int
	// CallbackBackoff is the wait before the first repeat of a callback;
	// it doubles for each further repeat, up to 5s. Default 100ms.
	CallbackBackoff time.Duration
	// CallbackTimeout bounds one callback attempt. Default 10s, Dintero's.
	CallbackTimeout time.Duration
	// CallbackHTTPClient sends the callbacks. Default: a client of its
	// own; redirects are followed.
	CallbackHTTPClient *http.Client
}

func (o *Options) setDefaults() {
	if o.AccountID == "" {
		o.AccountID = DefaultAccountID
	}
	if o.ClientID == "" {
		o.ClientID = DefaultClientID
	}
	if o.ClientSecret == "" {
		o.ClientSecret = DefaultClientSecret
	}
	if o.TokenTTL == 0 {
		o.TokenTTL = defaultTokenTTL
	}
	if o.HangLimit == 0 {
		o.HangLimit = defaultHangLimit
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.CallbackRetries == 0:
		o.CallbackRetries = defaultCallbackRetries
	case o.CallbackRetries < 0:
		o.CallbackRetries = 0
	}
	if o.RetryAfterDelay == 0 {
		o.RetryAfterDelay = defaultRetryAfterDelay
	}
	if o.CallbackBackoff == 0 {
		o.CallbackBackoff = defaultCallbackBackoff
	}
	if o.CallbackTimeout == 0 {
		o.CallbackTimeout = defaultCallbackTimeout
	}
}

func (o *Options) validate() error {
	if !accountIDPattern.MatchString(o.AccountID) {
		return errors.New("dinterotest: AccountID must be T or P followed by 8 digits")
	}
	if o.TokenTTL < 0 {
		return errors.New("dinterotest: TokenTTL must not be negative")
	}
	if o.HangLimit < 0 {
		return errors.New("dinterotest: HangLimit must not be negative")
	}
	if o.RetryAfterDelay < 0 {
		return errors.New("dinterotest: RetryAfterDelay must not be negative")
	}
	if o.CallbackBackoff < 0 || o.CallbackTimeout < 0 {
		return errors.New("dinterotest: CallbackBackoff and CallbackTimeout must not be negative")
	}
	return errors.Join(o.Faults.Validate(), o.Outage.Validate())
}

// Charge is one authorization granted by /v1/sessions/pay or by a
// customer paying a /v1/sessions-profile session: the sandbox's record of
// money that moved.
type Charge struct {
	TransactionID      string `json:"transaction_id"`
	SessionID          string `json:"session_id"`
	MerchantReference  string `json:"merchant_reference"`
	Amount             int64  `json:"amount"`
	Currency           string `json:"currency"`
	PaymentProductType string `json:"payment_product_type"`
	// Operation is payment.operation of /v1/sessions/pay, or
	// "customer_initiated" for a session the customer paid.
	Operation string    `json:"operation"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	// SandboxMs is the time the sandbox spent on the /v1/sessions/pay
	// call, in milliseconds (µs precision), from its arrival to the
	// answer, injected latency included: what a benchmark subtracts to
	// get the latency the client adds. 0 for a customer-initiated payment
	// and a call hung by the timeout-after-charge fault; during an outage,
	// the time until the answer was lost.
	SandboxMs float64 `json:"sandbox_ms"`
}

// Counters counts requests and outcomes since New or the last Reset.
// Endpoint counters (TokenRequests, PayRequests, TransactionGets,
// TransactionLists, SessionLists, SessionCancels) count every request that reached the endpoint,
// including those answered by a fault or with 401.
type Counters struct {
	TokenRequests            int64 `json:"token_requests"`
	TokensIssued             int64 `json:"tokens_issued"`
	PayRequests              int64 `json:"pay_requests"`
	Authorized               int64 `json:"authorized"` // AUTHORIZED or CAPTURED
	Declined                 int64 `json:"declined"`   // FAILED or DECLINED (HTTP 200)
	DuplicatesRefused        int64 `json:"duplicates_refused"`
	InvalidRequests          int64 `json:"invalid_requests"` // 400s except duplicates, any endpoint
	SessionsCreated          int64 `json:"sessions_created"` // /v1/sessions-profile only
	TransactionGets          int64 `json:"transaction_gets"`
	TransactionLists         int64 `json:"transaction_lists"`
	Unauthorized             int64 `json:"unauthorized"` // any 401
	FaultErrors              int64 `json:"fault_errors"`
	FaultRateLimits          int64 `json:"fault_rate_limits"`
	FaultTimeoutsAfterCharge int64 `json:"fault_timeouts_after_charge"`
	FaultResets              int64 `json:"fault_resets"`
	// RateLimited counts the calls answered 429 by Faults.RateLimit (any
	// API endpoint), RateLimitedPay those to /v1/sessions/pay. The 429s
	// of Faults.RateLimitRate are FaultRateLimits.
	RateLimited    int64 `json:"rate_limited"`
	RateLimitedPay int64 `json:"rate_limited_pay"`
	// OutageAnswersLost counts pay and session calls processed during an
	// outage whose answer was lost (hung, 502 or 504); OutageRefused those
	// refused with 503 before processing; OutageLookupsFailed the lookups
	// answered 503.
	OutageAnswersLost   int64 `json:"outage_answers_lost"`
	OutageRefused       int64 `json:"outage_refused"`
	OutageLookupsFailed int64 `json:"outage_lookups_failed"`
	// SessionsPaid counts customer payments of /v1/sessions-profile
	// sessions (the pay page or PaySession), declined ones included; they
	// count in Authorized or Declined too.
	SessionsPaid int64 `json:"sessions_paid"`
	// CallbacksSent counts callback HTTP requests, repeats included.
	CallbacksSent int64 `json:"callbacks_sent"`
	// CallbacksDelivered counts callbacks answered 2xx.
	CallbacksDelivered int64 `json:"callbacks_delivered"`
	// CallbackFailures counts callbacks given up: a 4xx (or other non-2xx,
	// non-5xx) answer, retries exhausted, or the server closed.
	CallbackFailures int64 `json:"callback_failures"`
	// SessionLists and SessionCancels count the requests to GET
	// /v1/sessions and POST /v1/sessions/{id}/cancel; SessionsCancelled
	// the sessions a cancel moved to SessionCancelled (a repeat does not
	// count).
	SessionLists      int64 `json:"session_lists"`
	SessionCancels    int64 `json:"session_cancels"`
	SessionsCancelled int64 `json:"sessions_cancelled"`
}

type counters struct {
	tokenRequests, tokensIssued, payRequests, authorized, declined,
	duplicatesRefused, invalidRequests, sessionsCreated, transactionGets,
	transactionLists, unauthorized, faultErrors, faultRateLimits,
	faultTimeoutsAfterCharge, faultResets, sessionsPaid, callbacksSent,
	callbacksDelivered, callbackFailures, rateLimited, rateLimitedPay, outageAnswersLost,
	outageRefused, outageLookupsFailed, sessionLists, sessionCancels, sessionsCancelled atomic.Int64
}

func (c *counters) all() []*atomic.Int64 {
	return []*atomic.Int64{&c.tokenRequests, &c.tokensIssued, &c.payRequests,
		&c.authorized, &c.declined, &c.duplicatesRefused, &c.invalidRequests,
		&c.sessionsCreated, &c.transactionGets, &c.transactionLists,
		&c.unauthorized, &c.faultErrors, &c.faultRateLimits,
		&c.faultTimeoutsAfterCharge, &c.faultResets, &c.sessionsPaid,
		&c.callbacksSent, &c.callbacksDelivered, &c.callbackFailures,
		&c.rateLimited, &c.rateLimitedPay, &c.outageAnswersLost,
		&c.outageRefused, &c.outageLookupsFailed, &c.sessionLists, &c.sessionCancels, &c.sessionsCancelled}
}

// Server is an in-memory Dintero Checkout. It implements http.Handler and
// is safe for concurrent use.
type Server struct {
	opts     Options
	log      *slog.Logger
	audience string

	faults atomic.Pointer[Faults]
	// limMu serializes SetFaults, which swaps limiter when the rate
	// limit changes; limiter is nil without one.
	limMu   sync.Mutex
	limiter atomic.Pointer[rate.Limiter]
	outage  atomic.Pointer[outageWindow] // nil: none
	rngMu   sync.Mutex
	rng     *rand.Rand

	tokMu  sync.RWMutex
	tokens map[string]time.Time // access token -> expiry

	mu sync.Mutex
	st state

	c counters

	closeOnce sync.Once
	closed    chan struct{}

	cb callbacks

	lifeMu sync.Mutex
	url    string
	ts     *httptest.Server
	hs     *http.Server
}

// New returns a sandbox configured by opts. It panics if opts is invalid
// (an AccountID not matching ^[PT]\d{8}$, negative durations, fault rates
// outside [0,1]); Faults.Validate reports the fault part beforehand.
func New(opts Options) *Server {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		panic(err)
	}
	seed := uint64(opts.Seed)
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	s := &Server{
		opts:     opts,
		log:      opts.Logger,
		audience: audienceBase + opts.AccountID,
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		tokens:   make(map[string]time.Time, 64),
		st:       newState(),
		closed:   make(chan struct{}),
	}
	s.cb.init(opts.CallbackHTTPClient)
	f := opts.Faults.withDefaults()
	s.faults.Store(&f)
	s.limiter.Store(newLimiter(f))
	s.startOutage(opts.Outage, time.Now())
	return s
}

// Start starts a sandbox on a loopback httptest.Server and closes it in
// tb.Cleanup. Invalid opts fail the test.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	o := opts
	o.setDefaults()
	if err := o.validate(); err != nil {
		tb.Fatalf("dinterotest.Start: %v", err)
	}
	s := New(opts)
	ts := httptest.NewServer(s)
	s.lifeMu.Lock()
	s.ts, s.url = ts, ts.URL
	s.lifeMu.Unlock()
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// URL returns the base URL (scheme://host:port, no trailing slash) when the
// server was started by Start or Listen, or "" otherwise.
func (s *Server) URL() string {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	return s.url
}

// Listen listens on addr (for example "127.0.0.1:0"), serves in the
// background until Close, and returns the base URL.
func (s *Server) Listen(addr string) (string, error) {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.ts != nil || s.hs != nil {
		return "", errors.New("dinterotest: server already started")
	}
	select {
	case <-s.closed:
		return "", errors.New("dinterotest: server closed")
	default:
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("dinterotest: listen: %w", err)
	}
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.hs, s.url = hs, "http://"+ln.Addr().String()
	go func() { _ = hs.Serve(ln) }()
	return s.url, nil
}

// Close releases requests hanging in a fault, cancels the callbacks still
// being delivered and waits for them to end, and stops the server started
// by Start or Listen. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	s.cb.close()
	s.lifeMu.Lock()
	ts, hs := s.ts, s.hs
	s.ts, s.hs = nil, nil
	s.lifeMu.Unlock()
	if ts != nil {
		ts.Close()
	}
	if hs != nil {
		return hs.Close()
	}
	return nil
}

// SetFaults replaces the injected faults; zero fields take their defaults.
// It panics if f is invalid (see Faults.Validate).
func (s *Server) SetFaults(f Faults) {
	if err := f.Validate(); err != nil {
		panic(err)
	}
	f = f.withDefaults()
	s.limMu.Lock()
	defer s.limMu.Unlock()
	if old := s.faults.Load(); old.RateLimit != f.RateLimit || old.RateBurst != f.RateBurst {
		s.limiter.Store(newLimiter(f))
	}
	s.faults.Store(&f)
}

// Faults returns the faults in effect, defaults filled in.
func (s *Server) Faults() Faults { return *s.faults.Load() }

// Ledger returns every authorization granted, by /v1/sessions/pay or a
// customer paying a session, in order.
func (s *Server) Ledger() []Charge {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Charge(nil), s.st.ledger...)
}

// Transactions returns copies of all transactions, declined ones included,
// in creation order.
func (s *Server) Transactions() []dintero.Transaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]dintero.Transaction, len(s.st.txs))
	for i, rec := range s.st.txs {
		out[i] = cloneTx(&rec.tx)
	}
	return out
}

// Counters returns a snapshot of the counters.
func (s *Server) Counters() Counters {
	c := &s.c
	return Counters{
		TokenRequests:            c.tokenRequests.Load(),
		TokensIssued:             c.tokensIssued.Load(),
		PayRequests:              c.payRequests.Load(),
		Authorized:               c.authorized.Load(),
		Declined:                 c.declined.Load(),
		DuplicatesRefused:        c.duplicatesRefused.Load(),
		InvalidRequests:          c.invalidRequests.Load(),
		SessionsCreated:          c.sessionsCreated.Load(),
		TransactionGets:          c.transactionGets.Load(),
		TransactionLists:         c.transactionLists.Load(),
		Unauthorized:             c.unauthorized.Load(),
		FaultErrors:              c.faultErrors.Load(),
		FaultRateLimits:          c.faultRateLimits.Load(),
		FaultTimeoutsAfterCharge: c.faultTimeoutsAfterCharge.Load(),
		FaultResets:              c.faultResets.Load(),
		RateLimited:              c.rateLimited.Load(),
		RateLimitedPay:           c.rateLimitedPay.Load(),
		OutageAnswersLost:        c.outageAnswersLost.Load(),
		OutageRefused:            c.outageRefused.Load(),
		OutageLookupsFailed:      c.outageLookupsFailed.Load(),
		SessionsPaid:             c.sessionsPaid.Load(),
		CallbacksSent:            c.callbacksSent.Load(),
		CallbacksDelivered:       c.callbacksDelivered.Load(),
		CallbackFailures:         c.callbackFailures.Load(),
		SessionLists:             c.sessionLists.Load(),
		SessionCancels:           c.sessionCancels.Load(),
		SessionsCancelled:        c.sessionsCancelled.Load(),
	}
}

// ExpireTokens invalidates every access token issued so far; the next call
// with one of them gets 401 ACCESS_FORBIDDEN.
func (s *Server) ExpireTokens() {
	s.tokMu.Lock()
	clear(s.tokens)
	s.tokMu.Unlock()
}

// Reset clears the ledger, transactions, sessions and counters. Faults,
// the outage and issued access tokens are kept.
func (s *Server) Reset() {
	s.mu.Lock()
	s.st = newState()
	s.mu.Unlock()
	for _, c := range s.c.all() {
		c.Store(0)
	}
}

// sleep waits d, or until ctx is done or the server closes; it reports
// whether the full duration passed.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-s.closed:
	}
	return false
}
