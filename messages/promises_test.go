package messages_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/payworker/payworker/messages"
)

// Issue 12 item 9: a merchant_reference holding a lone surrogate escape
// ("\ud800", which encoding/json turns into U+FFFD while Dintero keeps the
// escape) is invalid, on the fast decode path and on the detailed one, for
// charges and for sessions alike. (The fuzz targets that compare the two
// paths have the case in their seed corpus, testdata/fuzz.)
func TestIssue12Item9LoneSurrogateInReference(t *testing.T) {
	const charge = `{"session":{"customer":{"tokens":{"payex.creditcard":{"payment_token":"sandbox-ok-1"}}},` +
		`"order":{"amount":100,"currency":"NOK","merchant_reference":"a\ud800b"}},` +
		`"payment":{"payment_product_type":"payex.creditcard","operation":"unscheduled_purchase"}%s}`
	const session = `{"url":{"return_url":"https://example.com/thanks"},` +
		`"order":{"amount":100,"currency":"NOK","merchant_reference":"a\ud800b"},"profile_id":"default"%s}`
	// As it is, a body may take the fast path; with a member the types do
	// not model, it takes the detailed one.
	paths := map[string]string{"fast path": "", "detailed path": `,"x_unmodelled":1`}
	for name, extra := range paths {
		t.Run("charge, "+name, func(t *testing.T) {
			_, err := messages.DecodeChargeRequest([]byte(strings.Replace(charge, "%s", extra, 1)))
			checkReferenceError(t, err, "session.order.merchant_reference")
		})
		t.Run("session, "+name, func(t *testing.T) {
			_, err := messages.DecodeSessionRequest([]byte(strings.Replace(session, "%s", extra, 1)))
			checkReferenceError(t, err, "order.merchant_reference")
		})
	}
}

func checkReferenceError(t *testing.T, err error, field string) {
	t.Helper()
	var ve *messages.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v, want a *ValidationError", err)
	}
	if !slices.ContainsFunc(ve.Fields, func(f messages.FieldError) bool { return f.Field == field }) {
		t.Errorf("error %v does not name %s", err, field)
	}
}
