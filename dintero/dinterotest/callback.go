package dinterotest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/payworker/payworker/dintero"
)

// callbacks tracks the callback deliveries in flight, so that Close can
// cancel them and wait for them to end.
type callbacks struct {
	client *http.Client
	ctx    context.Context // cancelled by close
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (c *callbacks) init(client *http.Client) {
	if client == nil {
		client = &http.Client{}
	}
	c.client = client
	c.ctx, c.cancel = context.WithCancel(context.Background())
}

// start runs f in a goroutine that close waits for. It reports false, and
// does not run f, once close has been called.
func (c *callbacks) start(f func(ctx context.Context)) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f(c.ctx)
	}()
	return true
}

// close cancels the deliveries in flight and waits for them: an attempt
// ends as soon as its request is cancelled, a backoff as soon as it is
// interrupted, so the wait is short.
func (c *callbacks) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
}

// delivery is one callback: the same request, with the same event-delivery
// id, on every attempt. Only the signature is made anew per attempt.
type delivery struct {
	id        string // event-delivery header
	method    string
	url       *url.URL
	body      []byte // POST only: the transaction
	sessionID string
	reference string
}

// Callback query parameters on the callback_url that change the callback.
const (
	callbackParamMethod        = "method"             // POST: send the transaction as the body
	callbackParamReportError   = "report_error"       // true: call on failures too
	callbackParamSIDName       = "sid_parameter_name" // name of the session id parameter
	callbackErrorAuthorization = "authorization"      // error= for a failed authorization
)

// callbackFor builds the callback of tx for sess, or returns nil when the
// session has no callback_url, when the payment failed and the callback_url
// does not ask for report_error=true, or when the callback_url cannot be
// parsed.
func (s *Server) callbackFor(sess *session, tx *dintero.Transaction) *delivery {
	if sess.CallbackURL == "" {
		return nil
	}
	u, err := url.Parse(sess.CallbackURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		s.log.LogAttrs(context.Background(), slog.LevelWarn, "dintero sandbox callback_url unusable",
			slog.String("session_id", sess.ID))
		return nil
	}
	own := u.Query()
	succeeded := dintero.Succeeded(tx.Status)
	if !succeeded && !strings.EqualFold(own.Get(callbackParamReportError), "true") {
		return nil
	}
	sid := "session_id"
	if name := own.Get(callbackParamSIDName); name != "" {
		sid = name
	}
	q := url.Values{}
	q.Set("transaction_id", tx.ID)
	q.Set(sid, sess.ID)
	q.Set("merchant_reference", tx.MerchantReference)
	q.Set("time", time.Now().UTC().Format(time.RFC3339))
	if !succeeded {
		q.Set("error", callbackErrorAuthorization)
	}
	final := *u
	final.Fragment, final.RawFragment = "", ""
	final.RawQuery = joinQuery(u.RawQuery, q.Encode())
	d := &delivery{
		id:        rand.Text(),
		method:    http.MethodGet,
		url:       &final,
		sessionID: sess.ID,
		reference: tx.MerchantReference,
	}
	if strings.EqualFold(own.Get(callbackParamMethod), http.MethodPost) {
		d.method = http.MethodPost
		d.body, err = json.Marshal(tx)
		if err != nil {
			return nil
		}
	}
	return d
}

func joinQuery(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "&" + b
}

// sendCallback delivers d in the background; Close cancels and waits.
func (s *Server) sendCallback(d *delivery) {
	if !s.cb.start(func(ctx context.Context) { s.deliver(ctx, d) }) {
		s.c.callbackFailures.Add(1)
	}
}

// deliver makes the attempts of one callback: up to 1+CallbackRetries,
// repeating after a 5xx answer, a timeout or a connection error, with a
// doubling backoff. Any 2xx ends it delivered; any other answer ends it
// failed, as Dintero treats 4xx as permanent.
func (s *Server) deliver(ctx context.Context, d *delivery) {
	backoff := s.opts.CallbackBackoff
	for attempt := 1; ; attempt++ {
		status, err := s.attemptCallback(ctx, d)
		s.log.LogAttrs(ctx, slog.LevelDebug, "dintero sandbox callback",
			slog.String("session_id", d.sessionID), slog.String("merchant_reference", d.reference),
			slog.String("event_delivery", d.id), slog.Int("attempt", attempt),
			slog.Int("status", status), slog.Any("error", err))
		switch {
		case err == nil && status >= 200 && status < 300:
			s.c.callbacksDelivered.Add(1)
			return
		case err == nil && status < 500:
			s.c.callbackFailures.Add(1)
			return
		case attempt > s.opts.CallbackRetries || ctx.Err() != nil:
			s.c.callbackFailures.Add(1)
			return
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			s.c.callbackFailures.Add(1)
			return
		}
		backoff = min(2*backoff, maxCallbackBackoff)
	}
}

// attemptCallback sends d once and returns the answer's status.
func (s *Server) attemptCallback(ctx context.Context, d *delivery) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.CallbackTimeout)
	defer cancel()
	var body io.Reader
	if d.body != nil {
		body = bytes.NewReader(d.body)
	}
	req, err := http.NewRequestWithContext(ctx, d.method, d.url.String(), body)
	if err != nil {
		return 0, err
	}
	if d.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "dintero-sandbox")
	req.Header.Set(dintero.EventDeliveryHeader, d.id)
	if len(s.opts.CallbackSecret) > 0 {
		req.Header.Set(dintero.SignatureHeader,
			dintero.SignCallback(s.opts.CallbackSecret, s.opts.AccountID, d.method, d.url, time.Now()))
	}
	s.c.callbacksSent.Add(1)
	resp, err := s.cb.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}
