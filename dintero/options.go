package dintero

import "context"

// A CallOption changes one PaySession or CreateSessionProfile call.
type CallOption func(*callOptions)

type callOptions struct {
	strict bool
	fence  func(context.Context) error
}

// WithStrictReference makes PaySession send the strict-merchant-reference
// toggle instead of strict-success-merchant-reference: Dintero then refuses
// the payment (400) when any session already used the merchant_reference,
// successful or not. Use it when the caller believes the reference is new,
// so that a reference with history the caller lost (a declined attempt, a
// charge for another card) is refused before it reaches the card network,
// and can be looked up instead.
func WithStrictReference() CallOption {
	return func(o *callOptions) { o.strict = true }
}

// WithFence sets a check made right before every attempt of the call is
// written to the wire, after everything the call waited for (the access
// token, a backoff). If it returns an error the call ends at once with a
// KindTransient *Error wrapping it, and nothing is sent. A worker uses it
// to make sure it still owns its claim on the merchant_reference.
func WithFence(fence func(context.Context) error) CallOption {
	return func(o *callOptions) { o.fence = fence }
}

func applyOptions(opts []CallOption) callOptions {
	var o callOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// StrictReferenceOf reports whether opts ask for strict-merchant-reference
// (WithStrictReference). It is for test doubles of a Client, which must
// honour the options as the Client does.
func StrictReferenceOf(opts ...CallOption) bool { return applyOptions(opts).strict }

// FenceOf returns the fence set by WithFence in opts, or nil. It is for
// test doubles of a Client, which must ask the fence before they "send".
func FenceOf(opts ...CallOption) func(context.Context) error { return applyOptions(opts).fence }
