package main

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/payworker/payworker/cmd/internal/stack"
)

// faultPlan says which faults to inject during the load.
type faultPlan struct {
	KillEvery    time.Duration // SIGKILL a random worker this often; 0: never
	RedisAt      time.Duration // restart redis-server this long after the start; <0: never
	RedisDown    time.Duration // how long it stays down
	NATSAt       time.Duration // restart nats-server this long after the start; <0: never
	NATSDown     time.Duration // how long it stays down
	NATSKill     bool          // SIGKILL nats-server instead of a clean shutdown
	Seed         int64
	StopAfterDur time.Duration // no new fault after this long
	// Spare, when set, names the workers the SIGKILL fault must leave
	// alone for now (paused ones, see loss.go).
	Spare func(*stack.Worker) bool
}

// faultLog counts what was injected.
type faultLog struct {
	mu            sync.Mutex
	Kills         int
	KillErrors    int
	RedisRestarts int
	NATSRestarts  int
	Errors        []string
}

func (f *faultLog) errorf(log *slog.Logger, msg string, args ...any) {
	log.Error(msg, args...)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Errors = append(f.Errors, msg)
}

// injectFaults runs the fault plan against st until ctx ends or the plan is
// over, then makes sure every worker runs again.
func injectFaults(ctx context.Context, st *stack.Stack, fp faultPlan, log *slog.Logger) *faultLog {
	fl := &faultLog{}
	rng := rand.New(rand.NewPCG(uint64(fp.Seed), 0xc0ffee))
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, fp.StopAfterDur)
	defer cancel()

	var wg sync.WaitGroup
	once := func(at, down time.Duration, name string, stop func() error, startFn func() error, count *int) {
		if at < 0 {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(start.Add(at))):
			}
			log.Info("fault: stopping "+name, "down_for", down)
			t := time.Now()
			if err := stop(); err != nil {
				fl.errorf(log, "fault: stop "+name, "err", err)
			}
			time.Sleep(down) // the outage itself; not synchronisation
			if err := startFn(); err != nil {
				fl.errorf(log, "fault: start "+name, "err", err)
				return
			}
			fl.mu.Lock()
			*count++
			fl.mu.Unlock()
			log.Info("fault: "+name+" back", "outage", time.Since(t).Round(time.Millisecond))
		}()
	}
	once(fp.RedisAt, fp.RedisDown, "redis-server", st.Redis.Stop, st.Redis.Start, &fl.RedisRestarts)
	natsStop := st.NATS.Stop
	if fp.NATSKill {
		natsStop = st.NATS.Kill
	}
	once(fp.NATSAt, fp.NATSDown, "nats-server", natsStop, func() error {
		// A fresh context: the outage may outlast the fault window.
		sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
		defer scancel()
		return st.NATS.Start(sctx)
	}, &fl.NATSRestarts)

	if fp.KillEvery > 0 && len(st.Workers) > 0 {
		tick := time.NewTicker(fp.KillEvery)
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case <-tick.C:
			}
			w := st.Workers[rng.IntN(len(st.Workers))]
			if fp.Spare != nil && fp.Spare(w) {
				continue
			}
			pid, _ := w.PID()
			if err := w.Kill(); err != nil {
				fl.mu.Lock()
				fl.KillErrors++
				fl.mu.Unlock()
				log.Warn("fault: kill", "worker", w.Name(), "err", err)
			} else {
				fl.mu.Lock()
				fl.Kills++
				fl.mu.Unlock()
				log.Debug("fault: killed", "worker", w.Name(), "pid", pid)
			}
			if err := w.Launch(); err != nil {
				fl.errorf(log, "fault: relaunch "+w.Name(), "err", err)
			}
		}
		tick.Stop()
	}
	wg.Wait()
	for _, w := range st.Workers {
		if !w.Running() {
			log.Warn("worker not running after the faults; starting it", "worker", w.Name())
			if err := w.Launch(); err != nil {
				fl.errorf(log, "relaunch "+w.Name(), "err", err)
			}
		}
	}
	return fl
}
