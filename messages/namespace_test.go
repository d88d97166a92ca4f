package messages_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/payworker/payworker/messages"
)

func TestValidateNamespace(t *testing.T) {
	for _, ns := range []string{"", "a", "acct2", "acct-2", "dintero_p12345678", strings.Repeat("x", messages.MaxNamespaceLen)} {
		if err := messages.ValidateNamespace(ns); err != nil {
			t.Errorf("ValidateNamespace(%q) = %v, want nil", ns, err)
		}
	}
	for _, ns := range []string{"Acct2", "ACCT2", "acct.2", "acct 2", "acct*", "acct>", "a$b", "a/b", "ä", "a\n",
		strings.Repeat("x", messages.MaxNamespaceLen+1), "payments"} {
		err := messages.ValidateNamespace(ns)
		if err == nil {
			t.Errorf("ValidateNamespace(%q) = nil, want an error", ns)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "namespace") {
			t.Errorf("ValidateNamespace(%q) = %q, want one line about the namespace", ns, msg)
		}
	}
}

func TestNamesForDefaultAreTheConstants(t *testing.T) {
	got := messages.NamesFor("")
	want := messages.Names{
		SubjectChargeRequest: messages.SubjectChargeRequest, SubjectSessionRequest: messages.SubjectSessionRequest,
		SubjectRequests: messages.SubjectRequests, SubjectResults: messages.SubjectResults,
		SubjectDeadLetters: messages.SubjectDeadLetters, StreamRequests: messages.StreamRequests,
		StreamResults: messages.StreamResults, StreamDeadLetters: messages.StreamDeadLetters,
	}
	if got != want {
		t.Errorf("NamesFor(\"\") = %+v, want the constants %+v", got, want)
	}
	if s := got.ResultSubject(messages.KindCharge, messages.OutcomeSucceeded); s != messages.ResultSubject(messages.KindCharge, messages.OutcomeSucceeded) {
		t.Errorf("default ResultSubject = %q", s)
	}
	if s := got.RequestSubject(messages.KindSession); s != messages.SubjectSessionRequest {
		t.Errorf("default RequestSubject(session) = %q", s)
	}
}

func TestNamesForNamespace(t *testing.T) {
	n := messages.NamesFor("acct-2")
	for _, c := range []struct{ got, want string }{
		{n.SubjectChargeRequest, "acct-2.payments.charge.request"},
		{n.SubjectSessionRequest, "acct-2.payments.session.request"},
		{n.SubjectRequests, "acct-2.payments.*.request"},
		{n.SubjectResults, "acct-2.payments.*.result.>"},
		{n.SubjectDeadLetters, "acct-2.payments.deadletter"},
		{n.StreamRequests, "ACCT-2_PAYMENT_REQUESTS"},
		{n.StreamResults, "ACCT-2_PAYMENT_RESULTS"},
		{n.StreamDeadLetters, "ACCT-2_PAYMENT_DEADLETTERS"},
		{n.Stream("PAYWORKER_SESSIONS"), "ACCT-2_PAYWORKER_SESSIONS"},
		{n.Subject("payworker.schedule.>"), "acct-2.payworker.schedule.>"},
		{n.RequestSubject(messages.KindCharge), "acct-2.payments.charge.request"},
		{n.ResultSubject(messages.KindSession, messages.OutcomeCreated), "acct-2.payments.session.result.created"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// TestNamespacesDoNotOverlap: no stream subject of one namespace overlaps
// one of another (JetStream refuses such streams, and a stream taking
// another deployment's subjects would steal its messages), even for
// namespaces named like the default subjects' tokens.
func TestNamespacesDoNotOverlap(t *testing.T) {
	namespaces := []string{"", "a", "b", "payworker", "charge", "request", "result", "deadletter"}
	filters := func(n messages.Names) []string {
		return []string{n.SubjectRequests, n.SubjectResults, n.SubjectDeadLetters}
	}
	for _, ns := range namespaces {
		for _, other := range namespaces {
			for i, f := range filters(messages.NamesFor(ns)) {
				for j, g := range filters(messages.NamesFor(other)) {
					if want := ns == other && i == j; overlap(f, g) != want {
						t.Errorf("namespace %q's %s and namespace %q's %s: overlap=%v", ns, f, other, g, !want)
					}
				}
			}
		}
	}
	// The one namespace refused for it.
	if !overlap(messages.NamesFor("payments").SubjectRequests, messages.SubjectResults) {
		t.Error("payments.payments.*.request should overlap payments.*.result.>")
	}
}

// overlap reports whether some subject matches both NATS subject filters.
func overlap(f, g string) bool {
	a, b := strings.Split(f, "."), strings.Split(g, ".")
	for i := 0; i < len(a) && i < len(b); i++ {
		switch {
		case a[i] == ">" || b[i] == ">":
			return true
		case a[i] != "*" && b[i] != "*" && a[i] != b[i]:
			return false
		}
	}
	return len(a) == len(b)
}

func ExampleNamesFor() {
	n := messages.NamesFor("acct2")
	fmt.Println(n.SubjectChargeRequest)
	fmt.Println(n.ResultSubject(messages.KindCharge, messages.OutcomeSucceeded))
	fmt.Println(n.StreamResults)
	fmt.Println(messages.NamesFor("").SubjectChargeRequest)
	// Output:
	// acct2.payments.charge.request
	// acct2.payments.charge.result.succeeded
	// ACCT2_PAYMENT_RESULTS
	// payments.charge.request
}
