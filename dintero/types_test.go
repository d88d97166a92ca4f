package dintero

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestCardKeepsTokensOutOfLogsAndFmt(t *testing.T) {
	const pay, rec = "sandbox-ok-PAYTOKEN", "sandbox-ok-RECTOKEN"
	c := Card{Brand: "Visa", MaskedPAN: "492500******0004", PaymentToken: pay, RecurrenceToken: rec}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("tx", "card", c, "card_ptr", &c)
	outs := map[string]string{
		"slog":   buf.String(),
		"%v":     fmt.Sprintf("%v", c),
		"%+v":    fmt.Sprintf("%+v", c),
		"%#v":    fmt.Sprintf("%#v", c),
		"%v ptr": fmt.Sprintf("%v", &c),
	}
	for name, out := range outs {
		if strings.Contains(out, pay) || strings.Contains(out, rec) {
			t.Errorf("%s shows a card token: %s", name, out)
		}
		if !strings.Contains(out, "492500******0004") {
			t.Errorf("%s lost the masked PAN: %s", name, out)
		}
	}
	// JSON, the wire format, keeps them: the lookup needs them.
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"payment_token":"`+pay+`"`) || !strings.Contains(string(b), `"recurrence_token":"`+rec+`"`) {
		t.Errorf("JSON lost the tokens: %s", b)
	}
}
