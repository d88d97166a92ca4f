package messages

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzFastPathAgrees: whatever the fast path accepts, the detailed decoder
// accepts too, with the same result. (The reverse need not hold: the
// detailed decoder has the last word on everything the fast path refuses.)
func FuzzFastPathAgrees(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/seed/*.json")
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"session":{"order":{"amount":1,"amount":2}}}`))
	f.Add([]byte(`{"session":{"order":{"Amount":1}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast ChargeRequest
		if !decodeFast(data, &fast) || fast.Validate() != nil {
			return
		}
		v := &validator{}
		var slow ChargeRequest
		if !decodeRequest(v, data, &slow, "session", "session.order", "payment") {
			t.Fatalf("fast path accepted a body the detailed decoder cannot decode: %v", v.err())
		}
		slow.validate(v)
		if err := v.err(); err != nil {
			t.Fatalf("fast path accepted a body the detailed decoder rejects: %v", err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast and detailed decoders disagree:\n%#v\n%#v", fast, slow)
		}
	})
}

// FuzzSessionFastPathAgrees is FuzzFastPathAgrees for session requests.
func FuzzSessionFastPathAgrees(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/cit/*.json")
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"url":{"return_url":"https://a.example"},"order":{"amount":1,"currency":"NOK","merchant_reference":"r"},"profile_id":"p","Profile_id":"q"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast SessionRequest
		if !decodeFast(data, &fast) || fast.Validate() != nil {
			return
		}
		v := &validator{request: sessionRequestName}
		var slow SessionRequest
		if !decodeRequest(v, data, &slow, "url", "order") {
			t.Fatalf("fast path accepted a session body the detailed decoder cannot decode: %v", v.err())
		}
		slow.validate(v)
		if err := v.err(); err != nil {
			t.Fatalf("fast path accepted a session body the detailed decoder rejects: %v", err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast and detailed decoders disagree:\n%#v\n%#v", fast, slow)
		}
	})
}
