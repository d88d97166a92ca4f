package dintero_test

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/payworker/payworker/dintero"
)

// A callback handler verifies the signature before it trusts anything in
// the request, then fetches the transaction (the body is not signed).
func ExampleVerifyCallback() {
	secret := []byte("the account's signature secret")
	mux := http.NewServeMux()
	mux.HandleFunc("/dintero/callback", func(w http.ResponseWriter, r *http.Request) {
		if err := dintero.VerifyCallback(r, secret, "T12345678", time.Time{}, 0); err != nil {
			// err wraps ErrSignatureMissing, ErrSignatureInvalid or
			// ErrSignatureExpired. A 4xx is final: Dintero does not retry.
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		txID := r.URL.Query().Get("transaction_id")
		delivery := r.Header.Get(dintero.EventDeliveryHeader) // the same on Dintero's retries
		fmt.Println("fetch", txID, "for delivery", delivery)
		// Answer 200 once the outcome is recorded; a 5xx makes Dintero retry.
		w.WriteHeader(http.StatusOK)
	})
	_ = http.ListenAndServe(":8080", mux)
}

// Dintero's published test vector.
func ExampleVerifyCallbackURL() {
	u, _ := url.Parse("https://example.com/callback?B=123&A=992")
	header := "t=1582236537,v0-hmac-sha256=6bed2ab1b919d460ef7465a20dc6c97260dca73fab6647106ca525f0908df64a"
	at := time.Unix(1582236537, 0)
	fmt.Println(dintero.VerifyCallbackURL([]byte("123"), "P00000000", "GET", u, header, at, 0))
	fmt.Println(dintero.VerifyCallbackURL([]byte("123"), "P00000000", "GET", u, header, at.Add(time.Hour), 0))
	fmt.Println(dintero.SignCallback([]byte("123"), "P00000000", "GET", u, at) == header)
	// Output:
	// <nil>
	// dintero: callback signature expired: timestamp 1582236537 is 1h0m0s from now, tolerance 5m0s
	// true
}
