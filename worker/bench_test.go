package worker_test

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/messages"
)

// BenchmarkPipeline pushes b.N charges through one worker, with the
// embedded NATS server, a real redis-server and the sandbox in this process,
// and reports charges per second. `make bench` measures the same with every
// part in its own process; this one is for profiling the hot path:
//
//	go test -run XXX -bench Pipeline -benchtime 20000x -cpuprofile cpu.out ./worker
func BenchmarkPipeline(b *testing.B) {
	e := newEnv(b)
	e.rdb = redis.NewClient(&redis.Options{Addr: e.rdb.Options().Addr, PoolSize: 256})
	b.Cleanup(func() { _ = e.rdb.Close() })
	e.cfg.MaxInFlight = 256
	e.cfg.Logger = slog.New(slog.DiscardHandler)
	e.startWorker(e.store(), e.client(5*time.Second))
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = chargeBody(fmt.Sprintf("bench-%d", i), providers[i%3], operations[i%2], dinterotest.TokenAuthorized+"1", 100)
	}
	b.ResetTimer()
	start := time.Now()
	for i, body := range bodies {
		m := nats.NewMsg(messages.SubjectChargeRequest)
		m.Data = body
		m.Header.Set(messages.HeaderMsgID, fmt.Sprintf("bench-%d", i))
		if _, err := e.js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
	}
	<-e.js.PublishAsyncComplete()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		e.mu.Lock()
		n := len(e.raw)
		e.mu.Unlock()
		if n >= b.N {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d results", n, b.N)
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "charges/s")
}
