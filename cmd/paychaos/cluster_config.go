package main

import (
	"errors"
	"flag"
	"time"
)

// clusterConfig is the command line of the clustered run (-cluster, make
// chaos-cluster).
type clusterConfig struct {
	On          bool
	NATSNodes   int
	Replicas    int
	SkipSetup   bool
	RedisDirect bool
	// When the faults happen, as fractions of the load time (<0: never).
	RequestsLeaderAt float64
	RedisPrimaryAt   float64
	ConsumerLeaderAt float64
	ResultsLeaderAt  float64
	NodeDown         time.Duration // how long a killed NATS node stays down
	RedisDown        time.Duration // how long the killed Redis primary stays down
	StallAfter       time.Duration // no result for this long while some are missing: a stall
}

func (c *clusterConfig) register(fs *flag.FlagSet) {
	fs.BoolVar(&c.On, "cluster", false, "clustered run: a NATS JetStream cluster with replicated streams, Redis with Sentinel (make chaos-cluster)")
	fs.IntVar(&c.NATSNodes, "nats-nodes", 3, "cluster: nats-server processes")
	fs.IntVar(&c.Replicas, "replicas", 3, "cluster: replicas of the streams and the consumer (PAYWORKER_STREAM_REPLICAS)")
	fs.BoolVar(&c.SkipSetup, "skip-setup", false, "cluster: create the streams and the consumer here and run the workers with PAYWORKER_SKIP_SETUP=true (default: the workers create them, with PAYWORKER_STREAM_REPLICAS)")
	fs.BoolVar(&c.RedisDirect, "redis-direct", false, "cluster: give the workers the Redis primary's URL instead of the Sentinel URL, and do not kill the primary (for workers that cannot read a Sentinel URL)")
	fs.Float64Var(&c.RequestsLeaderAt, "kill-requests-leader-at", 0.15, "cluster: SIGKILL the node leading the requests stream at this fraction of the load time (<0: never)")
	fs.Float64Var(&c.RedisPrimaryAt, "kill-redis-primary-at", 0.35, "cluster: SIGKILL the Redis primary at this fraction of the load time (<0: never)")
	fs.Float64Var(&c.ConsumerLeaderAt, "kill-consumer-leader-at", 0.55, "cluster: SIGKILL the node leading the workers' consumer at this fraction of the load time (<0: never)")
	fs.Float64Var(&c.ResultsLeaderAt, "kill-results-leader-at", 0.75, "cluster: SIGKILL the node leading the results stream at this fraction of the load time (<0: never)")
	fs.DurationVar(&c.NodeDown, "node-down", 4*time.Second, "cluster: how long a killed nats-server stays down")
	fs.DurationVar(&c.RedisDown, "redis-primary-down", 5*time.Second, "cluster: how long the killed Redis primary stays down")
	fs.DurationVar(&c.StallAfter, "stall-after", 30*time.Second, "cluster: report a stall (with the consumer's state) when no result arrives for this long while some are missing")
}

func (c clusterConfig) validate() error {
	if !c.On {
		return nil
	}
	switch {
	case c.NATSNodes < 1:
		return errors.New("-nats-nodes must be positive")
	case c.Replicas < 1 || c.Replicas > c.NATSNodes:
		return errors.New("-replicas must be between 1 and -nats-nodes")
	case c.RequestsLeaderAt >= 1 || c.RedisPrimaryAt >= 1 || c.ConsumerLeaderAt >= 1 || c.ResultsLeaderAt >= 1:
		return errors.New("the -kill-*-at flags are fractions of the load time, below 1")
	case c.NodeDown < 0 || c.RedisDown < 0 || c.StallAfter <= 0:
		return errors.New("-node-down and -redis-primary-down must not be negative, -stall-after must be positive")
	}
	return nil
}
