package messages

import (
	"strconv"
	"strings"
)

// ResultMsgID returns the deterministic Nats-Msg-Id of a result:
// "<merchant_reference>:<outcome>:<request stream sequence>", e.g.
// "order-1:succeeded:42". When ref is "" (or could not be a valid reference:
// over 255 bytes or with control characters) "seq-<n>" takes its place:
// "seq-42:rejected:42". Publishing the result of the same request again, after
// a crash, thus carries the same id and is de-duplicated by the stream.
func ResultMsgID(ref string, outcome Outcome, seq uint64) string {
	n := strconv.FormatUint(seq, 10)
	if ref == "" || len(ref) > maxReferenceBytes || strings.ContainsFunc(ref, isControl) {
		ref = "seq-" + n
	}
	return ref + ":" + string(outcome) + ":" + n
}
