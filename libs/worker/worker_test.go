package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cefiot/cefiot/libs/etcdx"
	"github.com/cefiot/cefiot/libs/harness/etcdtest"
	"github.com/cefiot/cefiot/libs/harness/netx"
	"github.com/cefiot/cefiot/libs/logging"
	"github.com/cefiot/cefiot/libs/placement"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// write is one simulated write of a workload owner.
type write struct {
	worker, workload string
	epoch            int64
	at               time.Time
}

// journal records the writes of every runner, as a Kafka topic would.
type journal struct {
	mu     sync.Mutex
	writes []write
	runs   map[string]int  // runner calls by worker/workload
	fail   map[string]bool // worker/workload: the run fails at its next write
}

func (j *journal) runner(worker string) Runner {
	return func(ctx context.Context, a *cefiotv1.Assignment, wl *cefiotv1.Workload) error {
		key := worker + "/" + wl.GetName()
		j.mu.Lock()
		if j.runs == nil {
			j.runs = map[string]int{}
		}
		j.runs[key]++
		j.mu.Unlock()
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				j.mu.Lock()
				if j.fail[key] {
					delete(j.fail, key)
					j.mu.Unlock()
					return errors.New("failed on purpose")
				}
				j.writes = append(j.writes, write{worker, wl.GetName(), a.GetEpoch(), time.Now()})
				j.mu.Unlock()
			}
		}
	}
}

// failNext makes worker's run of workload fail at its next write.
func (j *journal) failNext(worker, workload string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail == nil {
		j.fail = map[string]bool{}
	}
	j.fail[worker+"/"+workload] = true
}

// runCount is how many times worker's runner of workload was called.
func (j *journal) runCount(worker, workload string) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.runs[worker+"/"+workload]
}

// spanOf is span for one workload of worker.
func (j *journal) spanOf(worker, workload string, since time.Time) (first, last time.Time, n int, epochs map[int64]bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	epochs = map[int64]bool{}
	for _, w := range j.writes {
		if w.worker != worker || w.workload != workload || w.at.Before(since) {
			continue
		}
		if n == 0 {
			first = w.at
		}
		last = w.at
		n++
		epochs[w.epoch] = true
	}
	return first, last, n, epochs
}

// span returns the first and last write of worker (after since), and how
// many there were.
func (j *journal) span(worker string, since time.Time) (first, last time.Time, n int, epochs map[int64]bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	epochs = map[int64]bool{}
	for _, w := range j.writes {
		if w.worker != worker || w.at.Before(since) {
			continue
		}
		if n == 0 {
			first = w.at
		}
		last = w.at
		n++
		epochs[w.epoch] = true
	}
	return first, last, n, epochs
}

// leader places workloads on every change, as the scheduler's leader does
// (no election: the tests run one).
func leader(ctx context.Context, t *testing.T, cli *clientv3.Client, keys placement.Keys) {
	go func() {
		for ctx.Err() == nil {
			st, err := placement.ReadState(ctx, cli, keys)
			if err != nil {
				continue
			}
			for _, d := range placement.Plan(placement.InputOf(st)) {
				if _, err := placement.WriteDecision(ctx, cli, keys, d, st.AssignmentRevisions[d.Workload]); err != nil && !errors.Is(err, placement.ErrConflict) && ctx.Err() == nil {
					t.Logf("leader: %v", err)
				}
			}
			wctx, cancel := context.WithTimeout(ctx, time.Second)
			<-cli.Watch(wctx, keys.Prefix(), clientv3.WithPrefix(), clientv3.WithRev(st.Revision+1))
			cancel()
		}
	}()
}

func connect(t *testing.T, endpoint string) *clientv3.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli, err := etcdx.Connect(ctx, []string{endpoint}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func startWorker(ctx context.Context, t *testing.T, cli *clientv3.Client, id string, j *journal, reg prometheus.Registerer) *Worker {
	t.Helper()
	return startWorkerWith(ctx, t, cli, id, j, reg, nil)
}

// startWorkerWith is startWorker with its config edited by edit.
func startWorkerWith(ctx context.Context, t *testing.T, cli *clientv3.Client, id string, j *journal, reg prometheus.Registerer, edit func(*Config)) *Worker {
	t.Helper()
	keys, _ := placement.NewKeys("edge")
	cfg := Config{Keys: keys, ID: id, Node: id, Kinds: []string{"enrich"}, LeaseTTL: 2 * time.Second, Registerer: reg,
		OnFenceOverrun: func(stuck []string) { t.Errorf("fence overrun: %v", stuck) }}
	if edit != nil {
		edit(&cfg)
	}
	w, err := New(cli, cfg, j.runner(id), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	// The worker stops when ctx ends or, at the latest, when the test
	// ends (its cleanup runs before those of what it uses).
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func applyEnrich(t *testing.T, cli *clientv3.Client, keys placement.Keys) {
	t.Helper()
	if _, err := placement.ApplyWorkloads(context.Background(), cli, keys, []*cefiotv1.Workload{{Name: "enrich", Kind: "enrich"}}); err != nil {
		t.Fatal(err)
	}
}

// cutOffSite is a site whose enrich workload is declared, with a leader
// placing it, where a worker can be cut off from etcd (through proxy) while
// the others reach it directly; j records what every worker writes.
type cutOffSite struct {
	emb   *etcdtest.Member
	cli   *clientv3.Client
	keys  placement.Keys
	proxy *netx.Proxy
	ctx   context.Context
	j     *journal
}

func newCutOffSite(t *testing.T) *cutOffSite {
	t.Helper()
	emb, cli := etcdtest.Start(t)
	keys, _ := placement.NewKeys("edge")
	applyEnrich(t, cli, keys)
	proxy, err := netx.NewProxy(emb.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	leader(ctx, t, cli, keys)
	return &cutOffSite{emb: emb, cli: cli, keys: keys, proxy: proxy, ctx: ctx, j: &journal{}}
}

// A worker cut off from etcd past its lease stops writing before its
// replacement starts, and after the partition heals it never writes again
// under the old epoch.
func TestPartitionedWorkerStopsBeforeReplacementStarts(t *testing.T) {
	f := newCutOffSite(t)
	emb, cli, keys, proxy, ctx, j := f.emb, f.cli, f.keys, f.proxy, f.ctx, f.j
	regA := prometheus.NewRegistry()
	a := startWorker(ctx, t, connect(t, proxy.Addr()), "a", j, regA)
	waitUntil(t, "a writes", 20*time.Second, func() bool { _, _, n, _ := j.span("a", time.Time{}); return n > 0 })
	startWorker(ctx, t, etcdtest.NewClient(t, emb), "b", j, nil)
	waitUntil(t, "b registered", 10*time.Second, func() bool {
		st, _ := placement.ReadState(ctx, cli, keys)
		return st != nil && st.Worker("b") != nil
	})
	_, _, _, oldEpochs := j.span("a", time.Time{})

	cut := time.Now()
	proxy.Cut()
	waitUntil(t, "b takes over", 30*time.Second, func() bool { _, _, n, _ := j.span("b", time.Time{}); return n > 0 })
	bFirst, _, _, _ := j.span("b", time.Time{})
	_, aLast, _, _ := j.span("a", time.Time{})
	t.Logf("a's last write %v after the cut, b's first %v after the cut", aLast.Sub(cut).Round(time.Millisecond), bFirst.Sub(cut).Round(time.Millisecond))
	if !aLast.Before(bFirst) {
		t.Fatalf("two active owners: a wrote until %v, b started at %v", aLast, bFirst)
	}
	if got := testutil.ToFloat64(a.fencePauses); got != 1 {
		t.Fatalf("fence pauses %v, want 1", got)
	}

	proxy.Heal()
	healed := time.Now()
	waitUntil(t, "a registered again with a new lease", 20*time.Second, func() bool {
		st, _ := placement.ReadState(ctx, cli, keys)
		return st != nil && st.Worker("a") != nil && a.Lease() != 0
	})
	// Give a every chance to misbehave: watch it for a while.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if _, _, n, epochs := j.span("a", healed); n > 0 {
			t.Fatalf("a wrote %d times after the heal (epochs %v; old %v)", n, epochs, oldEpochs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := testutil.ToFloat64(a.leaseLosses); got != 1 {
		t.Fatalf("lease losses %v, want 1", got)
	}
}

// A short etcd blip (well under the lease TTL) stops nothing.
func TestShortEtcdBlipStopsNothing(t *testing.T) {
	f := newCutOffSite(t)
	proxy, ctx, j := f.proxy, f.ctx, f.j
	a := startWorker(ctx, t, connect(t, proxy.Addr()), "a", j, nil)
	waitUntil(t, "a writes", 20*time.Second, func() bool { _, _, n, _ := j.span("a", time.Time{}); return n > 0 })
	proxy.Cut()
	time.Sleep(500 * time.Millisecond) // the outage itself: a fixed duration is the point
	proxy.Heal()
	since := time.Now()
	waitUntil(t, "a keeps writing", 10*time.Second, func() bool { _, _, n, _ := j.span("a", since); return n > 10 })
	if p := testutil.ToFloat64(a.fencePauses); p != 0 {
		t.Fatalf("a short blip paused the workloads %v times", p)
	}
	_, _, _, epochs := j.span("a", time.Time{})
	if len(epochs) != 1 {
		t.Fatalf("epochs %v: the assignment must survive a blip", epochs)
	}
}

// A worker whose workload moves stops it and releases its claim before the
// new owner starts.
func TestMoveHandsOverWithoutOverlap(t *testing.T) {
	_, cli := etcdtest.Start(t)
	keys, _ := placement.NewKeys("edge")
	applyEnrich(t, cli, keys)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	leader(ctx, t, cli, keys)
	j := &journal{}
	slow := func(id string) Runner {
		inner := j.runner(id)
		return func(ctx context.Context, a *cefiotv1.Assignment, wl *cefiotv1.Workload) error {
			err := inner(ctx, a, wl)
			// A slow shutdown: still writing for a moment after cancel.
			end := time.Now().Add(300 * time.Millisecond)
			for time.Now().Before(end) {
				j.mu.Lock()
				j.writes = append(j.writes, write{id, wl.GetName(), a.GetEpoch(), time.Now()})
				j.mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
			return err
		}
	}
	for _, id := range []string{"a", "b"} {
		w, err := New(cli, Config{Keys: keys, ID: id, Node: id, Kinds: []string{"enrich"}, LeaseTTL: 2 * time.Second}, slow(id), logging.Discard())
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = w.Run(ctx) }()
	}
	var owner string
	waitUntil(t, "someone writes", 20*time.Second, func() bool {
		for _, id := range []string{"a", "b"} {
			if _, _, n, _ := j.span(id, time.Time{}); n > 0 {
				owner = id
				return true
			}
		}
		return false
	})
	other := map[string]string{"a": "b", "b": "a"}[owner]
	st, err := placement.ReadState(ctx, cli, keys)
	if err != nil {
		t.Fatal(err)
	}
	target := st.Worker(other)
	d := placement.Decision{Workload: "enrich", Assign: &cefiotv1.Assignment{Workload: "enrich", WorkerId: other, Node: other, LeaseId: target.GetLeaseId()}}
	if _, err := placement.WriteDecision(ctx, cli, keys, d, st.AssignmentRevisions["enrich"]); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the new owner writes", 20*time.Second, func() bool { _, _, n, _ := j.span(other, time.Time{}); return n > 0 })
	first, _, _, _ := j.span(other, time.Time{})
	_, last, _, _ := j.span(owner, time.Time{})
	if !last.Before(first) {
		t.Fatalf("overlap: old owner wrote until %v, new owner started %v", last, first)
	}
}

// TestMain doubles as a standalone etcd server (for tests that must kill
// etcd outright: an embedded etcd closed in-process keeps expiring leases
// while its listeners drain).
func TestMain(m *testing.M) {
	if dir := os.Getenv("CEFIOT_WORKER_TEST_ETCD_DIR"); dir != "" {
		e, err := etcdx.StartEmbedded(context.Background(), etcdx.EmbeddedConfig{
			Name: "w", Dir: dir, ClientAddr: os.Getenv("CEFIOT_WORKER_TEST_ETCD_CLIENT"), PeerAddr: os.Getenv("CEFIOT_WORKER_TEST_ETCD_PEER"),
		}, logging.Discard())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, <-e.Err())
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// etcdProcess runs etcd in a child process that can be SIGKILLed.
type etcdProcess struct {
	t                 *testing.T
	dir, client, peer string
	cmd               *exec.Cmd
}

func (p *etcdProcess) start() {
	p.t.Helper()
	p.cmd = exec.Command(os.Args[0], "-test.run=^$")
	p.cmd.Env = append(os.Environ(), "CEFIOT_WORKER_TEST_ETCD_DIR="+p.dir, "CEFIOT_WORKER_TEST_ETCD_CLIENT="+p.client, "CEFIOT_WORKER_TEST_ETCD_PEER="+p.peer)
	p.cmd.Stderr = os.Stderr
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(p.kill)
	waitUntil(p.t, "etcd answers", 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		cli, err := etcdx.Connect(ctx, []string{p.client}, nil)
		if err == nil {
			cli.Close()
		}
		return err == nil
	})
}

func (p *etcdProcess) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait() // killed: the exit status says so
		p.cmd = nil
	}
}

// With every scheduler replica gone the workloads run on; with the whole
// etcd down past the fence deadline they pause, and when etcd returns (it
// extends every lease) they resume under the same lease and epoch.
func TestSchedulerDownAndEtcdRestart(t *testing.T) {
	clientAddr, _ := netx.FreeAddr()
	peerAddr, _ := netx.FreeAddr()
	etcd := &etcdProcess{t: t, dir: t.TempDir(), client: clientAddr, peer: peerAddr}
	etcd.start()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cli := connect(t, clientAddr)
	keys, _ := placement.NewKeys("edge")
	applyEnrich(t, cli, keys)
	lctx, stopLeader := context.WithCancel(ctx)
	leader(lctx, t, cli, keys)
	j := &journal{}
	a := startWorker(ctx, t, connect(t, clientAddr), "a", j, nil)
	waitUntil(t, "a writes", 20*time.Second, func() bool { _, _, n, _ := j.span("a", time.Time{}); return n > 0 })

	stopLeader() // no scheduler from here on
	since := time.Now()
	waitUntil(t, "a keeps writing for three lease TTLs without a scheduler", 20*time.Second, func() bool {
		first, last, _, _ := j.span("a", since)
		return !first.IsZero() && last.Sub(since) > 6*time.Second
	})
	if p := testutil.ToFloat64(a.fencePauses); p != 0 {
		t.Fatalf("the scheduler being down paused the workloads %v times", p)
	}

	etcd.kill()
	down := time.Now()
	waitUntil(t, "a fences itself", 20*time.Second, func() bool { return testutil.ToFloat64(a.fencePauses) == 1 })
	_, last, _, _ := j.span("a", time.Time{})
	if last.Sub(down) > 2*time.Second {
		t.Fatalf("a wrote %v after etcd went down, past its lease TTL", last.Sub(down))
	}
	etcd.start()
	back := time.Now()
	t.Logf("etcd was down for %v", back.Sub(down).Round(time.Millisecond))
	waitUntil(t, "a resumes", 30*time.Second, func() bool { _, _, n, _ := j.span("a", back); return n > 0 })
	_, _, _, epochs := j.span("a", time.Time{})
	if len(epochs) != 1 || testutil.ToFloat64(a.leaseLosses) != 0 {
		t.Fatalf("after etcd came back: epochs %v, lease losses %v; want the same epoch and lease", epochs, testutil.ToFloat64(a.leaseLosses))
	}
}

func testLogger() *slog.Logger {
	if os.Getenv("CEFIOT_TEST_LOG") != "" {
		l, _ := logging.New(os.Stderr, "debug", "text")
		return l
	}
	return logging.Discard()
}
