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
		strings.Repeat("x", messages.MaxNamespaceLen+1)} {
		err := messages.ValidateNamespace(ns)
		if err == nil {
			t.Errorf("ValidateNamespace(%q) = nil, want an error", ns)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "a-z, 0-9") {
			t.Errorf("ValidateNamespace(%q) = %q, want one line saying what is allowed", ns, msg)
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

// TestNamespacesDoNotOverlap: no subject of one namespace is taken by a
// stream of another, even for namespaces named like the default
// subjects' first tokens. (JetStream refuses streams whose subjects
// overlap, and a stream taking another deployment's subject would steal
// its messages.)
func TestNamespacesDoNotOverlap(t *testing.T) {
	namespaces := []string{"", "a", "b", "payments", "payworker", "charge", "request"}
	for _, ns := range namespaces {
		n := messages.NamesFor(ns)
		subjects := []string{n.SubjectChargeRequest, n.SubjectSessionRequest, n.SubjectDeadLetters,
			n.ResultSubject(messages.KindCharge, messages.OutcomeSucceeded), n.ResultSubject(messages.KindSession, messages.OutcomeCreated)}
		for _, other := range namespaces {
			o := messages.NamesFor(other)
			for _, filter := range []string{o.SubjectRequests, o.SubjectResults, o.SubjectDeadLetters} {
				for _, s := range subjects {
					if matches(filter, s) != (ns == other && sameFamily(filter, s)) {
						t.Errorf("namespace %q's %s vs namespace %q's filter %s: matches=%v", ns, s, other, filter, matches(filter, s))
					}
				}
			}
		}
	}
}

// sameFamily reports whether, within one namespace, filter is the one
// meant to take s.
func sameFamily(filter, s string) bool {
	switch {
	case strings.HasSuffix(filter, ".request"):
		return strings.HasSuffix(s, ".request")
	case strings.HasSuffix(filter, ".result.>"):
		return strings.Contains(s, ".result.")
	}
	return strings.HasSuffix(s, ".deadletter")
}

// matches is NATS subject matching of a literal subject by a filter.
func matches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, tok := range f {
		switch {
		case tok == ">":
			return len(s) > i
		case i >= len(s):
			return false
		case tok != "*" && tok != s[i]:
			return false
		}
	}
	return len(f) == len(s)
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
