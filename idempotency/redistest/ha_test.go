package redistest

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestSentinelFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := StartSentinel(t, SentinelOptions{Password: "sentinel-test-pw", AppendOnly: true})
	if len(s.Nodes) != 2 || len(s.Sentinels) != 3 {
		t.Fatalf("%d nodes, %d sentinels", len(s.Nodes), len(s.Sentinels))
	}
	opt, err := redis.ParseFailoverURL(s.URL())
	if err != nil {
		t.Fatalf("ParseFailoverURL(%q): %v", s.URL(), err)
	}
	if opt.MasterName != "payworker" || len(opt.SentinelAddrs) != 3 || opt.Password != "sentinel-test-pw" {
		t.Errorf("URL %q parses to %+v", s.URL(), opt)
	}
	old, err := s.Master(ctx)
	if err != nil || old != s.Nodes[0] {
		t.Fatalf("Master = %v, %v; want the first node", old, err)
	}
	c := redis.NewFailoverClient(opt)
	defer c.Close()
	if err := c.Set(ctx, "before", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// Let the write reach the replica before the crash (replication is
	// asynchronous; WAIT makes this test deterministic).
	if n, err := c.Wait(ctx, 1, 5*time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT = %d, %v", n, err)
	}

	if err := old.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	primary, err := s.WaitFailover(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("failover to %s took %v", primary.Addr(), time.Since(killed).Round(time.Millisecond))
	// The failover client follows the Sentinels to the new primary.
	err = poll(ctx, "write to the new primary", func() error { return c.Set(ctx, "after", "2", 0).Err() })
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "before").Result(); err != nil || got != "1" {
		t.Errorf("GET before = %q, %v", got, err)
	}

	// The old primary comes back and is turned into a replica.
	if err := old.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitReplicaOf(ctx, old, primary); err != nil {
		t.Fatal(err)
	}
	oc := s.nodeClient(old)
	defer oc.Close()
	err = poll(ctx, "old primary has the new write", func() error {
		got, err := oc.Get(ctx, "after").Result()
		if err != nil || got != "2" {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := s.Master(ctx); err != nil || m != primary {
		t.Errorf("Master after the old one came back = %v, %v; want %v", m, err, primary)
	}
}

func TestSentinelNoPassword(t *testing.T) {
	s := StartSentinel(t, SentinelOptions{Sentinels: 1, MasterName: "other"})
	if strings.Contains(s.URL(), "password") || !strings.Contains(s.URL(), "master_name=other") {
		t.Errorf("URL %q", s.URL())
	}
	c := s.Client(t)
	if err := c.Set(context.Background(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := StartCluster(t, ClusterOptions{Password: "cluster-test-pw", AppendOnly: true})
	if len(cl.Nodes) != 3 {
		t.Fatalf("%d nodes", len(cl.Nodes))
	}
	opt, err := redis.ParseClusterURL(cl.URL())
	if err != nil || len(opt.Addrs) != 3 || opt.Password != "cluster-test-pw" {
		t.Fatalf("ParseClusterURL(%q) = %+v, %v", cl.URL(), opt, err)
	}
	c := redis.NewClusterClient(opt)
	defer c.Close()
	for i := range 100 {
		if err := c.Set(ctx, "k"+strconv.Itoa(i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Every master holds part of the keys.
	for _, n := range cl.Nodes {
		nc := cl.nodeClient(n)
		size, err := nc.DBSize(ctx).Result()
		nc.Close()
		if err != nil || size == 0 {
			t.Errorf("%s holds %d keys (%v)", n.Addr(), size, err)
		}
	}
	// A restarted node keeps its nodes.conf and rejoins.
	if err := cl.Nodes[1].Restart(); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitOK(ctx); err != nil {
		t.Fatal(err)
	}
	err = poll(ctx, "read after restart", func() error {
		for i := range 100 {
			if err := c.Get(ctx, "k"+strconv.Itoa(i)).Err(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

func TestClusterWithReplicas(t *testing.T) {
	cl := StartCluster(t, ClusterOptions{Masters: 3, ReplicasPerMaster: 1})
	if len(cl.Nodes) != 6 {
		t.Fatalf("%d nodes", len(cl.Nodes))
	}
	nc := cl.nodeClient(cl.Nodes[4])
	defer nc.Close()
	info, err := nc.Info(context.Background(), "replication").Result()
	if err != nil || !strings.Contains(info, "role:slave") {
		t.Errorf("node 5 is not a replica: %q, %v", info, err)
	}
}
