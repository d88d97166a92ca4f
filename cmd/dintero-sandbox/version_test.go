package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestVersionFlag(t *testing.T) {
	var out bytes.Buffer
	// An address nothing can listen on: -version must print and return
	// before the sandbox would listen.
	err := run(context.Background(), []string{"-version", "-addr", "256.0.0.1:1"}, func(string) string { return "" }, &out, &out)
	if err != nil {
		t.Fatalf("run -version: %v", err)
	}
	line := out.String()
	if !strings.HasPrefix(line, "dintero-sandbox "+version) || !strings.Contains(line, " go1.") || strings.Count(line, "\n") != 1 {
		t.Fatalf("-version printed %q", line)
	}
	// DINTERO_SANDBOX_VERSION is not a way to set it.
	out.Reset()
	c, err := parseConfig(nil, func(k string) string {
		if k == "DINTERO_SANDBOX_VERSION" {
			return "true"
		}
		return ""
	}, &out)
	if err != nil || c.printVersion {
		t.Fatalf("DINTERO_SANDBOX_VERSION=true: printVersion %v, err %v", c.printVersion, err)
	}
}
