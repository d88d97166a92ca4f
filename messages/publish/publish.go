// Package publish puts charge and session requests on NATS JetStream for
// payworker: it checks a body exactly as the worker will (with
// [messages.DecodeChargeRequest] or [messages.DecodeSessionRequest]), then
// publishes it unchanged with a Nats-Msg-Id, so that JetStream de-duplicates
// a publish repeated within the stream's duplicate window.
//
// It is apart from package messages so that the contract itself depends on
// the standard library only; this package adds nats.go.
package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/messages"
)

// Publisher is what this package needs of JetStream (jetstream.JetStream
// implements it).
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

var _ Publisher = jetstream.JetStream(nil)

// Charge validates req, marshals it and publishes it on
// [messages.SubjectChargeRequest] (or its namespace's: see [Namespace])
// with the Nats-Msg-Id header set to msgID, or to the request's
// merchant_reference when msgID is "", and returns the stream's
// acknowledgement. Within the stream's duplicate window a second
// publish with the same id is not stored again: the PubAck then has
// Duplicate set.
//
// An invalid request is not published; the error is then a
// *[messages.ValidationError]. Fields the types do not model cannot be sent
// this way; use [ChargeBody].
func Charge(ctx context.Context, js Publisher, req *messages.ChargeRequest, msgID string, opts ...Option) (*jetstream.PubAck, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("publish: marshal charge request: %w", err)
	}
	return ChargeBody(ctx, js, body, msgID, opts...)
}

// ChargeBody is [Charge] for a raw body. The body is first checked with
// [messages.DecodeChargeRequest]; it is then published unchanged, so fields
// the types do not model reach Dintero.
func ChargeBody(ctx context.Context, js Publisher, body []byte, msgID string, opts ...Option) (*jetstream.PubAck, error) {
	if js == nil {
		return nil, errors.New("publish: charge request: nil JetStream")
	}
	req, err := messages.DecodeChargeRequest(body)
	if err != nil {
		return nil, err
	}
	return request(ctx, js, messages.KindCharge, "charge request", body, msgID, req.Session.Order.MerchantReference, opts)
}

// Session validates req, marshals it and publishes it on
// [messages.SubjectSessionRequest] (or its namespace's: see [Namespace])
// with the Nats-Msg-Id header set to msgID, or to order.merchant_reference
// when msgID is "", and returns the stream's acknowledgement. An invalid request is not published; the error is then
// a *[messages.ValidationError]. Fields the type does not model cannot be
// sent this way; use [SessionBody].
func Session(ctx context.Context, js Publisher, req *messages.SessionRequest, msgID string, opts ...Option) (*jetstream.PubAck, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("publish: marshal session request: %w", err)
	}
	return SessionBody(ctx, js, body, msgID, opts...)
}

// SessionBody is [Session] for a raw body, such as the examples of
// Dintero's "Use token" guide. The body is first checked with
// [messages.DecodeSessionRequest]; it is then published unchanged, so
// fields the types do not model reach Dintero.
func SessionBody(ctx context.Context, js Publisher, body []byte, msgID string, opts ...Option) (*jetstream.PubAck, error) {
	if js == nil {
		return nil, errors.New("publish: session request: nil JetStream")
	}
	req, err := messages.DecodeSessionRequest(body)
	if err != nil {
		return nil, err
	}
	return request(ctx, js, messages.KindSession, "session request", body, msgID, req.Order.MerchantReference, opts)
}

// request publishes a checked body of kind on its request subject (in the
// namespace an option names) with Nats-Msg-Id set to msgID, or to ref when
// msgID is "". what names the request in errors.
func request(ctx context.Context, js Publisher, kind, what string, body []byte, msgID, ref string, opts []Option) (*jetstream.PubAck, error) {
	if msgID == "" {
		msgID = ref
	}
	if strings.ContainsFunc(msgID, unicode.IsControl) {
		return nil, fmt.Errorf("publish: %s: msgID contains control characters", what)
	}
	o := options{kind: kind, header: nats.Header{}}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("publish: %s: %w", what, err)
		}
	}
	msg := &nats.Msg{Subject: messages.NamesFor(o.namespace).RequestSubject(kind), Data: body, Header: o.header}
	msg.Header.Set(messages.HeaderMsgID, msgID)
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("publish: %s %s: %w", what, strconv.Quote(msgID), err)
	}
	return ack, nil
}

// An Option adds to a request what its body does not say: where it goes
// (Namespace) or how it is handled (RetryUntil).
type Option func(*options) error

// options are what the options of one publish set.
type options struct {
	kind      string // of the request: messages.KindCharge, ...
	namespace string
	header    nats.Header
}

// RetryUntil asks for dunning until t (see messages.HeaderRetryUntil): a
// soft decline is tried again later under the same merchant_reference,
// until t, before the request's one final result. It applies to charge
// requests only; a session request given it is not published.
func RetryUntil(t time.Time) Option {
	return func(o *options) error {
		if o.kind != messages.KindCharge {
			return errors.New("RetryUntil applies to charge requests only")
		}
		o.header.Set(messages.HeaderRetryUntil, t.UTC().Format(time.RFC3339))
		return nil
	}
}

// Namespace publishes to the payworker deployment whose namespace
// (PAYWORKER_NAMESPACE) is ns: on messages.NamesFor(ns)'s request subject,
// such as "acct2.payments.charge.request". "" is the default deployment.
// A namespace [messages.ValidateNamespace] refuses is an error, and
// nothing is published.
func Namespace(ns string) Option {
	return func(o *options) error {
		if err := messages.ValidateNamespace(ns); err != nil {
			return err
		}
		o.namespace = ns
		return nil
	}
}
