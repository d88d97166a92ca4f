package worker

import "errors"

// ErrConfig is wrapped by the error Run returns when the stream or the
// consumer it is bound to (with Config.SkipSetup, set up by someone else)
// is configured in a way that breaks one of the worker's guarantees.
var ErrConfig = errors.New("worker: stream or consumer configuration breaks a guarantee")
