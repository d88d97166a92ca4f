package dintero

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The charge path decodes and validates with encoding/json/v2's engine in
// v1 mode; these tests pin that it answers exactly as encoding/json does.

var v1Cases = []struct {
	name string
	body string
}{
	{"transaction", `{"id":"T1","session_id":"S1","merchant_reference":"r","status":"AUTHORIZED","amount":100,"currency":"NOK","customer":{"customer_id":"c1"},"card":{"brand":"VISA","payment_token":"tok"},"events":[{"event":"AUTHORIZE","success":true,"created_at":"2026-11-25T15:00:00.123Z","error":{"message":"m","retry_policy":{"retry_codes":["DO_NOT_RETRY"],"retry_after":"2026-11-25T16:00:00Z"}}}],"metadata":{"n":1.5,"s":"x","a":[1,{"b":null}]},"created_at":"2026-11-25T15:00:00Z"}`},
	{"other case names", `{"ID":"T1","Status":"FAILED","AMOUNT":5}`},
	{"repeated names", `{"id":"a","id":"b"}`},
	{"nulls", `{"id":null,"card":null,"events":null,"success":null}`},
	{"unknown members", `{"id":"x","new_field":{"deep":[1,2,3]}}`},
	{"invalid UTF-8", "{\"id\":\"\xff\xfe\"}"},
	{"wrong type", `{"amount":"100"}`},
	{"bad time", `{"created_at":"yesterday"}`},
	{"not an object", `[1,2]`},
	{"truncated", `{"id":"x"`},
	{"trailing data", `{"id":"x"} {}`},
	{"empty", ``},
}

func TestUnmarshalV1MatchesEncodingJSON(t *testing.T) {
	for _, tc := range v1Cases {
		t.Run(tc.name, func(t *testing.T) {
			var want, got Transaction
			wantErr := json.Unmarshal([]byte(tc.body), &want)
			gotErr := unmarshalV1([]byte(tc.body), &got)
			if (wantErr == nil) != (gotErr == nil) {
				t.Fatalf("error: encoding/json %v, unmarshalV1 %v", wantErr, gotErr)
			}
			if wantErr == nil && !reflect.DeepEqual(want, got) {
				t.Errorf("decoded differently:\nencoding/json %+v\nunmarshalV1   %+v", want, got)
			}
		})
	}
}

func TestValidJSONMatchesEncodingJSON(t *testing.T) {
	for _, tc := range v1Cases {
		t.Run(tc.name, func(t *testing.T) {
			if want, got := json.Valid([]byte(tc.body)), validJSON([]byte(tc.body)); want != got {
				t.Errorf("encoding/json.Valid = %v, validJSON = %v", want, got)
			}
		})
	}
}

func TestReadCapped(t *testing.T) {
	big := strings.Repeat("x", maxResponseBody+1)
	tests := []struct {
		name    string
		body    string
		size    int64
		wantErr error
	}{
		{"announced", `{"id":"x"}`, 10, nil},
		{"unannounced", `{"id":"x"}`, -1, nil},
		{"empty", ``, 0, nil},
		{"longer than announced", `{"id":"x"}`, 4, nil},
		{"shorter than announced", `{"id":"x"}`, 50, nil},
		{"too large, unannounced", big, -1, errResponseTooLarge},
		{"too large, announced small", big, 10, errResponseTooLarge},
		{"largest allowed", big[:maxResponseBody], maxResponseBody, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readCapped(strings.NewReader(tt.body), tt.size)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && string(got) != tt.body {
				t.Errorf("read %d bytes, want %d", len(got), len(tt.body))
			}
		})
	}
}
