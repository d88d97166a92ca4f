// Package schema holds JSON Schema (draft 2020-12) files for the messages of
// the payworker contract (package github.com/payworker/payworker/messages),
// so that services written in any language can check what they publish and
// consume:
//
//   - charge-request.schema.json: a charge request (messages.ChargeRequest,
//     Dintero's POST /v1/sessions/pay body), $id
//     https://payworker.dev/schema/charge-request.json
//   - charge-result.schema.json: a messages.ChargeResult, $id
//     https://payworker.dev/schema/charge-result.json
//   - session-request.schema.json: a session request
//     (messages.SessionRequest, Dintero's POST /v1/sessions-profile body),
//     $id https://payworker.dev/schema/session-request.json
//   - session-result.schema.json: a messages.SessionResult, $id
//     https://payworker.dev/schema/session-result.json
//
// The request schemas encode the rules of messages.DecodeChargeRequest and
// messages.DecodeSessionRequest that JSON Schema can express; each lists
// in its description the rules it cannot (items summing to the amount, byte
// lengths, repeated keys, ...). A body the schema accepts may therefore still
// be rejected by the worker; the decoders remain the authority. Unknown
// properties are allowed in requests (Dintero's bodies have more fields than
// payworker models) and in results (consumers must ignore new properties).
//
// The tests of this package check the schemas against the Go types, so the
// two cannot drift apart.
package schema

import "embed"

// FS holds the schema files, named as above, at its root.
//
//go:embed *.schema.json
var FS embed.FS
