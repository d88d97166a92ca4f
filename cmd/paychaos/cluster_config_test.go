package main

import (
	"io"
	"testing"
	"time"
)

func TestParseClusterConfig(t *testing.T) {
	none := func(string) string { return "" }
	c, err := parseConfig([]string{"-cluster", "-kill-consumer-leader-at", "0.3", "-node-down", "2s"}, none, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cc := c.Cluster
	if !cc.On || cc.NATSNodes != 3 || cc.Replicas != 3 || cc.SkipSetup || cc.RedisDirect ||
		cc.ConsumerLeaderAt != 0.3 || cc.NodeDown != 2*time.Second || cc.RequestsLeaderAt != 0.15 {
		t.Errorf("cluster config %+v", cc)
	}
	if c, _ := parseConfig(nil, none, io.Discard); c.Cluster.On {
		t.Error("-cluster is on by default")
	}
	for _, args := range [][]string{
		{"-cluster", "-replicas", "5"},
		{"-cluster", "-kill-results-leader-at", "1.2"},
		{"-cluster", "-nats-nodes", "0"},
		{"-cluster", "-stall-after", "0s"},
	} {
		if _, err := parseConfig(args, none, io.Discard); err == nil {
			t.Errorf("parseConfig(%v) succeeded", args)
		}
	}
}
