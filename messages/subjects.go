package messages

// Subjects and stream names of the contract, in the default namespace
// (see [NamesFor] for a deployment with a namespace).
const (
	// SubjectChargeRequest carries merchant-initiated charge requests
	// (bodies of POST /v1/sessions/pay).
	SubjectChargeRequest = "payments.charge.request"
	// SubjectSessionRequest carries customer-initiated session requests
	// (bodies of POST /v1/sessions-profile).
	SubjectSessionRequest = "payments.session.request"
	// SubjectRequests matches every request subject; the requests stream
	// listens on it.
	SubjectRequests = "payments.*.request"
	// SubjectResults matches every result subject; the results stream
	// listens on it.
	SubjectResults = "payments.*.result.>"
	// SubjectDeadLetters carries requests the worker gave up on, with the
	// reason in the Payworker-Dead-Reason header.
	SubjectDeadLetters = "payments.deadletter"

	// StreamRequests is the work-queue stream of requests.
	StreamRequests = "PAYMENT_REQUESTS"
	// StreamResults is the limits stream of results, replayable by consumers.
	StreamResults = "PAYMENT_RESULTS"
	// StreamDeadLetters keeps dead-lettered requests.
	StreamDeadLetters = "PAYMENT_DEADLETTERS"
)

// Kinds of request, the second token of a subject.
const (
	KindCharge  = "charge"
	KindSession = "session"
)

// Header names.
const (
	// HeaderMsgID is JetStream's de-duplication header.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderDeadReason says why a request was dead-lettered.
	HeaderDeadReason = "Payworker-Dead-Reason"
	// HeaderDeadSubject is the subject the dead-lettered request came on.
	HeaderDeadSubject = "Payworker-Dead-Subject"
	// HeaderDeadSequence is the request's sequence in the requests stream.
	HeaderDeadSequence = "Payworker-Dead-Sequence"
	// HeaderRetryUntil asks for dunning (RFC 3339 time): when a charge
	// request carrying it is declined softly (RETRY_AFTER_DELAY, or
	// insufficient funds), payworker charges it again later under the same
	// merchant_reference, at Dintero's retry_after or on its dunning
	// schedule, until this time, publishing a non-final retry_scheduled
	// event for each attempt it schedules; the request still gets one final
	// result. Without it a decline is final at once.
	HeaderRetryUntil = "Payworker-Retry-Until"
	// HeaderTraceparent is the W3C trace context. Set on a request, it is
	// carried to the Dintero call and to the result.
	HeaderTraceparent = "traceparent"
)

// Results carry their CloudEvents attributes as headers (the binary content
// mode of the CloudEvents NATS binding): ce-specversion "1.0", ce-type
// "dev.payworker.<kind>.result.<outcome>", ce-source "payworker", ce-id (the
// Nats-Msg-Id), ce-time, ce-subject (the merchant_reference),
// ce-datacontenttype and content-type application/json. As the binding
// asks, ce-id and ce-subject are percent-encoded: every byte of their UTF-8
// encoding that is not printable ASCII, and space, '"' and '%', is written
// %XX (url.PathUnescape decodes them).
const (
	HeaderCESpecVersion     = "ce-specversion"
	HeaderCEType            = "ce-type"
	HeaderCESource          = "ce-source"
	HeaderCEID              = "ce-id"
	HeaderCETime            = "ce-time"
	HeaderCESubject         = "ce-subject"
	HeaderCEDataContentType = "ce-datacontenttype"
	HeaderContentType       = "content-type"

	// CESource is the ce-source of every result.
	CESource = "payworker"
)

// CEType returns the ce-type of a result, e.g.
// "dev.payworker.charge.result.succeeded".
func CEType(kind string, outcome Outcome) string {
	return "dev.payworker." + kind + ".result." + string(outcome)
}

// ResultSubject returns the subject a result of the given kind and outcome
// is published on, e.g. "payments.charge.result.succeeded" for a
// [ChargeResult] or "payments.session.result.created" for a
// [SessionResult].
func ResultSubject(kind string, outcome Outcome) string {
	return "payments." + kind + ".result." + string(outcome)
}
