package dinterotest

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/payworker/payworker/dintero"
)

type endpoint int

const (
	epNone endpoint = iota
	epToken
	epPay
	epSessionsProfile
	epSessionGet
	epSessionList
	epSessionCancel
	epTransactionList
	epTransactionGet
	epView
	epViewPay
)

// ServeHTTP answers the Dintero Checkout API under /v1/ and the sandbox
// admin API under AdminPrefix. Every answer carries a random Request-Id
// header and is JSON, except the customer's pages under /v1/view/, which
// are HTML.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	reqID := newRequestID()
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Request-Id"] = []string{reqID}
	if s.log.Enabled(r.Context(), slog.LevelDebug) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		defer func() {
			s.log.LogAttrs(r.Context(), slog.LevelDebug, "dintero sandbox request",
				slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Int("status", rec.status), slog.Duration("duration", time.Since(start)),
				slog.String("request_id", reqID))
		}()
		w = rec
	}
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/v1/"):
		s.serveAPI(w, r, reqID, arrived)
	case p == AdminPrefix+"sessions":
		s.serveAdminSessions(w, r)
	case p == AdminPrefix+"refusals":
		s.serveAdminRefusals(w, r)
	case p == strings.TrimSuffix(AdminPrefix, "/") || strings.HasPrefix(p, AdminPrefix):
		s.serveAdmin(w, r)
	default:
		writeError(w, http.StatusNotFound, "NOT_FOUND", "no such endpoint", nil)
	}
}

// route maps a /v1 path to its endpoint, path parameter and method.
func route(p string) (endpoint, string, string) {
	switch {
	case p == "/v1/sessions/pay":
		return epPay, "", http.MethodPost
	case p == "/v1/sessions-profile":
		return epSessionsProfile, "", http.MethodPost
	case p == "/v1/sessions":
		return epSessionList, "", http.MethodGet
	case p == "/v1/transactions":
		return epTransactionList, "", http.MethodGet
	case strings.HasPrefix(p, "/v1/view/"):
		return viewRoute(p)
	}
	if id, ok := strings.CutPrefix(p, "/v1/transactions/"); ok && id != "" && !strings.Contains(id, "/") {
		return epTransactionGet, id, http.MethodGet
	}
	if id, ok := strings.CutPrefix(p, "/v1/sessions/"); ok && id != "" && !strings.Contains(id, "/") {
		return epSessionGet, id, http.MethodGet
	}
	if rest, ok := strings.CutPrefix(p, "/v1/sessions/"); ok {
		if id, ok := strings.CutSuffix(rest, "/cancel"); ok && id != "" && !strings.Contains(id, "/") {
			return epSessionCancel, id, http.MethodPost
		}
	}
	if rest, ok := strings.CutPrefix(p, "/v1/accounts/"); ok {
		if aid, ok := strings.CutSuffix(rest, "/auth/token"); ok && aid != "" && !strings.Contains(aid, "/") {
			return epToken, aid, http.MethodPost
		}
	}
	return epNone, "", ""
}

// serveAPI serves a /v1 call that arrived at arrived.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, reqID string, arrived time.Time) {
	ep, param, method := route(r.URL.Path)
	if ep == epNone {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "no such endpoint", nil)
		return
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "method not allowed; use "+method, nil)
		return
	}
	// The customer's pages: no access token, no faults.
	switch ep {
	case epView:
		s.handleView(w, param)
		return
	case epViewPay:
		s.handleViewPay(w, r, param)
		return
	}
	switch ep {
	case epToken:
		s.c.tokenRequests.Add(1)
	case epPay:
		s.c.payRequests.Add(1)
	case epTransactionGet:
		s.c.transactionGets.Add(1)
	case epTransactionList:
		s.c.transactionLists.Add(1)
	case epSessionList:
		s.c.sessionLists.Add(1)
	case epSessionCancel:
		s.c.sessionCancels.Add(1)
	}
	if !s.applyFaults(w, r, ep) {
		return
	}
	if ep == epToken {
		s.handleToken(w, r, param)
		return
	}
	if !s.bearerValid(r) {
		s.c.unauthorized.Add(1)
		writeError(w, http.StatusUnauthorized, "ACCESS_FORBIDDEN", "missing, invalid or expired access token", nil)
		return
	}
	serve := func(w http.ResponseWriter) {
		switch ep {
		case epPay:
			s.handlePay(w, r, reqID, arrived)
		case epSessionsProfile:
			s.handleSessionsProfile(w, r)
		case epSessionGet:
			s.handleSessionGet(w, param)
		case epSessionList:
			s.handleSessionList(w, r)
		case epSessionCancel:
			s.handleSessionCancel(w, param)
		case epTransactionGet:
			s.handleTransactionGet(w, r, param)
		case epTransactionList:
			s.handleTransactionList(w, r)
		}
	}
	if s.serveOutage(w, r, ep, serve) {
		return
	}
	serve(w)
}

// writeJSON writes v as the JSON body with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	status, b := encodeJSON(status, v)
	writeBody(w, status, b)
}

// encodeJSON encodes v as a JSON body; a value that cannot be encoded
// becomes a 500 INTERNAL_SERVER_ERROR.
func encodeJSON(status int, v any) (int, []byte) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"INTERNAL_SERVER_ERROR","message":"sandbox could not encode the answer"}}`)
	}
	return status, append(b, '\n')
}

// writeBody writes an encoded JSON body with the given status.
func writeBody(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError writes Dintero's Error body. Messages never contain request
// values, so no secret can be echoed.
func writeError(w http.ResponseWriter, status int, code, msg string, errs []any) {
	writeJSON(w, status, dintero.ErrorBody{Error: dintero.ErrorDetail{Code: code, Message: msg, Errors: errs}})
}

// readBody reads the whole request body (at most maxBodyBytes), so that the
// server notices when the client goes away later.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, maxBodyBytes)
	var buf bytes.Buffer
	if r.ContentLength > 0 && r.ContentLength <= maxBodyBytes {
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(body)
	return buf.Bytes(), err
}

// decodeJSON decodes exactly one JSON value from b into v, numbers in
// interfaces kept as json.Number. Unknown fields are accepted.
func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// decodeErrorMessage describes a decode failure without echoing values.
func decodeErrorMessage(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "body"
		}
		return "field " + field + " has the wrong JSON type (expected " + te.Type.Kind().String() + ")"
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "request body is not valid JSON (syntax error at offset " + strconv.FormatInt(se.Offset, 10) + ")"
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return "request body too large"
	}
	return "request body is not a valid JSON object"
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// newID returns "<account>.<22 random base58 characters>", the shape of
// Dintero session and transaction ids.
func (s *Server) newID() string {
	const n = 22
	out := make([]byte, 0, len(s.opts.AccountID)+1+n)
	out = append(out, s.opts.AccountID...)
	out = append(out, '.')
	var buf [32]byte
	for len(out) < cap(out) {
		_, _ = rand.Read(buf[:])
		for _, b := range buf {
			// 232 = 4*58: rejecting larger bytes keeps the choice uniform.
			if b < 232 && len(out) < cap(out) {
				out = append(out, base58Alphabet[b%58])
			}
		}
	}
	return string(out)
}

func newRequestID() string { return rand.Text() }
