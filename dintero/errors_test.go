package dintero

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestKindString(t *testing.T) {
	tests := []struct {
		k    Kind
		want string
	}{
		{KindTransient, "transient"},
		{KindUnknownOutcome, "unknown_outcome"},
		{KindDeclined, "declined"},
		{KindPermanent, "permanent"},
		{KindAuth, "auth"},
		{0, "Kind(0)"},
		{42, "Kind(42)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.k.String(); got != tt.want {
				t.Errorf("String() = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestKindOf(t *testing.T) {
	e := &Error{Op: OpPay, Kind: KindDeclined}
	tests := []struct {
		name string
		err  error
		want Kind
	}{
		{"nil", nil, 0},
		{"plain", errors.New("x"), 0},
		{"typed", e, KindDeclined},
		{"wrapped", fmt.Errorf("charging: %w", e), KindDeclined},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := KindOf(tt.err); got != tt.want {
				t.Errorf("KindOf = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	tx := failedTx("ref", "INSUFFICIENT_FUNDS", RetryAfterDelay)
	cause := context.DeadlineExceeded
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"declined", &Error{Op: OpPay, Kind: KindDeclined, StatusCode: 200, Code: "INSUFFICIENT_FUNDS", Message: "no money", Transaction: &tx},
			"dintero pay: declined (FAILED): INSUFFICIENT_FUNDS: no money"},
		{"http", &Error{Op: OpGetTransaction, Kind: KindPermanent, StatusCode: 404, Code: "NOT_FOUND", Message: "gone", RequestID: "r1"},
			"dintero get_transaction: permanent (HTTP 404): NOT_FOUND: gone [request_id=r1]"},
		{"rate limited", &Error{Op: OpPay, Kind: KindTransient, StatusCode: 429, RetryAfter: 2 * time.Second},
			"dintero pay: transient (HTTP 429) (retry after 2s)"},
		{"network", &Error{Op: OpPay, Kind: KindUnknownOutcome, Err: cause},
			"dintero pay: unknown_outcome: context deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q; want %q", got, tt.want)
			}
		})
	}
	if e := (&Error{Err: cause}); !errors.Is(e, context.DeadlineExceeded) {
		t.Errorf("errors.Is through Unwrap failed")
	}
	if p := (&Error{Transaction: &tx}).RetryPolicy(); p == nil || p.RetryCodes[0] != RetryAfterDelay {
		t.Errorf("RetryPolicy() = %+v; want RETRY_AFTER_DELAY", p)
	}
}

func TestDuplicateReference(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want bool
	}{
		{"duplicate", &Error{StatusCode: 400, Kind: KindInvalid, Code: CodeDuplicateMerchantReference}, true},
		{"other 400", &Error{StatusCode: 400, Kind: KindInvalid, Code: "INVALID"}, false},
		{"code on 500", &Error{StatusCode: 500, Kind: KindUnknownOutcome, Code: CodeDuplicateMerchantReference}, false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.DuplicateReference(); got != tt.want {
				t.Errorf("DuplicateReference() = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{" 1 ", time.Second},
		{"0", 0},
		{"-5", 0},
		{"soon", 0},
		{"1.5", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"999999999", 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := parseRetryAfter(tt.in, now); got != tt.want {
				t.Errorf("parseRetryAfter(%q) = %v; want %v", tt.in, got, tt.want)
			}
		})
	}
}
