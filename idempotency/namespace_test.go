package idempotency_test

import (
	"testing"

	"github.com/payworker/payworker/idempotency"
)

func TestNamespacePrefix(t *testing.T) {
	if got := idempotency.NamespacePrefix(""); got != idempotency.DefaultPrefix {
		t.Errorf("NamespacePrefix(\"\") = %q, want %q", got, idempotency.DefaultPrefix)
	}
	if got := idempotency.NamespacePrefix("acct2"); got != "payworker:acct2:idem:" {
		t.Errorf("NamespacePrefix(\"acct2\") = %q", got)
	}
}
