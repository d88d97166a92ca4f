package messages

import (
	"fmt"
	"strings"
)

// MaxNamespaceLen is the longest namespace [ValidateNamespace] accepts.
const MaxNamespaceLen = 32

// Names are the subjects and stream names of one payworker deployment.
// Several deployments share one NATS account (one per Dintero account,
// say) by each having a namespace (PAYWORKER_NAMESPACE): every subject of
// a namespace starts with "<namespace>." and every stream (and key-value
// bucket) name with "<NAMESPACE>_", so that the deployments' streams and
// consumers never overlap. In the default namespace, "", the names are the
// constants of this package ([SubjectChargeRequest], [StreamRequests],
// ...), unchanged.
//
// A publisher to a namespaced deployment publishes on
// NamesFor(ns).SubjectChargeRequest (publish.Namespace does that); a
// consumer of its results reads NamesFor(ns).StreamResults. The bodies, the
// headers, the ce-type and the Nats-Msg-Id are the same in every namespace.
type Names struct {
	// Namespace is the deployment's namespace; "" is the default one.
	Namespace string

	SubjectChargeRequest  string // payments.charge.request
	SubjectSessionRequest string // payments.session.request
	SubjectRequests       string // payments.*.request
	SubjectResults        string // payments.*.result.>
	SubjectDeadLetters    string // payments.deadletter

	StreamRequests    string // PAYMENT_REQUESTS
	StreamResults     string // PAYMENT_RESULTS
	StreamDeadLetters string // PAYMENT_DEADLETTERS
}

// NamesFor returns the names of the deployment whose namespace is ns:
// with ns "acct2", SubjectChargeRequest is "acct2.payments.charge.request"
// and StreamRequests "ACCT2_PAYMENT_REQUESTS"; with ns "", the package's
// constants. It does not check ns; see [ValidateNamespace].
func NamesFor(ns string) Names {
	n := Names{Namespace: ns}
	n.SubjectChargeRequest = n.Subject(SubjectChargeRequest)
	n.SubjectSessionRequest = n.Subject(SubjectSessionRequest)
	n.SubjectRequests = n.Subject(SubjectRequests)
	n.SubjectResults = n.Subject(SubjectResults)
	n.SubjectDeadLetters = n.Subject(SubjectDeadLetters)
	n.StreamRequests = n.Stream(StreamRequests)
	n.StreamResults = n.Stream(StreamResults)
	n.StreamDeadLetters = n.Stream(StreamDeadLetters)
	return n
}

// Subject returns a subject (or subject filter) of the default namespace
// as it is in n's: "<namespace>.<subject>", or subject itself in the
// default namespace.
func (n Names) Subject(subject string) string {
	if n.Namespace == "" {
		return subject
	}
	return n.Namespace + "." + subject
}

// Stream returns a stream or key-value bucket name of the default
// namespace as it is in n's: "<NAMESPACE>_<name>" (the namespace in upper
// case), or name itself in the default namespace.
func (n Names) Stream(name string) string {
	if n.Namespace == "" {
		return name
	}
	return strings.ToUpper(n.Namespace) + "_" + name
}

// RequestSubject returns the subject requests of a kind ([KindCharge],
// [KindSession]) are published on in n's namespace.
func (n Names) RequestSubject(kind string) string {
	return n.Subject("payments." + kind + ".request")
}

// ResultSubject is [ResultSubject] in n's namespace, e.g.
// "acct2.payments.charge.result.succeeded".
func (n Names) ResultSubject(kind string, outcome Outcome) string {
	return n.Subject(ResultSubject(kind, outcome))
}

// ValidateNamespace reports whether ns can be a namespace: "" (the
// default), or at most [MaxNamespaceLen] characters of a-z, 0-9, '_' and
// '-', which make one NATS subject token and, upper-cased, a stream name.
// "payments" is refused: its subjects (payments.payments.*.request) would
// overlap the default deployment's (payments.*.result.>), and JetStream
// refuses streams whose subjects overlap.
func ValidateNamespace(ns string) error {
	ok := len(ns) <= MaxNamespaceLen
	for i := 0; ok && i < len(ns); i++ {
		c := ns[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
	}
	if ns == "payments" {
		return fmt.Errorf("namespace %q: its subjects would overlap the default deployment's (payments.*.result.>); choose another", ns)
	}
	if !ok {
		return fmt.Errorf("namespace %q: want at most %d characters of a-z, 0-9, '_' and '-' (lower case: it is a NATS subject token, and upper-cased a stream name prefix)",
			ns, MaxNamespaceLen)
	}
	return nil
}
