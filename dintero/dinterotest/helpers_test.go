package dinterotest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/dinterotest"
)

// api is a plain net/http client for the sandbox. It remembers every
// response body so that tests can check no secret leaked.
type api struct {
	t      *testing.T
	sb     *dinterotest.Server
	base   string
	client *http.Client
	token  string

	mu     sync.Mutex
	bodies [][]byte
}

func newAPI(t *testing.T, opts dinterotest.Options) *api {
	t.Helper()
	sb := dinterotest.Start(t, opts)
	return &api{t: t, sb: sb, base: sb.URL(), client: &http.Client{Timeout: 10 * time.Second}}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r response) errorCode(t *testing.T) string {
	t.Helper()
	var eb dintero.ErrorBody
	r.decode(t, &eb)
	if eb.Error.Message == "" {
		t.Errorf("error body without message: %s", r.body)
	}
	return eb.Error.Code
}

// do sends a request; body may be nil, a string, []byte or a value to
// encode as JSON. The bearer token is added when a.token is set and no
// Authorization header is given.
func (a *api) do(method, path string, body any, header map[string]string) response {
	a.t.Helper()
	resp, err := a.send(method, path, body, header)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

func (a *api) send(method, path string, body any, header map[string]string) (response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if a.token != "" && req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	a.mu.Lock()
	a.bodies = append(a.bodies, b)
	a.mu.Unlock()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		a.t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	if resp.Header.Get("Request-Id") == "" {
		a.t.Errorf("%s %s: no Request-Id header", method, path)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

func (a *api) tokenPath() string {
	return "/v1/accounts/" + dinterotest.DefaultAccountID + "/auth/token"
}

func tokenBody(aid string) map[string]string {
	return map[string]string{"grant_type": "client_credentials", "audience": "https://api.dintero.com/v1/accounts/" + aid}
}

func basic(id, secret string) map[string]string {
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth(id, secret)
	return map[string]string{"Authorization": req.Header.Get("Authorization")}
}

// login fetches an access token with the default credentials and keeps it.
func (a *api) login() string {
	a.t.Helper()
	r := a.do(http.MethodPost, a.tokenPath(), tokenBody(dinterotest.DefaultAccountID),
		basic(dinterotest.DefaultClientID, dinterotest.DefaultClientSecret))
	if r.status != http.StatusOK {
		a.t.Fatalf("token: %d %s", r.status, r.body)
	}
	var at dintero.AccessToken
	r.decode(a.t, &at)
	a.token = at.AccessToken
	return at.AccessToken
}

// payBody builds a /v1/sessions/pay body.
func payBody(product, op, tokenKind, token, ref string, amount any, autoCapture bool) map[string]any {
	return map[string]any{
		"session": map[string]any{
			"url": map[string]any{"callback_url": "https://example.com/callback?method=GET"},
			"customer": map[string]any{
				"customer_id": "cust-42",
				"tokens":      map[string]any{product: map[string]any{tokenKind: token}},
			},
			"order": map[string]any{
				"amount": amount, "currency": "NOK", "merchant_reference": ref,
				"items": []any{map[string]any{"line_id": "1", "quantity": 1, "amount": amount, "vat": 25}},
			},
			"configuration": map[string]any{"auto_capture": autoCapture},
			"metadata":      map[string]any{"ext_subscription_id": "42"},
		},
		"payment": map[string]any{"payment_product_type": product, "operation": op},
	}
}

func (a *api) pay(body any, toggles string) response {
	a.t.Helper()
	var h map[string]string
	if toggles != "" {
		h = map[string]string{"Dintero-Feature-Toggles": toggles}
	}
	return a.do(http.MethodPost, "/v1/sessions/pay", body, h)
}

// payTx pays and decodes a 200 answer.
func (a *api) payTx(body any, toggles string) dintero.Transaction {
	a.t.Helper()
	r := a.pay(body, toggles)
	if r.status != http.StatusOK {
		a.t.Fatalf("pay: %d %s", r.status, r.body)
	}
	var tx dintero.Transaction
	r.decode(a.t, &tx)
	return tx
}

func (a *api) allBodies() [][]byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([][]byte(nil), a.bodies...)
}
