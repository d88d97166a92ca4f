package idempotency

import "errors"

var (
	// ErrNotOwner is returned by Extend, Complete and Release when the token
	// does not own the claim (any more): the lease was taken over by another
	// claim, the record was completed or released, or it never existed.
	ErrNotOwner = errors.New("idempotency: not the owner of the claim")

	// ErrNotFound is returned by Get when no record exists for the reference.
	ErrNotFound = errors.New("idempotency: record not found")

	// ErrInvalidArgument is returned when a reference or fingerprint is empty.
	ErrInvalidArgument = errors.New("idempotency: invalid argument")
)
