package scheduler

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cefiot/cefiot/libs/etcdx"
	"github.com/cefiot/cefiot/libs/harness/etcdtest"
	"github.com/cefiot/cefiot/libs/harness/netx"
	"github.com/cefiot/cefiot/libs/logging"
	"github.com/cefiot/cefiot/libs/placement"
	"github.com/cefiot/cefiot/libs/worker"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// recorder records which workloads a worker runs, and with which epoch.
type recorder struct {
	mu      sync.Mutex
	running map[string]int64
	changed chan struct{}
}

func newRecorder() *recorder {
	return &recorder{running: map[string]int64{}, changed: make(chan struct{}, 100)}
}

func (r *recorder) run(ctx context.Context, a *cefiotv1.Assignment, wl *cefiotv1.Workload) error {
	r.mu.Lock()
	r.running[wl.GetName()] = a.GetEpoch()
	r.mu.Unlock()
	r.changed <- struct{}{}
	<-ctx.Done()
	r.mu.Lock()
	delete(r.running, wl.GetName())
	r.mu.Unlock()
	r.changed <- struct{}{}
	return nil
}

func (r *recorder) epoch(name string) (int64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.running[name]
	return e, ok
}

// waitFor waits for cond, re-checking whenever a recorder changes.
func waitFor(t *testing.T, what string, cond func() bool, recs ...*recorder) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for !cond() {
		cases := make(chan struct{}, 1)
		for _, r := range recs {
			go func() {
				select {
				case <-r.changed:
					select {
					case cases <- struct{}{}:
					default:
					}
				case <-time.After(200 * time.Millisecond):
				}
			}()
		}
		select {
		case <-cases:
		case <-time.After(250 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestSchedulerPlacesAndFailsOver(t *testing.T) {
	emb, cli := etcdtest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	spec, err := placement.ParseSpec([]byte("site: edge\nworkloads:\n - {name: enrich, kind: enrich}\n - {name: bridge, kind: bridge}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Site: "edge", ReplicaID: "s1", SessionTTL: time.Second, Resync: time.Second}
	s1, err := newScheduler(cli, cfg, spec, prometheus.NewRegistry(), logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s1.Run(ctx) }()

	keys, _ := placement.NewKeys("edge")
	startWorker := func(id string, rec *recorder) context.CancelFunc {
		wctx, wcancel := context.WithCancel(ctx)
		w, err := worker.New(etcdtest.NewClient(t, emb), worker.Config{
			Keys: keys, ID: id, Node: id, Kinds: []string{"enrich", "bridge"}, LeaseTTL: time.Second,
		}, rec.run, logging.Discard())
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = w.Run(wctx); close(done) }()
		return func() { wcancel(); <-done }
	}
	ra, rb := newRecorder(), newRecorder()
	stopA := startWorker("a", ra)
	waitFor(t, "both workloads on worker a", func() bool {
		_, e := ra.epoch("enrich")
		_, b := ra.epoch("bridge")
		return e && b
	}, ra)
	oldEpoch, _ := ra.epoch("enrich")
	stopB := startWorker("b", rb)
	defer stopB()
	// A live owner is never moved because another worker appeared.
	stopA()
	waitFor(t, "both workloads moved to worker b", func() bool {
		e, ok1 := rb.epoch("enrich")
		_, ok2 := rb.epoch("bridge")
		return ok1 && ok2 && e > oldEpoch
	}, rb)
	if _, ok := ra.epoch("enrich"); ok {
		t.Fatal("stopped worker still runs enrich")
	}
	leader, err := s1.Leader(ctx)
	if err != nil || leader != "s1" {
		t.Fatalf("leader %q, %v", leader, err)
	}
}

func TestSecondReplicaTakesOver(t *testing.T) {
	emb, cli := etcdtest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := Config{Site: "edge", SessionTTL: time.Second, Resync: time.Second}
	cfg.ReplicaID = "s1"
	s1, _ := newScheduler(cli, cfg, nil, prometheus.NewRegistry(), logging.Discard())
	cfg.ReplicaID = "s2"
	s2, _ := newScheduler(etcdtest.NewClient(t, emb), cfg, nil, prometheus.NewRegistry(), logging.Discard())
	ctx1, stop1 := context.WithCancel(ctx)
	done1 := make(chan struct{})
	go func() { _ = s1.Run(ctx1); close(done1) }()
	deadline := time.Now().Add(10 * time.Second)
	for l, _ := s1.Leader(ctx); l != "s1"; l, _ = s1.Leader(ctx) {
		if time.Now().After(deadline) {
			t.Fatal("s1 never led")
		}
		time.Sleep(50 * time.Millisecond)
	}
	go func() { _ = s2.Run(ctx) }()
	stop1()
	<-done1
	deadline = time.Now().Add(10 * time.Second)
	for l, _ := s2.Leader(ctx); l != "s2"; l, _ = s2.Leader(ctx) {
		if time.Now().After(deadline) {
			t.Fatal("s2 never took over")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A leader cut off from etcd steps down once its session is gone, another
// replica takes over, and the old one's election key no longer guards any
// write: it cannot act on stale leadership after the partition heals.
func TestPartitionedLeaderStepsDown(t *testing.T) {
	emb, cli := etcdtest.Start(t)
	proxy, err := netx.NewProxy(emb.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	viaProxy, err := etcdx.Connect(ctx, []string{proxy.Addr()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer viaProxy.Close()
	cfg := Config{Site: "edge", SessionTTL: 2 * time.Second, Resync: time.Second}
	cfg.ReplicaID = "s1"
	reg1 := prometheus.NewRegistry()
	s1, _ := newScheduler(viaProxy, cfg, nil, reg1, logging.Discard())
	cfg.ReplicaID = "s2"
	s2, _ := newScheduler(cli, cfg, nil, prometheus.NewRegistry(), logging.Discard())
	go func() { _ = s1.Run(ctx) }()
	leaderIs := func(id string) func() bool {
		return func() bool { l, _ := s2.Leader(ctx); return l == id }
	}
	waitUntil(t, "s1 leads", leaderIs("s1"))
	go func() { _ = s2.Run(ctx) }()
	proxy.Cut()
	cut := time.Now()
	waitUntil(t, "s2 takes over", leaderIs("s2"))
	waitUntil(t, "s1 steps down", func() bool { return testutil.ToFloat64(s1.leading) == 0 })
	t.Logf("s2 leads %.1fs after s1 was cut off", time.Since(cut).Seconds())
	proxy.Heal()
	// s1 campaigns again, as a follower: s2 stays the leader.
	time.Sleep(time.Second) // let s1 reconnect and try; the point is what it does not do
	if l, _ := s2.Leader(ctx); l != "s2" {
		t.Fatalf("leader %q after the heal, want s2", l)
	}
	if testutil.ToFloat64(s1.leading) != 0 {
		t.Fatal("s1 believes it leads after the heal")
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
