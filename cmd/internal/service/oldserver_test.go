package service

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/idempotency/redistest"
	"github.com/payworker/payworker/worker"
)

// startOldServer listens on a loopback port and speaks just enough of the
// NATS client protocol for a client to connect: an INFO that reports
// version, a PONG to every PING; everything else is read and ignored. It
// returns the server's URL and how many clients connected.
func startOldServer(t *testing.T, version string) (url string, connects func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		n     int
		conns []net.Conn
		wg    sync.WaitGroup
	)
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	port := ln.Addr().(*net.TCPAddr).Port
	info := fmt.Sprintf(`INFO {"server_id":"NOLDSERVER","server_name":"old","version":%q,"proto":1,"go":"go1.21",`+
		`"host":"127.0.0.1","port":%d,"headers":true,"max_payload":1048576,"jetstream":true}`+"\r\n", version, port)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				if _, err := io.WriteString(c, info); err != nil {
					return
				}
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					switch verb, _, _ := strings.Cut(strings.TrimSpace(line), " "); strings.ToUpper(verb) {
					case "CONNECT":
						mu.Lock()
						n++
						mu.Unlock()
					case "PING":
						if _, err := io.WriteString(c, "PONG\r\n"); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	return fmt.Sprintf("nats://127.0.0.1:%d", port), func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// Issue 13: against a nats-server too old for message schedules (2.10
// here), payworker stops at once with one error line that names the
// version found, the minimum and why; it does not retry.
func TestServerTooOldStopsStartUp(t *testing.T) {
	url, connects := startOldServer(t, "2.10.22")
	redis := redistest.Start(t, redistest.Options{})
	sandbox := dinterotest.Start(t, dinterotest.Options{})
	env := map[string]string{
		"NATS_URL":                url,
		"REDIS_URL":               redis.URL(),
		"DINTERO_ACCOUNT_ID":      dinterotest.DefaultAccountID,
		"DINTERO_CLIENT_ID":       dinterotest.DefaultClientID,
		"DINTERO_CLIENT_SECRET":   dinterotest.DefaultClientSecret,
		"DINTERO_API_URL":         sandbox.URL(),
		"PAYWORKER_HTTP_ADDR":     freeAddr(t),
		"PAYWORKER_CALLBACK_ADDR": freeAddr(t),
		"LOG_FORMAT":              "json",
		"LOG_LEVEL":               "debug",
	}
	cfg, err := LoadConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	started := time.Now()
	err = Run(ctx, cfg, log)
	took := time.Since(started)

	if ctx.Err() != nil {
		t.Fatalf("Run did not stop by itself within 30s; logs:\n%s", logs.String())
	}
	if !errors.Is(err, worker.ErrConfig) {
		t.Fatalf("Run = %v, want an error wrapping worker.ErrConfig; logs:\n%s", err, logs.String())
	}
	msg := err.Error()
	for _, want := range []string{"nats-server 2.10.22 is too old", "needs " + worker.MinServerVersion + " or newer", "message schedules"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error spans lines: %q", msg)
	}
	if strings.Contains(logs.String(), "retrying") || connects() != 1 {
		t.Errorf("payworker retried (%d connections); logs:\n%s", connects(), logs.String())
	}
	if took > 10*time.Second {
		t.Errorf("Run took %s to give up", took)
	}
}
