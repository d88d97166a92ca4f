package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/cmd/internal/stack"
	"github.com/payworker/payworker/messages"
)

// clusterFaultPlan says which faults the clustered run injects.
type clusterFaultPlan struct {
	KillEvery        time.Duration // SIGKILL a random worker this often; 0: never
	RequestsLeaderAt time.Duration // SIGKILL the requests stream's leader; <0: never
	RedisPrimaryAt   time.Duration // SIGKILL the Redis primary; <0: never
	ConsumerLeaderAt time.Duration // SIGKILL the consumer's leader; <0: never
	ResultsLeaderAt  time.Duration // SIGKILL the results stream's leader; <0: never
	NodeDown         time.Duration // a killed nats-server restarts this long after the kill
	RedisDown        time.Duration // the killed primary restarts this long after the kill
	Consumer         string
	Seed             int64
	StopAfterDur     time.Duration // no new worker kill after this long
}

// nodeKill is one SIGKILL of a NATS node.
type nodeKill struct {
	Role      string // what it led
	Node      string
	NewLeader string
	Election  time.Duration // kill to a new leader
	Down      time.Duration // kill to restart
	Rejoin    time.Duration // restart to healthy (caught up)
}

// redisKill is one SIGKILL of the Redis primary.
type redisKill struct {
	Old, New string
	Failover time.Duration // kill to the replica answering as primary
	Rejoin   time.Duration // restart to replica of the new primary, in sync
}

// clusterFaultLog is what was injected.
type clusterFaultLog struct {
	mu               sync.Mutex
	WorkerKills      int
	WorkerKillErrors int
	NodeKills        []nodeKill
	Redis            []redisKill
	RedisFailovers   int
	Errors           []string
}

func (f *clusterFaultLog) errorf(log *slog.Logger, msg string, err error) {
	log.Error(msg, "err", err)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Errors = append(f.Errors, msg+": "+err.Error())
}

// injectClusterFaults runs the plan: worker SIGKILLs every KillEvery until
// the load ends, and the node and primary kills at their times, one after
// the other (each waits until the previous one healed: a second node down
// before the first caught up would take the quorum away, which is not
// this run's fault model).
func injectClusterFaults(ctx context.Context, st *stack.ClusterStack, js jetstream.JetStream, fp clusterFaultPlan, log *slog.Logger) *clusterFaultLog {
	fl := &clusterFaultLog{}
	start := time.Now()
	var wg sync.WaitGroup

	type step struct {
		at time.Duration
		do func()
	}
	var steps []step
	nodeStep := func(at time.Duration, role string, find func(context.Context) (*stack.NATSNode, error)) {
		if at >= 0 {
			steps = append(steps, step{at, func() { killNATSNode(ctx, st, js, fp, role, find, fl, log) }})
		}
	}
	nodeStep(fp.RequestsLeaderAt, "requests stream leader", func(ctx context.Context) (*stack.NATSNode, error) {
		return st.NATS.StreamLeader(ctx, js, messages.StreamRequests)
	})
	nodeStep(fp.ConsumerLeaderAt, "consumer leader", func(ctx context.Context) (*stack.NATSNode, error) {
		return st.NATS.ConsumerLeader(ctx, js, messages.StreamRequests, fp.Consumer)
	})
	nodeStep(fp.ResultsLeaderAt, "results stream leader", func(ctx context.Context) (*stack.NATSNode, error) {
		return st.NATS.StreamLeader(ctx, js, messages.StreamResults)
	})
	if fp.RedisPrimaryAt >= 0 {
		steps = append(steps, step{fp.RedisPrimaryAt, func() { killRedisPrimary(ctx, st, fp, fl, log) }})
	}
	sort.Slice(steps, func(i, j int) bool { return steps[i].at < steps[j].at })
	wg.Go(func() {
		for _, s := range steps {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(start.Add(s.at))):
			}
			s.do()
		}
	})

	if fp.KillEvery > 0 && len(st.Workers) > 0 {
		rng := rand.New(rand.NewPCG(uint64(fp.Seed), 0xc0ffee))
		lctx, cancel := context.WithTimeout(ctx, fp.StopAfterDur)
		tick := time.NewTicker(fp.KillEvery)
	loop:
		for {
			select {
			case <-lctx.Done():
				break loop
			case <-tick.C:
			}
			w := st.Workers[rng.IntN(len(st.Workers))]
			pid, _ := w.PID()
			if err := w.Kill(); err != nil {
				fl.mu.Lock()
				fl.WorkerKillErrors++
				fl.mu.Unlock()
				log.Warn("fault: kill", "worker", w.Name(), "err", err)
			} else {
				fl.mu.Lock()
				fl.WorkerKills++
				fl.mu.Unlock()
				log.Debug("fault: killed", "worker", w.Name(), "pid", pid)
			}
			if err := w.Launch(); err != nil {
				fl.errorf(log, "fault: relaunch "+w.Name(), err)
			}
		}
		tick.Stop()
		cancel()
	}
	wg.Wait()
	for _, w := range st.Workers {
		if !w.Running() {
			log.Warn("worker not running after the faults; starting it", "worker", w.Name())
			if err := w.Launch(); err != nil {
				fl.errorf(log, "relaunch "+w.Name(), err)
			}
		}
	}
	return fl
}

// retry calls f until it succeeds or ctx ends (the JetStream API answers
// errors for a moment while leaders move).
func retry[T any](ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		v, err := f(cctx)
		cancel()
		if err == nil {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("%w (last: %w)", context.Cause(ctx), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func killNATSNode(ctx context.Context, st *stack.ClusterStack, js jetstream.JetStream, fp clusterFaultPlan, role string,
	find func(context.Context) (*stack.NATSNode, error), fl *clusterFaultLog, log *slog.Logger) {
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	node, err := retry(fctx, find)
	if err != nil {
		fl.errorf(log, "fault: find the "+role, err)
		return
	}
	k := nodeKill{Role: role, Node: node.Name}
	log.Info("fault: SIGKILL nats-server", "node", node.Name, "leads", role)
	killed := time.Now()
	if err := node.Kill(); err != nil {
		fl.errorf(log, "fault: kill "+node.Name, err)
		return
	}
	nl, err := retry(fctx, func(ctx context.Context) (*stack.NATSNode, error) {
		l, err := find(ctx)
		if err == nil && l == node {
			return nil, errors.New("still the killed node")
		}
		return l, err
	})
	if err != nil {
		fl.errorf(log, "fault: no new "+role+" after killing "+node.Name, err)
	} else {
		k.NewLeader, k.Election = nl.Name, time.Since(killed)
		log.Info("fault: new leader", "leads", role, "node", nl.Name, "after", k.Election.Round(time.Millisecond))
	}
	time.Sleep(time.Until(killed.Add(fp.NodeDown))) // the outage itself
	k.Down = time.Since(killed)
	restarted := time.Now()
	if err := node.Start(fctx); err != nil {
		fl.errorf(log, "fault: restart "+node.Name, err)
		return
	}
	if err := stack.WaitReplicated(fctx, js, fp.Consumer, len(st.NATS.Nodes)); err != nil {
		fl.errorf(log, "fault: "+node.Name+" did not catch up", err)
	}
	k.Rejoin = time.Since(restarted)
	log.Info("fault: nats-server back and caught up", "node", node.Name, "after", k.Rejoin.Round(time.Millisecond))
	fl.mu.Lock()
	fl.NodeKills = append(fl.NodeKills, k)
	fl.mu.Unlock()
}

func killRedisPrimary(ctx context.Context, st *stack.ClusterStack, fp clusterFaultPlan, fl *clusterFaultLog, log *slog.Logger) {
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	old, err := st.Redis.Master(fctx)
	if err != nil {
		fl.errorf(log, "fault: find the Redis primary", err)
		return
	}
	log.Info("fault: SIGKILL the Redis primary", "addr", old.Addr())
	killed := time.Now()
	if err := old.Kill(); err != nil {
		fl.errorf(log, "fault: kill the Redis primary", err)
		return
	}
	primary, err := st.Redis.WaitFailover(fctx, old)
	if err != nil {
		fl.errorf(log, "fault: no Sentinel failover", err)
		return
	}
	rk := redisKill{Old: old.Addr(), New: primary.Addr(), Failover: time.Since(killed)}
	log.Info("fault: Sentinel promoted the replica", "primary", primary.Addr(), "after", rk.Failover.Round(time.Millisecond))
	time.Sleep(time.Until(killed.Add(fp.RedisDown))) // the outage itself
	restarted := time.Now()
	if err := old.Restart(); err != nil {
		fl.errorf(log, "fault: restart the old Redis primary", err)
		return
	}
	if err := st.Redis.WaitReplicaOf(fctx, old, primary); err != nil {
		fl.errorf(log, "fault: old primary not a replica", err)
		return
	}
	rk.Rejoin = time.Since(restarted)
	log.Info("fault: old Redis primary back as a replica", "addr", old.Addr(), "after", rk.Rejoin.Round(time.Millisecond))
	fl.mu.Lock()
	fl.Redis = append(fl.Redis, rk)
	fl.RedisFailovers++
	fl.mu.Unlock()
}
