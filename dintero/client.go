package dintero

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"
	"golang.org/x/sync/singleflight"
)

// Request headers the client sends.
const (
	headerFeatureToggles = "Dintero-Feature-Toggles"
	headerSystemName     = "Dintero-System-Name"
	headerSystemVersion  = "Dintero-System-Version"
)

// Pagination of TransactionsByMerchantReference.
const (
	listPageSize = 100
	listMaxPages = 10
)

// Client calls the Dintero Checkout API. It is safe for concurrent use; one
// Client per account should be shared by all goroutines so they share one
// cached access token and one connection pool.
type Client struct {
	cfg  Config
	http *http.Client
	log  *slog.Logger
	now  func() time.Time // replaced in tests

	tokenURL        string
	tokenBody       []byte
	payHeader       http.Header // the headers of a PaySession call; never modified
	strictPayHeader http.Header // the same with strict-merchant-reference

	tokens tokenCache
	flight singleflight.Group
}

// New validates cfg, applies its defaults and returns a Client. The error
// wraps ErrInvalidConfig and names the offending field.
func New(cfg Config) (*Client, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// Validate checked that both parse.
	cfg.APIURL, _ = normalizeBaseURL(cfg.APIURL)
	cfg.AuthURL, _ = normalizeBaseURL(cfg.AuthURL)
	c := &Client{
		cfg:  cfg,
		http: cfg.HTTPClient,
		log:  cfg.Logger,
		now:  time.Now,
	}
	if c.http == nil {
		c.http = newHTTPClient(cfg.RootCAs)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.tokenURL = cfg.AuthURL + "/v1/accounts/" + url.PathEscape(cfg.AccountID) + "/auth/token"
	var err error
	c.tokenBody, err = json.Marshal(struct {
		GrantType string `json:"grant_type"`
		Audience  string `json:"audience"`
	}{"client_credentials", "https://api.dintero.com/v1/accounts/" + cfg.AccountID})
	if err != nil {
		return nil, fmt.Errorf("dintero: encoding token request: %w", err)
	}
	c.payHeader = c.jsonHeaders()
	c.payHeader.Set(headerFeatureToggles, ToggleStrictSuccessMerchantReference)
	c.strictPayHeader = c.jsonHeaders()
	c.strictPayHeader.Set(headerFeatureToggles, ToggleStrictMerchantReference)
	return c, nil
}

// String identifies the client without exposing credentials, so printing a
// *Client with %v is safe.
func (c *Client) String() string {
	return fmt.Sprintf("dintero.Client{AccountID:%q APIURL:%q}", c.cfg.AccountID, c.cfg.APIURL)
}

// LogValue implements slog.LogValuer.
func (c *Client) LogValue() slog.Value { return c.cfg.LogValue() }

// newHTTPClient returns the default client: a transport tuned for many
// concurrent calls to one host and no client-wide timeout (every attempt
// has its own context deadline). rootCAs, when not nil, replace the system
// roots; ForceAttemptHTTP2 keeps HTTP/2 on with that TLS config.
func newHTTPClient(rootCAs *x509.CertPool) *http.Client {
	t := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
	}
	if rootCAs != nil {
		t.TLSClientConfig = &tls.Config{RootCAs: rootCAs, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: t}
}

// PaySession creates and pays a merchant-initiated session
// (POST /v1/sessions/pay). body is sent unchanged; it must be the complete
// JSON request ({"session": ..., "payment": ...}). The request always
// carries Dintero-Feature-Toggles: strict-success-merchant-reference, so a
// second successful charge on one merchant_reference is refused with an
// Error whose DuplicateReference reports true.
//
// Results:
//   - status AUTHORIZED, CAPTURED, ... (Succeeded): (tx, nil).
//   - status FAILED, DECLINED, AUTHORIZATION_VOIDED (Declined):
//     (tx, *Error{Kind: KindDeclined, Transaction: tx}).
//   - any other status (ON_HOLD, INITIATED, UNKNOWN):
//     (tx, *Error{Kind: KindUnknownOutcome}).
//   - timeout, connection lost after sending, 5xx or an unreadable 2xx
//     answer: (nil, *Error{Kind: KindUnknownOutcome}); never retried here.
//
// Only errors that prove the request was not processed (connection not
// established, 429) are retried inside PaySession.
func (c *Client) PaySession(ctx context.Context, body []byte, opts ...CallOption) (*Transaction, error) {
	if err := checkBody(OpPay, body); err != nil {
		return nil, err
	}
	o := applyOptions(opts)
	header := c.payHeader // attempt copies it into each http.Request
	if o.strict {
		header = c.strictPayHeader
	}
	res, err := c.do(ctx, &request{
		op:      OpPay,
		method:  http.MethodPost,
		url:     c.cfg.APIURL + "/v1/sessions/pay",
		header:  header,
		body:    body,
		bearer:  true,
		creates: true,
		fence:   o.fence,
	})
	if err != nil {
		return nil, err
	}
	tx := new(Transaction)
	if err := unmarshalV1(res.body, tx); err != nil {
		// The charge went through the PSP but we cannot read its outcome.
		e := &Error{Op: OpPay, Kind: KindUnknownOutcome, StatusCode: res.status, RequestID: res.requestID,
			Err: fmt.Errorf("decoding transaction: %w", err)}
		c.logUnknown(ctx, e)
		return nil, e
	}
	c.scrubTransaction(tx, body)
	switch {
	case Succeeded(tx.Status):
		return tx, nil
	case Declined(tx.Status):
		e := &Error{Op: OpPay, Kind: KindDeclined, StatusCode: res.status, RequestID: res.requestID, Transaction: tx}
		if le := tx.LastError(); le != nil {
			e.Code, e.Message = le.Code, le.Message // scrubbed with tx
			if e.Code == "" && len(le.Type) > 0 {
				e.Code = le.Type[0]
			}
		}
		return tx, e
	default:
		e := &Error{Op: OpPay, Kind: KindUnknownOutcome, StatusCode: res.status, RequestID: res.requestID, Transaction: tx,
			Message: "transaction status " + strconv.Quote(tx.Status) + " is not final"}
		c.logUnknown(ctx, e)
		return tx, e
	}
}

// CreateSessionProfile creates a customer-initiated session from a payment
// profile (POST /v1/sessions-profile). body is sent unchanged.
//
// Dintero keeps every session it creates until it is paid, expires or is
// cancelled, and a customer could pay each one, so a call that may have
// created a session is never repeated: like PaySession, only errors that
// prove nothing was sent or processed (connection not established, 429)
// are retried here, and a timeout, a connection lost after sending, a 5xx
// or a 2xx without a readable session id is a KindUnknownOutcome *Error.
// Look the sessions up (SessionsByMerchantReference) and cancel the ones
// not used (CancelSession).
func (c *Client) CreateSessionProfile(ctx context.Context, body []byte, opts ...CallOption) (*SessionCreated, error) {
	if err := checkBody(OpCreateSession, body); err != nil {
		return nil, err
	}
	o := applyOptions(opts)
	res, err := c.do(ctx, &request{
		op:      OpCreateSession,
		method:  http.MethodPost,
		url:     c.cfg.APIURL + "/v1/sessions-profile",
		header:  c.jsonHeaders(),
		body:    body,
		bearer:  true,
		creates: true,
		fence:   o.fence,
	})
	if err != nil {
		return nil, err
	}
	sc := new(SessionCreated)
	if err := json.Unmarshal(res.body, sc); err != nil || sc.ID == "" {
		if err == nil {
			err = errors.New("response has no session id")
		}
		e := &Error{Op: OpCreateSession, Kind: KindUnknownOutcome, StatusCode: res.status, RequestID: res.requestID,
			Err: fmt.Errorf("decoding session: %w", err)}
		c.logUnknown(ctx, e)
		return nil, e
	}
	return sc, nil
}

// CancelSession cancels a session (POST /v1/sessions/{id}/cancel): it can
// no longer be paid. Dintero voids the session's transaction when it is
// initialized or authorized, and refuses (400, KindInvalid) when it is in
// another state; call it only for sessions nobody paid. Cancelling moves no
// money and a repeat does no harm, so transient failures (including 5xx
// and timeouts) are retried. The answer is the session.
func (c *Client) CancelSession(ctx context.Context, id string) (*Session, error) {
	if id == "" {
		return nil, &Error{Op: OpCancelSession, Kind: KindPermanent, Message: "empty session id"}
	}
	res, err := c.do(ctx, &request{
		op:     OpCancelSession,
		method: http.MethodPost,
		url:    c.cfg.APIURL + "/v1/sessions/" + url.PathEscape(id) + "/cancel",
		header: c.baseHeaders(),
		bearer: true,
	})
	if err != nil {
		return nil, err
	}
	s := new(Session)
	if err := json.Unmarshal(res.body, s); err != nil {
		return nil, &Error{Op: OpCancelSession, Kind: KindPermanent, StatusCode: res.status, RequestID: res.requestID,
			Err: fmt.Errorf("decoding session: %w", err)}
	}
	return s, nil
}

// SessionsByMerchantReference lists the sessions whose merchant_reference
// equals ref (GET /v1/sessions?search=), newest first, customer-initiated
// and merchant-initiated ones alike. Dintero's search also matches other
// fields and parts of references, so sessions of other references are
// dropped here. Pagination is followed as in TransactionsByMerchantReference
// (up to 1,000 sessions of the search).
func (c *Client) SessionsByMerchantReference(ctx context.Context, ref string) ([]Session, error) {
	if ref == "" {
		return nil, &Error{Op: OpListSessions, Kind: KindPermanent, Message: "empty merchant reference"}
	}
	var out []Session
	after := ""
	for page := 0; page < listMaxPages; page++ {
		q := url.Values{}
		q.Set("search", ref)
		q.Set("limit", strconv.Itoa(listPageSize))
		if after != "" {
			q.Set("starting_after", after)
		}
		res, err := c.do(ctx, &request{
			op:     OpListSessions,
			method: http.MethodGet,
			url:    c.cfg.APIURL + "/v1/sessions?" + q.Encode(),
			header: c.baseHeaders(),
			bearer: true,
		})
		if err != nil {
			return nil, err
		}
		var ss []Session
		if err := json.Unmarshal(res.body, &ss); err != nil {
			return nil, &Error{Op: OpListSessions, Kind: KindPermanent, StatusCode: res.status, RequestID: res.requestID,
				Err: fmt.Errorf("decoding session list: %w", err)}
		}
		for _, s := range ss {
			if s.Order.MerchantReference == ref {
				out = append(out, s)
			}
		}
		if len(ss) < listPageSize {
			return out, nil
		}
		last := ss[len(ss)-1].ID
		if last == "" || last == after {
			return out, nil // cannot page further
		}
		after = last
	}
	c.log.LogAttrs(ctx, slog.LevelWarn, "dintero session list truncated",
		slog.String("merchant_reference", ref), slog.Int("pages", listMaxPages))
	return out, nil
}

// Includes for GetTransaction.
const (
	// IncludePaymentToken asks for card.payment_token on a transaction.
	IncludePaymentToken = "card.payment_token"
	// IncludeRecurrenceToken asks for card.recurrence_token.
	IncludeRecurrenceToken = "card.recurrence_token"
)

// GetTransaction fetches one transaction (GET /v1/transactions/{id}), with
// the includes asked for (IncludePaymentToken, IncludeRecurrenceToken): a
// caller can then compare the card a transaction used with a request's.
func (c *Client) GetTransaction(ctx context.Context, id string, includes ...string) (*Transaction, error) {
	if id == "" {
		return nil, &Error{Op: OpGetTransaction, Kind: KindPermanent, Message: "empty transaction id"}
	}
	u := c.cfg.APIURL + "/v1/transactions/" + url.PathEscape(id)
	if len(includes) > 0 {
		u += "?" + url.Values{"includes": includes}.Encode()
	}
	res, err := c.do(ctx, &request{
		op:     OpGetTransaction,
		method: http.MethodGet,
		url:    u,
		header: c.baseHeaders(),
		bearer: true,
	})
	if err != nil {
		return nil, err
	}
	tx := new(Transaction)
	if err := json.Unmarshal(res.body, tx); err != nil {
		return nil, &Error{Op: OpGetTransaction, Kind: KindPermanent, StatusCode: res.status, RequestID: res.requestID,
			Err: fmt.Errorf("decoding transaction: %w", err)}
	}
	c.scrubTransaction(tx, nil)
	return tx, nil
}

// TransactionsByMerchantReference lists the transactions whose
// merchant_reference equals ref (GET /v1/transactions?merchant_reference=).
// It follows pagination (limit=100, starting_after) while full pages come
// back, up to 10 pages (1,000 transactions); beyond that the result is
// truncated and a warning is logged. Transactions whose merchant_reference
// differs from ref are dropped, so a looser server-side match can never
// pass another order's charge off as this one's.
//
// Use it after a KindUnknownOutcome or a DuplicateReference error to find
// out whether a charge succeeded.
func (c *Client) TransactionsByMerchantReference(ctx context.Context, ref string) ([]Transaction, error) {
	if ref == "" {
		return nil, &Error{Op: OpListTransactions, Kind: KindPermanent, Message: "empty merchant reference"}
	}
	var out []Transaction
	after := ""
	for page := 0; page < listMaxPages; page++ {
		q := url.Values{}
		q.Set("merchant_reference", ref)
		q.Set("limit", strconv.Itoa(listPageSize))
		if after != "" {
			q.Set("starting_after", after)
		}
		res, err := c.do(ctx, &request{
			op:     OpListTransactions,
			method: http.MethodGet,
			url:    c.cfg.APIURL + "/v1/transactions?" + q.Encode(),
			header: c.baseHeaders(),
			bearer: true,
		})
		if err != nil {
			return nil, err
		}
		var txs []Transaction
		if err := json.Unmarshal(res.body, &txs); err != nil {
			return nil, &Error{Op: OpListTransactions, Kind: KindPermanent, StatusCode: res.status, RequestID: res.requestID,
				Err: fmt.Errorf("decoding transaction list: %w", err)}
		}
		for _, tx := range txs {
			if tx.MerchantReference == ref {
				c.scrubTransaction(&tx, nil)
				out = append(out, tx)
			}
		}
		if len(txs) < listPageSize {
			return out, nil
		}
		last := txs[len(txs)-1].ID
		if last == "" || last == after {
			return out, nil // cannot page further
		}
		after = last
	}
	c.log.LogAttrs(ctx, slog.LevelWarn, "dintero transaction list truncated",
		slog.String("merchant_reference", ref), slog.Int("pages", listMaxPages))
	return out, nil
}

// checkBody rejects what cannot be a request before anything is sent. The
// body itself never appears in the error.
func checkBody(op string, body []byte) *Error {
	switch {
	case len(body) == 0:
		return &Error{Op: op, Kind: KindPermanent, Message: "empty request body"}
	case !validJSON(body):
		return &Error{Op: op, Kind: KindPermanent, Message: "request body is not valid JSON"}
	}
	return nil
}

// validJSON is encoding/json.Valid, several times faster: jsontext's
// validation told to accept what encoding/json accepts (repeated member
// names, invalid UTF-8 in strings).
func validJSON(body []byte) bool {
	return jsontext.Value(body).IsValid(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
}

// unmarshalV1 is encoding/json.Unmarshal run by the encoding/json/v2
// engine (github.com/go-json-experiment/json is its upstream) with the v1
// semantics: same results, about half the time and a third of the
// allocations for a Transaction. It is used on the charge path.
func unmarshalV1(data []byte, v any) error {
	return jsonv2.Unmarshal(data, v, jsonv1.DefaultOptionsV1())
}

func (c *Client) baseHeaders() http.Header {
	h := make(http.Header, 4)
	h.Set("Accept", "application/json")
	if c.cfg.SystemName != "" {
		h.Set(headerSystemName, c.cfg.SystemName)
	}
	if c.cfg.SystemVersion != "" {
		h.Set(headerSystemVersion, c.cfg.SystemVersion)
	}
	return h
}

func (c *Client) jsonHeaders() http.Header {
	h := c.baseHeaders()
	h.Set("Content-Type", "application/json")
	return h
}
