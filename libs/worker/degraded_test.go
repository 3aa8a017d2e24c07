package worker

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cefiot/cefiot/libs/harness/etcdtest"
	"github.com/cefiot/cefiot/libs/harness/netx"
	"github.com/cefiot/cefiot/libs/placement"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// enrichIsOverlapSafe is the services' answer for these tests: enrich is
// fenced by Kafka, sink is not.
func enrichIsOverlapSafe(c *Config) {
	c.Kinds = []string{"enrich", "sink"}
	c.OverlapSafe = func(wl *cefiotv1.Workload) bool { return wl.GetKind() == "enrich" }
}

// Control plane down is not data plane down: with etcd gone (as when it
// loses its quorum) past the fence deadline, the overlap-safe workload runs
// on in the same run, while the one that must never run twice stops before
// the lease could expire. A degraded run that fails is not started again
// until the lease is renewed. When etcd returns, both go on under the same
// lease and epoch: nothing moved.
func TestEtcdDownKeepsOverlapSafeWorkloadsRunning(t *testing.T) {
	clientAddr, _ := netx.FreeAddr()
	peerAddr, _ := netx.FreeAddr()
	etcd := &etcdProcess{t: t, dir: t.TempDir(), client: clientAddr, peer: peerAddr}
	etcd.start()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cli := connect(t, clientAddr)
	keys, _ := placement.NewKeys("edge")
	if _, err := placement.ApplyWorkloads(ctx, cli, keys, []*cefiotv1.Workload{{Name: "enrich", Kind: "enrich"}, {Name: "sink", Kind: "sink"}}); err != nil {
		t.Fatal(err)
	}
	lctx, stopLeader := context.WithCancel(ctx)
	leader(lctx, t, cli, keys)
	j := &journal{}
	a := startWorkerWith(ctx, t, connect(t, clientAddr), "a", j, nil, enrichIsOverlapSafe)
	waitUntil(t, "a runs both", 20*time.Second, func() bool {
		_, _, e, _ := j.spanOf("a", "enrich", time.Time{})
		_, _, s, _ := j.spanOf("a", "sink", time.Time{})
		return e > 0 && s > 0
	})
	stopLeader()

	etcd.kill()
	down := time.Now()
	waitUntil(t, "a fences itself", 20*time.Second, func() bool { return testutil.ToFloat64(a.fencePauses) == 1 })
	waitUntil(t, "enrich writes on for three lease TTLs after etcd went down", 30*time.Second, func() bool {
		_, last, _, _ := j.spanOf("a", "enrich", down)
		return last.Sub(down) > 6*time.Second
	})
	if _, last, _, _ := j.spanOf("a", "sink", time.Time{}); last.Sub(down) > 2*time.Second {
		t.Fatalf("sink (not overlap-safe) wrote %v after etcd went down, past its lease TTL", last.Sub(down))
	}
	if got := testutil.ToFloat64(a.degraded); got != 1 {
		t.Fatalf("degraded workloads %v, want 1 (enrich)", got)
	}
	if n := j.runCount("a", "enrich"); n != 1 {
		t.Fatalf("enrich was started %d times; degraded mode must keep its run", n)
	}

	// A degraded run that fails waits for the lease.
	j.failNext("a", "enrich")
	waitUntil(t, "the enrich run fails", 10*time.Second, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		e := a.running["enrich"]
		return e != nil && e.runs == 1
	})
	failed := time.Now()
	time.Sleep(3 * time.Second) // watching for a restart that must not come: the wait is the point
	if _, _, n, _ := j.spanOf("a", "enrich", failed); n > 0 || j.runCount("a", "enrich") != 1 {
		t.Fatalf("a failed degraded run was started again (%d writes, %d runs) before the lease was renewed", n, j.runCount("a", "enrich"))
	}

	etcd.start()
	back := time.Now()
	waitUntil(t, "both write again", 30*time.Second, func() bool {
		_, _, e, _ := j.spanOf("a", "enrich", back)
		_, _, s, _ := j.spanOf("a", "sink", back)
		return e > 0 && s > 0
	})
	_, _, _, enrichEpochs := j.spanOf("a", "enrich", time.Time{})
	_, _, _, sinkEpochs := j.spanOf("a", "sink", time.Time{})
	if len(enrichEpochs) != 1 || len(sinkEpochs) != 1 || testutil.ToFloat64(a.leaseLosses) != 0 || testutil.ToFloat64(a.degraded) != 0 {
		t.Fatalf("after etcd came back: epochs %v and %v, lease losses %v, degraded %v; want one epoch each, the same lease, not degraded",
			enrichEpochs, sinkEpochs, testutil.ToFloat64(a.leaseLosses), testutil.ToFloat64(a.degraded))
	}
}

// A worker cut off from a working etcd keeps its overlap-safe workload
// running (its Kafka fencing makes the overlap harmless) while the leader
// moves it to another worker once the lease has expired; when the
// partition heals the cut-off worker learns its lease is gone, stops, and
// never writes under the old epoch again.
func TestPartitionedWorkerKeepsOverlapSafeWorkUntilItsLeaseIsFoundGone(t *testing.T) {
	f := newCutOffSite(t)
	emb, cli, keys, proxy, ctx, j := f.emb, f.cli, f.keys, f.proxy, f.ctx, f.j
	a := startWorkerWith(ctx, t, connect(t, proxy.Addr()), "a", j, nil, enrichIsOverlapSafe)
	waitUntil(t, "a writes", 20*time.Second, func() bool { _, _, n, _ := j.span("a", time.Time{}); return n > 0 })
	startWorkerWith(ctx, t, etcdtest.NewClient(t, emb), "b", j, nil, enrichIsOverlapSafe)
	waitUntil(t, "b registered", 10*time.Second, func() bool {
		st, _ := placement.ReadState(ctx, cli, keys)
		return st != nil && st.Worker("b") != nil
	})

	proxy.Cut()
	waitUntil(t, "b takes over", 30*time.Second, func() bool { _, _, n, _ := j.span("b", time.Time{}); return n > 0 })
	bFirst, _, _, _ := j.span("b", time.Time{})
	waitUntil(t, "a still writes after b started (degraded)", 10*time.Second, func() bool {
		_, last, _, _ := j.span("a", time.Time{})
		return last.After(bFirst)
	})

	proxy.Heal()
	waitUntil(t, "a registered again with a new lease", 20*time.Second, func() bool {
		st, _ := placement.ReadState(ctx, cli, keys)
		return st != nil && st.Worker("a") != nil && a.Lease() != 0 && testutil.ToFloat64(a.leaseLosses) == 1
	})
	stopped := time.Now()
	time.Sleep(3 * time.Second) // give a every chance to write again: the wait is the point
	if _, _, n, epochs := j.span("a", stopped); n > 0 {
		t.Fatalf("a wrote %d times after it found its lease gone (epochs %v)", n, epochs)
	}
	if _, _, n, _ := j.span("b", stopped); n == 0 {
		t.Fatal("b stopped writing")
	}
}
