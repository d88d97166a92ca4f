package idempotency

import (
	"testing"
	"time"

	"github.com/payworker/payworker/idempotency/redistest"
)

// TestStoreSuiteOnRedisCluster runs the core suite of TestStore against a
// real three-master Redis Cluster through redis.NewClusterClient, with and
// without the cluster's auto-pipeliner.
func TestStoreSuiteOnRedisCluster(t *testing.T) {
	cl := redistest.StartCluster(t, redistest.ClusterOptions{})
	c := cl.Client(t)
	ap, err := c.AutoPipeline()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ap.Close() })
	for _, b := range []backend{
		{name: "cluster", client: c, advance: time.Sleep},
		{name: "cluster+autopipeline", client: c, batcher: ap, advance: time.Sleep},
	} {
		t.Run(b.name, func(t *testing.T) {
			t.Run("Transitions", func(t *testing.T) { testTransitions(t, b) })
			t.Run("LeaseExpiry", func(t *testing.T) { testLeaseExpiry(t, b) })
			t.Run("Extend", func(t *testing.T) { testExtend(t, b) })
			t.Run("LostReply", func(t *testing.T) { testLostReply(t, b) })
			t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, b) })
			t.Run("NotOwner", func(t *testing.T) { testNotOwner(t, b) })
			t.Run("CompleteTwice", func(t *testing.T) { testCompleteTwice(t, b) })
			t.Run("Retention", func(t *testing.T) { testRetentionTTL(t, b) })
			t.Run("Get", func(t *testing.T) { testGet(t, b) })
			t.Run("ScriptFlush", func(t *testing.T) { testScriptFlush(t, b) })
			t.Run("Values", func(t *testing.T) { testValues(t, b) })
			t.Run("CorruptRecord", func(t *testing.T) { testCorruptRecord(t, b) })
			t.Run("FailedResultKept", func(t *testing.T) { testFailedResultKept(t, b) })
		})
	}
}
