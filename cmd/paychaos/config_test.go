package main

import (
	"io"
	"slices"
	"testing"
)

func TestParseConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		name     string
		args     []string
		env      map[string]string
		wantN    int
		wantRate float64
		wantErr  bool
	}{
		{name: "defaults", wantN: 10_000, wantRate: 100},
		{name: "CHAOS_REQUESTS", env: map[string]string{"CHAOS_REQUESTS": "2000"}, wantN: 2000, wantRate: 20},
		{name: "flag wins over env", args: []string{"-n", "300"}, env: map[string]string{"CHAOS_REQUESTS": "2000"}, wantN: 300, wantRate: 10},
		{name: "explicit rate", args: []string{"-rate", "7"}, wantN: 10_000, wantRate: 7},
		{name: "bad env", env: map[string]string{"CHAOS_REQUESTS": "lots"}, wantErr: true},
		{name: "zero requests", args: []string{"-n", "0"}, wantErr: true},
		{name: "rates over one", args: []string{"-dup-rate", "0.7", "-conflict-rate", "0.7"}, wantErr: true},
		{name: "restart past the end", args: []string{"-nats-restart-at", "1.5"}, wantErr: true},
		{name: "stray argument", args: []string{"extra"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(tc.args, env(tc.env), io.Discard)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("parseConfig succeeded with %+v, want an error", c)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Requests != tc.wantN || c.Rate != tc.wantRate {
				t.Errorf("requests %d rate %v, want %d and %v", c.Requests, c.Rate, tc.wantN, tc.wantRate)
			}
		})
	}
}

func TestWorkerEnv(t *testing.T) {
	c, err := parseConfig([]string{"-max-deliver", "5", "-worker-env", "A=1, B=2"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	env := c.workerEnv()
	for _, want := range []string{"PAYWORKER_ACK_WAIT=6s", "DINTERO_TIMEOUT=2s", "PAYWORKER_MAX_DELIVER=5", "A=1", "B=2"} {
		if !slices.Contains(env, want) {
			t.Errorf("workerEnv() = %v, missing %q", env, want)
		}
	}
}
