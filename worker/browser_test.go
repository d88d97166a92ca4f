package worker_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/messages"
)

// TestCustomerConfirmsInARealBrowser drives headless Chromium through the
// customer's side: open the session URL from the created result, type the
// CVC, press pay, land on the return page; the signed callback then yields
// the completed result. CI installs Chromium; elsewhere the test is skipped
// when it is missing.
func TestCustomerConfirmsInARealBrowser(t *testing.T) {
	browser := findChromium()
	if browser == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed; .ci/run installs it (apt-get install chromium)")
		}
		t.Skip("chromium is not installed (apt-get install chromium); skipping the browser test")
	}
	c := newCITEnv(t)
	thanks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<html><body><h1 id="thanks">Thank you, %s</h1></body></html>`, r.URL.Query().Get("merchant_reference"))
	}))
	t.Cleanup(thanks.Close)

	body := strings.Replace(string(c.sessionBody("cit-browser", messages.ProductPayExCreditcard, dinterotest.TokenAuthorized+"4242", 29990)),
		"https://example.com/thankyou", thanks.URL+"/thankyou", 1)
	c.publishSession([]byte(body))
	created := c.waitSessionResults("cit-browser", 1, 10*time.Second)[0]
	if created.Outcome != messages.OutcomeCreated {
		t.Fatalf("created result %+v", created)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	err := chromedp.Do(ctx,
		chromedp.Navigate(created.URL),
		chromedp.WaitVisible(chromedp.ID("cvc")),
	)
	if err != nil {
		t.Fatalf("browser: open the payment page: %v", err)
	}
	pageText, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatalf("browser: read the page: %v", err)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("cvc"), "123"),
		chromedp.Click(chromedp.ID("pay")),
		chromedp.WaitVisible(chromedp.ID("thanks")),
	)
	if err != nil {
		t.Fatalf("browser: pay: %v", err)
	}
	landed, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("thanks")))
	if err != nil {
		t.Fatalf("browser: read the return page: %v", err)
	}
	if !strings.Contains(pageText, "cit-browser") || strings.Contains(pageText, dinterotest.TokenAuthorized) {
		t.Errorf("payment page should name the order and never the token; it says %q", pageText)
	}
	if !strings.Contains(landed, "cit-browser") {
		t.Errorf("return page says %q", landed)
	}
	done := c.waitSessionResults("cit-browser", 2, 15*time.Second)[1]
	if done.Outcome != messages.OutcomeCompleted || done.SessionID != created.SessionID || done.TransactionID == "" {
		t.Fatalf("completed result %+v", done)
	}
	if n := c.ledgerFor("cit-browser"); n != 1 {
		t.Fatalf("ledger has %d charges, want 1", n)
	}
}

func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}
