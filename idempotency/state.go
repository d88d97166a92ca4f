package idempotency

import (
	"strconv"
	"time"
)

// State is the answer of [Store.Claim]: what the caller must do next.
type State int

const (
	// StateNew: there was no record (or the caller itself already owns the
	// claim, or the previous owner released it having sent nothing). The
	// caller owns the claim and may charge.
	StateNew State = iota + 1
	// StateCompleted: a final result is stored in [Claim.Result]; republish it.
	StateCompleted
	// StateInProgress: another live owner holds the lease; retry after
	// [Claim.LeaseRemaining].
	StateInProgress
	// StateRecovered: the reference was claimed before and its outcome is
	// unknown (the previous owner's lease expired, or it released the claim
	// saying the charge may have been sent), or it was completed with a
	// re-openable ("failed") result. The caller now owns the claim and must
	// look the reference up at the PSP BEFORE charging.
	StateRecovered
	// StateConflict: the reference is recorded with a different fingerprint.
	// Never charge. The record is left untouched.
	StateConflict
	// StateParked: the reference's outcome is unknown and it was parked for
	// resolution (see [Store.Park]). The caller now owns the claim but must
	// only look the reference up, never charge: it either completes the
	// record with what the PSP says, or parks it again. [Claim.Sequence] is
	// the sequence of the request that parked it.
	StateParked
)

// String returns "new", "completed", "in_progress", "recovered", "conflict"
// or "parked".
func (s State) String() string {
	switch s {
	case StateNew:
		return "new"
	case StateCompleted:
		return "completed"
	case StateInProgress:
		return "in_progress"
	case StateRecovered:
		return "recovered"
	case StateConflict:
		return "conflict"
	case StateParked:
		return "parked"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Claim is the answer of [Store.Claim].
type Claim struct {
	State State
	// Token is the caller's owner token when State is StateNew or
	// StateRecovered; it is empty otherwise. Pass it to Extend, Complete and
	// Release.
	Token string
	// Attempts is how many times the reference has been claimed for
	// charging, including this claim when the caller took it (New → 1).
	Attempts int
	// Result is the stored result when State is StateCompleted.
	Result []byte
	// Sequence is, for StateCompleted, the request stream sequence stored
	// with the result (the message that completed it); otherwise the sequence
	// passed by the current owner of the claim.
	Sequence uint64
	// LeaseRemaining is, for StateInProgress, how long the current owner's
	// lease still runs.
	LeaseRemaining time.Duration
}

// Record states as reported by [Store.Get].
const (
	RecordClaimed   = "claimed"
	RecordCompleted = "completed"
	RecordReleased  = "released"
	RecordParked    = "parked"
)

// Record is a stored idempotency record, for inspection (see [Store.Get]).
type Record struct {
	Reference   string
	Fingerprint string
	// State is RecordClaimed, RecordCompleted, RecordReleased or
	// RecordParked.
	State string
	// Owner is the first 8 characters of the token of the current (or last)
	// owner; the full token is never exposed.
	Owner    string
	Attempts int
	// LeaseUntil is when the current claim's lease ends (zero unless
	// State is RecordClaimed).
	LeaseUntil time.Time
	Sequence   uint64
	Result     []byte
	// Reopenable reports a completed result that a later claim re-opens.
	Reopenable bool
	// MaybeSent reports a claim released by an owner that may have sent the
	// charge.
	MaybeSent bool
	// Parked reports a reference whose outcome is unknown and being
	// resolved: it is never charged again while it is parked.
	Parked    bool
	UpdatedAt time.Time
}
