package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
	"github.com/cefiot/cefiot/libs/harness/localstack"
	"github.com/cefiot/cefiot/libs/logging"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// edgeControlPlaneOutage is how long TestEdgeControlPlaneDownFramesFlow
// keeps the edge site's etcd and scheduler away, and edgeQuorumOutage how
// long TestEdgeQuorumLostFramesFlow keeps two of its three etcd members
// away.
const (
	edgeControlPlaneOutage = time.Minute
	edgeQuorumOutage       = 2 * time.Minute
)

// TestEdgeControlPlaneDownFramesFlow: control plane down is not data plane
// down. The edge site's whole control plane (its scheduler and the etcd it
// embeds) is SIGKILLed while a camera's frames flow: no worker can renew
// its lease, no one can place anything. Capture (of a file, whose frame
// ids come from its content), enrich and bridge, all safe to overlap, keep
// running in degraded mode, so frames keep arriving in the cloud during
// the outage. When the control plane returns (etcd extends every lease
// when it elects a leader), nothing moves: the same owners under the same
// epochs, no lease lost. The store holds every frame the camera sent,
// exactly once.
func TestEdgeControlPlaneDownFramesFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test on real Kafka; skipped with -short")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	video, want := outageVideo(t, dir, edgeControlPlaneOutage)
	logger, _ := logging.New(os.Stderr, "warn", "text")
	stack := startStack(ctx, t, localstack.Config{
		BinDir: binDir(t), RunDir: filepath.Join(dir, "run"), KafkaLibs: kafkatest.Libs(t), Video: video, Realtime: true,
		Cameras: []string{"cam-1"}, Logger: logger,
	})
	exits := watchExits(ctx, t, stack)
	outage := controlPlaneOutage{stack: stack, edge: schedulerClient(t, stack, "scheduler-edge"), length: edgeControlPlaneOutage, want: want}
	outage.run(ctx, t, "the edge scheduler and its etcd SIGKILLed", func() {
		exits.expect("scheduler-edge")
		stack.KillService("scheduler-edge") // and its etcd: no member left
	}, func() {
		if err := stack.StartService("scheduler-edge"); err != nil {
			t.Fatal(err)
		}
	})
}

// TestEdgeQuorumLostFramesFlow: the site's etcd has three members, on
// three boards; two are taken away for two minutes while a camera's
// frames flow through two nodes, so the one left has no quorum: no lease
// can be renewed, no one can place anything. The data plane keeps running
// its assignments in degraded mode, frames keep arriving in the cloud,
// and when the two members return nothing moves. Every frame the camera
// sent is stored exactly once.
func TestEdgeQuorumLostFramesFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("two-minute fault test on real Kafka; skipped with -short")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	video, want := outageVideo(t, dir, edgeQuorumOutage)
	logger, _ := logging.New(os.Stderr, "warn", "text")
	stack := startStack(ctx, t, localstack.Config{
		BinDir: binDir(t), RunDir: filepath.Join(dir, "run"), KafkaLibs: kafkatest.Libs(t), Video: video, Realtime: true,
		Cameras: []string{"cam-1"}, Logger: logger, EdgeEtcdMembers: 3,
		Nodes: []localstack.NodeSpec{{Name: "node-1"}, {Name: "node-2"}},
	})
	outage := controlPlaneOutage{stack: stack, edge: schedulerClient(t, stack, "scheduler-edge"), length: edgeQuorumOutage, want: want}
	// Both members go at once (a graceful stop waits seconds for its
	// clients' streams), and come back at once (either restores the
	// quorum).
	both := func(f func(member int) error) {
		errs := make(chan error, 2)
		for _, m := range []int{1, 2} {
			go func() { errs <- f(m) }()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	}
	outage.run(ctx, t, "two of the edge etcd's three members stopped", func() {
		both(stack.StopEdgeEtcdMember)
	}, func() {
		both(func(m int) error { return stack.StartEdgeEtcdMember(ctx, m) })
	})
}

// outageVideo writes a 25 fps video with motion in every frame: 40 s
// before an outage of length d, the outage, and 40 s after. It returns the
// path and the number of motion frames the camera will send.
func outageVideo(t *testing.T, dir string, d time.Duration) (string, int) {
	t.Helper()
	video, spec := faultVideo(t, dir, int((d+80*time.Second)/(40*time.Millisecond)))
	return video, spec.MotionFrames()
}

// controlPlaneOutage takes a running stack's edge control plane away for
// length while a camera's frames flow and checks that the data plane went
// on in degraded mode, that nothing moved and that the store holds the
// want frames the camera sent, exactly once.
type controlPlaneOutage struct {
	stack  *localstack.Stack
	edge   cefiotv1.SchedulerServiceClient
	length time.Duration
	want   int
}

func (o controlPlaneOutage) run(ctx context.Context, t *testing.T, what string, cut, restore func()) {
	t.Helper()
	stack := o.stack
	var before map[string]*cefiotv1.Claim
	awaitState(ctx, t, "capture, enrich and bridge running", func() (bool, string) {
		as, cs, err := runningClaims(ctx, o.edge)
		before = cs
		return err == nil && len(as) == 3 && len(cs) == 3, describeRunning(as, cs)
	})
	awaitStored(ctx, t, stack, 50)

	down := time.Now()
	cut()
	t.Logf("%s in %.1fs", what, time.Since(down).Seconds())
	for _, process := range o.processes(before) {
		awaitState(ctx, t, process+" degraded (fenced, still running)", func() (bool, string) {
			m := scrapeMetrics(ctx, t, stack.OperatorHTTP(), stack.HTTP(process))
			return m["cefiot_worker_degraded_workloads"] >= 1, fmt.Sprintf("fence pauses %v", m["cefiot_worker_fence_pauses_total"])
		})
	}
	degradedAt := awaitStored(ctx, t, stack, 0)
	t.Logf("every stage degraded %.1fs after the outage began; %d frames stored", time.Since(down).Seconds(), degradedAt)
	// The outage itself is the point: a fixed duration, not a wait for an
	// event.
	time.Sleep(time.Until(down.Add(o.length)))
	during := awaitStored(ctx, t, stack, 0) - degradedAt
	restore()
	back := time.Now()
	// 25 frames/s are sent; at least half of the outage's worth must have
	// been stored while the control plane was away.
	if min := int64(o.length.Seconds() * 25 / 2); during < min {
		t.Fatalf("%d frames stored during the %v outage, want at least %d: the data plane stopped with the control plane", during, o.length, min)
	}
	t.Logf("%d frames stored during the %v outage", during, o.length)

	if _, err := stack.WaitSink(ctx, func(s localstack.SinkStatus) bool { return s.Stored >= int64(o.want) }, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("every frame stored %.1fs after the control plane came back", time.Since(back).Seconds())
	checkStoreExactlyOnce(ctx, t, stack, o.want)
	checkPipelineExactlyOnce(ctx, t, stack.Edge.Conn(), stack.Cloud.Conn(), "edge")

	// Nothing moved: the same owners under the same epochs, no lease lost,
	// and nothing degraded any more.
	var as map[string]*cefiotv1.Assignment
	var cs map[string]*cefiotv1.Claim
	awaitState(ctx, t, "the scheduler answers again", func() (bool, string) {
		var err error
		as, cs, err = runningClaims(ctx, o.edge)
		return err == nil && len(cs) == 3, describeRunning(as, cs)
	})
	for name, c := range before {
		if now := cs[name]; now == nil || now.GetWorkerId() != c.GetWorkerId() || now.GetEpoch() != c.GetEpoch() {
			t.Errorf("%s moved: %s epoch %d before the outage, now %s", name, c.GetWorkerId(), c.GetEpoch(), describeRunning(as, cs))
		}
	}
	for _, process := range o.processes(before) {
		m := scrapeMetrics(ctx, t, stack.OperatorHTTP(), stack.HTTP(process))
		if m["cefiot_worker_lease_losses_total"] != 0 || m["cefiot_worker_fence_overruns_total"] != 0 || m["cefiot_worker_degraded_workloads"] != 0 {
			t.Errorf("%s: %v lease losses, %v fence overruns, %v degraded workloads; want none", process,
				m["cefiot_worker_lease_losses_total"], m["cefiot_worker_fence_overruns_total"], m["cefiot_worker_degraded_workloads"])
		}
	}
}

// processes names the worker processes that run the claimed workloads:
// "<kind>@<node>" on a stack of simulated nodes, "<kind>" on one node.
func (o controlPlaneOutage) processes(claims map[string]*cefiotv1.Claim) []string {
	seen := map[string]bool{}
	var out []string
	for name, c := range claims {
		kind, _, _ := strings.Cut(name, ":")
		process := kind
		if node := c.GetNode(); node != "local" {
			process = kind + "@" + node
		}
		if !seen[process] {
			seen[process] = true
			out = append(out, process)
		}
	}
	sort.Strings(out)
	return out
}
