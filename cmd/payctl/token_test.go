package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/idempotency/redistest"
	"github.com/payworker/payworker/worker"
)

// payctl token names a token as the worker does (the key derived from the
// account when none is set) and lifts its block.
func TestTokenUnblock(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	t.Setenv("REDIS_URL", srv.URL())
	t.Setenv("DINTERO_ACCOUNT_ID", "T12345678")
	store, err := idempotency.New(srv.Client(t), idempotency.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hash := worker.TokenHash(worker.DerivedTokenKey("T12345678"), "payex.creditcard", "tok-123")
	if err := store.TokenBlock(context.Background(), hash, "DO_NOT_RETRY"); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"token", "--json", "status", "payex.creditcard", "tok-123"}, &out, &errOut); err != nil {
		t.Fatalf("status: %v (%s)", err, errOut.String())
	}
	var st tokenState
	if err := json.Unmarshal(out.Bytes(), &st); err != nil || !st.Blocked || st.Reason != "DO_NOT_RETRY" {
		t.Fatalf("status %s (%v); want blocked DO_NOT_RETRY", out.String(), err)
	}
	if err := run(context.Background(), []string{"token", "unblock", "payex.creditcard", "tok-123"}, &out, &errOut); exitCode(err) != exitUsage {
		t.Fatalf("unblock without --why: %v, want a usage error", err)
	}
	errOut.Reset()
	if err := run(context.Background(), []string{"token", "--why", "card replaced", "--by", "ops", "unblock", "payex.creditcard", "tok-123"}, &out, &errOut); err != nil {
		t.Fatalf("unblock: %v", err)
	}
	if !strings.Contains(errOut.String(), "unblocked by ops: card replaced") || strings.Contains(errOut.String()+out.String(), "tok-123") {
		t.Errorf("log line %q: want who and why, never the token", errOut.String())
	}
	if v, _ := store.TokenAcquire(context.Background(), hash, "a", nil); v.Blocked {
		t.Fatal("still blocked after unblock")
	}
}
