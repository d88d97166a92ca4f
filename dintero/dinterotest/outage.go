package dinterotest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"
)

// What a call processed during an outage is answered with (Outage.Answer).
const (
	// OutageHang: no answer; the connection is held until the client gives
	// up, Options.HangLimit passes or the sandbox closes, then dropped.
	OutageHang = "hang"
	// OutageBadGateway: HTTP 502 BAD_GATEWAY.
	OutageBadGateway = "502"
	// OutageGatewayTimeout: HTTP 504 GATEWAY_TIMEOUT.
	OutageGatewayTimeout = "504"
)

// Outage is a window in which Dintero charges but its answers are lost:
// the worst case for a payment client, which cannot tell what happened
// and cannot look it up either. While it lasts:
//
//   - POST /v1/sessions/pay, POST /v1/sessions-profile and
//     POST /v1/sessions/{id}/cancel are processed as usual (the charge is
//     made and enters the ledger, the session is stored or cancelled), but
//     the answer is lost: see Answer. RefuseRate of them are instead
//     answered 503 SERVICE_UNAVAILABLE before anything is done.
//   - Lookups (GET /v1/transactions, GET /v1/transactions/{id},
//     GET /v1/sessions and GET /v1/sessions/{id}) are answered 503
//     SERVICE_UNAVAILABLE.
//   - The token endpoint, the customer's pages, callbacks and the admin
//     endpoints work as usual.
//
// The Faults apply first (latency, rate limit, random errors), then the
// access token is checked, then the outage. In JSON (the admin endpoint)
// durations are Go duration strings such as "2m".
type Outage struct {
	// Duration is the window's length, from when the outage is set
	// (SetOutage, PUT /__sandbox/outage; for Options.Outage, New). 0 means
	// no outage.
	Duration time.Duration `json:"duration"`
	// Answer is OutageHang, OutageBadGateway or OutageGatewayTimeout.
	// Default OutageHang.
	Answer string `json:"answer"`
	// RefuseRate is the fraction of pay and session calls refused with 503
	// before processing, in [0, 1]. Default 0: every one is processed.
	RefuseRate float64 `json:"refuse_rate"`
}

// Validate reports whether the outage's fields are in range.
func (o Outage) Validate() error {
	var errs []error
	if o.Duration < 0 {
		errs = append(errs, errors.New("dinterotest: outage: duration must not be negative"))
	}
	switch o.Answer {
	case "", OutageHang, OutageBadGateway, OutageGatewayTimeout:
	default:
		errs = append(errs, fmt.Errorf("dinterotest: outage: answer must be %q, %q or %q", OutageHang, OutageBadGateway, OutageGatewayTimeout))
	}
	if math.IsNaN(o.RefuseRate) || o.RefuseRate < 0 || o.RefuseRate > 1 {
		errs = append(errs, errors.New("dinterotest: outage: refuse_rate must be within [0, 1]"))
	}
	return errors.Join(errs...)
}

type outageJSON struct {
	Duration   string  `json:"duration"`
	Answer     string  `json:"answer"`
	RefuseRate float64 `json:"refuse_rate"`
}

// MarshalJSON encodes Duration as a Go duration string.
func (o Outage) MarshalJSON() ([]byte, error) {
	return json.Marshal(outageJSON{Duration: o.Duration.String(), Answer: o.Answer, RefuseRate: o.RefuseRate})
}

// UnmarshalJSON decodes Duration from a Go duration string and rejects
// unknown fields. It does not validate ranges; call Validate.
func (o *Outage) UnmarshalJSON(b []byte) error {
	var oj outageJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&oj); err != nil {
		return fmt.Errorf("dinterotest: outage: %w", err)
	}
	out := Outage{Answer: oj.Answer, RefuseRate: oj.RefuseRate}
	if oj.Duration != "" {
		d, err := time.ParseDuration(oj.Duration)
		if err != nil {
			return fmt.Errorf("dinterotest: outage: duration: %w", err)
		}
		out.Duration = d
	}
	*o = out
	return nil
}

// OutageStatus is the outage in effect (GET /__sandbox/outage).
type OutageStatus struct {
	Outage
	// Active reports whether the window is open now.
	Active bool `json:"active"`
	// Start and End bound the window; zero without an outage set.
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`
}

// MarshalJSON flattens the outage's fields beside the status.
func (st OutageStatus) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		outageJSON
		Active bool      `json:"active"`
		Start  time.Time `json:"start,omitzero"`
		End    time.Time `json:"end,omitzero"`
	}{outageJSON{st.Duration.String(), st.Answer, st.RefuseRate}, st.Active, st.Start, st.End})
}

// UnmarshalJSON decodes what MarshalJSON writes.
func (st *OutageStatus) UnmarshalJSON(b []byte) error {
	var v struct {
		outageJSON
		Active bool      `json:"active"`
		Start  time.Time `json:"start"`
		End    time.Time `json:"end"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("dinterotest: outage status: %w", err)
	}
	out := OutageStatus{Outage: Outage{Answer: v.Answer, RefuseRate: v.RefuseRate}, Active: v.Active, Start: v.Start, End: v.End}
	if v.Duration != "" {
		d, err := time.ParseDuration(v.Duration)
		if err != nil {
			return fmt.Errorf("dinterotest: outage status: duration: %w", err)
		}
		out.Duration = d
	}
	*st = out
	return nil
}

// outageWindow is an outage with its window.
type outageWindow struct {
	Outage
	start, end time.Time
}

func (w *outageWindow) active(now time.Time) bool {
	return w != nil && w.Duration > 0 && now.Before(w.end)
}

// SetOutage starts an outage now, for o.Duration, replacing the one in
// effect; a zero Duration ends it. It panics if o is invalid (see
// Outage.Validate).
func (s *Server) SetOutage(o Outage) {
	if err := o.Validate(); err != nil {
		panic(err)
	}
	s.startOutage(o, time.Now())
}

func (s *Server) startOutage(o Outage, now time.Time) {
	if o.Answer == "" {
		o.Answer = OutageHang
	}
	if o.Duration == 0 {
		s.outage.Store(nil)
		return
	}
	s.outage.Store(&outageWindow{Outage: o, start: now, end: now.Add(o.Duration)})
}

// EndOutage ends the outage in effect, if any.
func (s *Server) EndOutage() { s.outage.Store(nil) }

// OutageStatus returns the outage last set (also when its window has
// passed) and whether it is in effect now.
func (s *Server) OutageStatus() OutageStatus {
	w := s.outage.Load()
	if w == nil {
		return OutageStatus{}
	}
	return OutageStatus{Outage: w.Outage, Active: w.active(time.Now()), Start: w.start, End: w.end}
}

// serveOutage applies the outage, if one is in effect, to an
// authenticated call to ep. It reports whether it answered (or dropped)
// the call; otherwise the caller serves it as usual.
func (s *Server) serveOutage(w http.ResponseWriter, r *http.Request, ep endpoint, serve func(http.ResponseWriter)) bool {
	win := s.outage.Load()
	if !win.active(time.Now()) {
		return false
	}
	switch ep {
	case epTransactionGet, epTransactionList, epSessionGet, epSessionList:
		s.c.outageLookupsFailed.Add(1)
		writeError(w, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "sandbox outage: service unavailable", nil)
		return true
	case epPay, epSessionsProfile, epSessionCancel:
	default:
		return false
	}
	if s.chance(win.RefuseRate) {
		s.c.outageRefused.Add(1)
		writeError(w, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "sandbox outage: service unavailable", nil)
		return true
	}
	// Processed for real; whatever it answers is lost.
	serve(&lostAnswer{header: make(http.Header)})
	s.c.outageAnswersLost.Add(1)
	switch win.Answer {
	case OutageBadGateway:
		writeError(w, http.StatusBadGateway, "BAD_GATEWAY", "sandbox outage: bad gateway", nil)
	case OutageGatewayTimeout:
		writeError(w, http.StatusGatewayTimeout, "GATEWAY_TIMEOUT", "sandbox outage: gateway timeout", nil)
	default:
		s.hangAfterCharge(r)
	}
	return true
}

// lostAnswer is a ResponseWriter whose answer goes nowhere.
type lostAnswer struct{ header http.Header }

func (l *lostAnswer) Header() http.Header         { return l.header }
func (l *lostAnswer) Write(b []byte) (int, error) { return len(b), nil }
func (l *lostAnswer) WriteHeader(int)             {}
