package service

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"redis://u:s3cr3t@host:notaport/0":           "redis://u:xxxxx@host:notaport/0",
		"nats://u:s3cr3t@[::1":                       "nats://u:xxxxx@[::1",
		"redis://:s3cr3t@redis:6379/0":               "redis://:xxxxx@redis:6379/0",
		"nats://a:1@h1:4222,nats://b:s3cr3t@h2":      "nats://a:xxxxx@h1:4222,nats://b:xxxxx@h2",
		"nats://127.0.0.1:4222":                      "nats://127.0.0.1:4222",
		`parse "redis://u:s3cr3t@h:x": invalid port`: `parse "redis://u:xxxxx@h:x": invalid port`,
	} {
		got := redactURL(in)
		if strings.Contains(got, "s3cr3t") || (want != "" && got != want) {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// Issue 16 item 1: a dependency that is down is logged at once at error,
// once while it stays down, again when its problem changes, and at info
// when it answers again.
func TestWatchLogsChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		state := "Dintero refused the credentials"
		deps := []dependency{{"dintero", func(context.Context) string {
			mu.Lock()
			defer mu.Unlock()
			return state
		}}, {"nats", func(context.Context) string { return "" }}}
		var buf bytes.Buffer
		var bmu sync.Mutex
		log := slog.New(slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
			bmu.Lock()
			defer bmu.Unlock()
			return buf.Write(p)
		}), nil))
		ctx, cancel := context.WithCancel(context.Background())
		go watch(ctx, log, deps)
		set := func(s string) {
			mu.Lock()
			state = s
			mu.Unlock()
			time.Sleep(3 * watchEvery)
		}
		time.Sleep(3 * watchEvery)
		set("cannot reach Dintero")
		set("")
		cancel()
		synctest.Wait()

		bmu.Lock()
		defer bmu.Unlock()
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatal(err)
			}
			got = append(got, rec["level"].(string)+" "+rec["msg"].(string))
		}
		want := []string{"ERROR dintero is not available", "ERROR dintero is not available", "INFO dintero answers again"}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("log lines %q, want %q", got, want)
		}
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestTracingOn(t *testing.T) {
	for env, want := range map[string]bool{
		"": false,
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318":                           true,
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://c:4318/v1/traces":          true,
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318 OTEL_SDK_DISABLED=true":    false,
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318 OTEL_TRACES_EXPORTER=none": false,
	} {
		vars := map[string]string{}
		for _, kv := range strings.Fields(env) {
			k, v, _ := strings.Cut(kv, "=")
			vars[k] = v
		}
		if got := tracingOn(func(k string) string { return vars[k] }); got != want {
			t.Errorf("tracingOn(%s) = %v, want %v", env, got, want)
		}
	}
}
