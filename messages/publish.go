package messages

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PublishCharge validates req, marshals it and publishes it on
// [SubjectChargeRequest] with the Nats-Msg-Id header set to msgID, or to
// the request's merchant_reference when msgID is "", and returns the
// stream's acknowledgement. Within the stream's duplicate window a second
// publish with the same id is not stored again: the PubAck then has
// Duplicate set.
//
// An invalid request is not published; the error is then a
// *[ValidationError]. The marshalled body is checked as the worker will
// check it, with [DecodeChargeRequest]. Fields the types do not model cannot
// be sent this way; use [PublishChargeBody].
func PublishCharge(ctx context.Context, js jetstream.JetStream, req *ChargeRequest, msgID string) (*jetstream.PubAck, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("messages: marshal charge request: %w", err)
	}
	return PublishChargeBody(ctx, js, body, msgID)
}

// PublishChargeBody is [PublishCharge] for a raw body. The body is first
// checked with [DecodeChargeRequest]; it is then published unchanged, so
// fields the types do not model reach Dintero.
func PublishChargeBody(ctx context.Context, js jetstream.JetStream, body []byte, msgID string) (*jetstream.PubAck, error) {
	if js == nil {
		return nil, errors.New("messages: publish charge request: nil JetStream")
	}
	req, err := DecodeChargeRequest(body)
	if err != nil {
		return nil, err
	}
	return publishRequest(ctx, js, SubjectChargeRequest, "charge request", body, msgID, req.Session.Order.MerchantReference)
}

// publishRequest publishes a checked body on subject with Nats-Msg-Id set
// to msgID, or to ref when msgID is "". what names the request in errors.
func publishRequest(ctx context.Context, js jetstream.JetStream, subject, what string, body []byte, msgID, ref string) (*jetstream.PubAck, error) {
	if msgID == "" {
		msgID = ref
	}
	if strings.ContainsFunc(msgID, isControl) {
		return nil, fmt.Errorf("messages: publish %s: msgID contains control characters", what)
	}
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	msg.Header.Set(HeaderMsgID, msgID)
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("messages: publish %s %s: %w", what, quoteValue(msgID), err)
	}
	return ack, nil
}

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
