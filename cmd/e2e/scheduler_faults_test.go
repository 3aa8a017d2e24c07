package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
	"github.com/cefiot/cefiot/libs/harness/localstack"
	"github.com/cefiot/cefiot/libs/harness/videogen"
	"github.com/cefiot/cefiot/libs/logging"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// faultVideo is a small video with motion in every frame after the first,
// played in real time, so frames keep flowing while the test breaks things.
func faultVideo(t *testing.T, dir string, frames int) (string, videogen.Spec) {
	t.Helper()
	spec := videogen.Spec{Width: 320, Height: 240, Frames: frames, FPS: 25, MotionStart: 1, MotionEnd: frames - 1}
	path := filepath.Join(dir, "faults.avi")
	if err := videogen.Write(path, spec); err != nil {
		t.Fatal(err)
	}
	return path, spec
}

// fiveNodeStack is the edge of TestSchedulerFaults: five nodes (each with
// enrich and bridge workers, the first three also with capture), three
// scheduler replicas over the edge etcd, two cameras; node-1's etcd traffic
// goes through a proxy the test can cut.
func fiveNodeStack(ctx context.Context, t *testing.T, dir, video string) *localstack.Stack {
	t.Helper()
	var nodes []localstack.NodeSpec
	for i := 1; i <= 5; i++ {
		n := localstack.NodeSpec{Name: fmt.Sprintf("node-%d", i), Labels: "zone=edge", Services: []string{"enrich", "bridge"}, ProxyEtcd: i == 1}
		if i <= 3 {
			n.Services = append([]string{"capture"}, n.Services...)
		}
		nodes = append(nodes, n)
	}
	logger, _ := logging.New(os.Stderr, "warn", "text")
	stack := startStack(ctx, t, localstack.Config{
		BinDir: binDir(t), RunDir: filepath.Join(dir, "run"), KafkaLibs: kafkatest.Libs(t), Video: video, Realtime: true,
		Cameras: []string{"cam-1", "cam-2"}, Nodes: nodes, EdgeSchedulers: 3, LeaseTTL: 2 * time.Second, Logger: logger,
	})
	watchExits(ctx, t, stack)
	return stack
}

// TestSchedulerFaults breaks a five-node edge while frames flow: first it
// partitions a node from etcd past its lease and heals it, then it SIGKILLs
// every process of two nodes and the scheduler leader. Every workload comes
// back on live nodes, no two owners ever overlap, the store ends up with
// every frame exactly once, and every hop stays exactly once.
func TestSchedulerFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test on real Kafka; skipped with -short")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	video, spec := faultVideo(t, dir, 450)
	stack := fiveNodeStack(ctx, t, dir, video)
	edge := schedulerClient(t, stack, "scheduler-edge-2")
	want := 2 * spec.MotionFrames()

	awaitState(ctx, t, "every workload running", func() (bool, string) {
		as, cs, err := runningClaims(ctx, edge)
		return err == nil && len(as) == 4 && len(cs) == 4, describeRunning(as, cs)
	})
	// Enrich on the node the test can partition, once its worker there has
	// registered (a worker starts after it has loaded its certificates and
	// reached etcd, which may be after the workloads are placed elsewhere).
	awaitState(ctx, t, "enrich-node-1 registered", func() (bool, string) {
		ws, err := edge.ListWorkers(ctx, &cefiotv1.ListWorkersRequest{})
		if err != nil {
			return false, err.Error()
		}
		var ids []string
		for _, w := range ws.GetWorkers() {
			if w.GetId() == "enrich-node-1" {
				return true, ""
			}
			ids = append(ids, w.GetId())
		}
		return false, strings.Join(ids, ",")
	})
	if _, err := edge.MoveWorkload(ctx, &cefiotv1.MoveWorkloadRequest{Workload: "enrich", Node: "node-1"}); err != nil {
		t.Fatal(err)
	}
	awaitState(ctx, t, "enrich running on node-1", func() (bool, string) {
		as, cs, err := runningClaims(ctx, edge)
		return err == nil && cs["enrich"] != nil && cs["enrich"].GetNode() == "node-1", describeRunning(as, cs)
	})
	awaitStored(ctx, t, stack, 20)

	t.Run("partition", func(t *testing.T) { partitionNode(ctx, t, stack, edge) })
	t.Run("kill two nodes and the leader", func(t *testing.T) { killNodesAndLeader(ctx, t, stack) })

	// Everything the cameras saw arrives, exactly once.
	if _, err := stack.WaitSink(ctx, func(s localstack.SinkStatus) bool { return s.Stored >= int64(want) }, nil); err != nil {
		t.Fatal(err)
	}
	checkStoreExactlyOnce(ctx, t, stack, want)
	checkPipelineExactlyOnce(ctx, t, stack.Edge.Conn(), stack.Cloud.Conn(), "edge")
}

func awaitStored(ctx context.Context, t *testing.T, stack *localstack.Stack, n int64) int64 {
	t.Helper()
	stored, err := stack.WaitStoredFrames(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	return stored
}

// partitionNode cuts node-1 (which runs enrich) from the edge etcd past its
// lease, then heals it: node-1's enrich writes nothing after the
// replacement's first record, and nothing after the heal.
func partitionNode(ctx context.Context, t *testing.T, stack *localstack.Stack, edge cefiotv1.SchedulerServiceClient) {
	as, _, err := runningClaims(ctx, edge)
	if err != nil {
		t.Fatal(err)
	}
	oldEpoch := as["enrich"].GetEpoch()
	cut := time.Now()
	if err := stack.PartitionNode("node-1"); err != nil {
		t.Fatal(err)
	}
	var newOwner *cefiotv1.Claim
	awaitState(ctx, t, "enrich running elsewhere", func() (bool, string) {
		as, cs, err := runningClaims(ctx, edge)
		if err == nil && cs["enrich"] != nil && cs["enrich"].GetNode() != "node-1" && cs["enrich"].GetEpoch() > oldEpoch {
			newOwner = cs["enrich"]
			return true, ""
		}
		return false, describeRunning(as, cs)
	})
	t.Logf("enrich running on %s %.1fs after the cut", newOwner.GetNode(), time.Since(cut).Seconds())
	// node-1 keeps enriching while it is cut off (enrich is overlap-safe)
	// until the new owner's transactional producer fences it in Kafka, so
	// the partition heals only once the new owner's records are committed.
	awaitState(ctx, t, "the new owner's records committed", func() (bool, string) {
		for _, r := range readCommitted(ctx, t, stack.Edge.Conn(), "frames.enriched", true) {
			if r.enriched != nil && r.enriched.GetEnrichNode() == newOwner.GetNode() && r.enriched.GetEnrichTime().AsTime().After(cut) {
				return true, ""
			}
		}
		return false, "none yet"
	})
	before := awaitStored(ctx, t, stack, 0)
	awaitStored(ctx, t, stack, before+20) // frames flow through the new owner
	if err := stack.HealNode("node-1"); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	awaitState(ctx, t, "node-1's enrich worker registered again", func() (bool, string) {
		ws, err := edge.ListWorkers(ctx, &cefiotv1.ListWorkersRequest{})
		if err != nil {
			return false, err.Error()
		}
		for _, w := range ws.GetWorkers() {
			if w.GetId() == "enrich-node-1" && w.GetRegisteredTime().AsTime().After(cut) {
				return true, ""
			}
		}
		return false, "not yet"
	})
	mid := awaitStored(ctx, t, stack, 0)
	awaitStored(ctx, t, stack, mid+20) // more frames after the heal

	// node-1 fenced itself (and did not overrun the fence).
	m := scrapeMetrics(ctx, t, stack.OperatorHTTP(), stack.HTTP("enrich@node-1"))
	if m["cefiot_worker_fence_pauses_total"] < 1 || m["cefiot_worker_fence_overruns_total"] != 0 || m["cefiot_worker_lease_losses_total"] < 1 {
		t.Fatalf("node-1 enrich metrics: fence pauses %v, overruns %v, lease losses %v", m["cefiot_worker_fence_pauses_total"], m["cefiot_worker_fence_overruns_total"], m["cefiot_worker_lease_losses_total"])
	}
	if n := m["cefiot_worker_fence_stop_seconds_count"]; n > 0 {
		t.Logf("node-1's workloads stopped %.0f ms (mean of %v fences) after its fence began; the margin is %v",
			1000*m["cefiot_worker_fence_stop_seconds_sum"]/n, n, stack.Config().LeaseTTL/3)
	}
	// In the committed output, node-1's last record was enriched before
	// the new owner's first, and in every partition nothing of node-1
	// follows the new owner.
	enriched := readCommitted(ctx, t, stack.Edge.Conn(), "frames.enriched", true)
	var lastOld, firstNew time.Time
	sawNew := map[int32]bool{}
	afterHeal := 0
	for _, r := range enriched {
		if r.enriched == nil {
			continue
		}
		at := r.enriched.GetEnrichTime().AsTime()
		switch r.enriched.GetEnrichNode() {
		case "node-1":
			if at.After(cut) && at.After(lastOld) {
				lastOld = at
			}
			if sawNew[r.partition] {
				t.Errorf("partition %d offset %d: node-1 wrote after the new owner", r.partition, r.offset)
			}
			if at.After(healed) {
				afterHeal++
			}
		case newOwner.GetNode():
			if at.After(cut) {
				sawNew[r.partition] = true
				if firstNew.IsZero() || at.Before(firstNew) {
					firstNew = at
				}
			}
		}
	}
	if afterHeal > 0 {
		t.Errorf("node-1 enriched %d records after the heal: it wrote under its old epoch", afterHeal)
	}
	if firstNew.IsZero() {
		t.Fatal("the new owner's records are missing")
	}
	if !lastOld.IsZero() && !lastOld.Before(firstNew) {
		t.Fatalf("overlap: node-1 enriched until %v, the new owner from %v", lastOld, firstNew)
	}
	gap := "node-1 wrote nothing after the cut"
	if !lastOld.IsZero() {
		gap = fmt.Sprintf("node-1's last record %.2fs after the cut", lastOld.Sub(cut).Seconds())
	}
	t.Logf("%s; the new owner's first %.2fs after the cut", gap, firstNew.Sub(cut).Seconds())
}

// killNodesAndLeader SIGKILLs every process of the nodes running enrich
// and bridge (two nodes) and the scheduler leader, while frames flow.
func killNodesAndLeader(ctx context.Context, t *testing.T, stack *localstack.Stack) {
	edge := schedulerClient(t, stack, "scheduler-edge")
	as, _, err := runningClaims(ctx, edge)
	if err != nil {
		t.Fatal(err)
	}
	victims := map[string]bool{as["enrich"].GetNode(): true, as["bridge"].GetNode(): true}
	for _, name := range []string{"capture:cam-1", "capture:cam-2"} {
		if len(victims) < 2 {
			victims[as[name].GetNode()] = true
		}
	}
	for i := 2; len(victims) < 2; i++ {
		victims[fmt.Sprintf("node-%d", i)] = true
	}
	leader, err := edge.GetLeader(ctx, &cefiotv1.GetLeaderRequest{})
	if err != nil {
		t.Fatal(err)
	}
	moved := map[string]int64{}
	for name, a := range as {
		if victims[a.GetNode()] {
			moved[name] = a.GetEpoch()
		}
	}
	var killed []string
	for n := range victims {
		killed = append(killed, n)
	}
	sort.Strings(killed)
	kill := time.Now()
	for _, n := range killed {
		stack.KillNode(n)
	}
	stack.KillService(leader.GetLeaderId())
	t.Logf("SIGKILLed nodes %v (workloads %v) and scheduler leader %s", killed, sortedKeys(moved), leader.GetLeaderId())

	survivor := "scheduler-edge-3"
	if leader.GetLeaderId() == survivor {
		survivor = "scheduler-edge-2"
	}
	edge = schedulerClient(t, stack, survivor)
	awaitState(ctx, t, "every workload back on a live node", func() (bool, string) {
		as, cs, err := runningClaims(ctx, edge)
		if err != nil {
			return false, err.Error()
		}
		for name := range as {
			c := cs[name]
			if c == nil || victims[c.GetNode()] || (moved[name] != 0 && c.GetEpoch() <= moved[name]) {
				return false, describeRunning(as, cs)
			}
		}
		return len(as) == 4, describeRunning(as, cs)
	})
	t.Logf("every workload running again on live nodes %.1fs after the kill", time.Since(kill).Seconds())
	l, err := edge.GetLeader(ctx, &cefiotv1.GetLeaderRequest{})
	if err != nil || l.GetLeaderId() == leader.GetLeaderId() || l.GetLeaderId() == "" {
		t.Fatalf("new leader %q (%v); the old one was %s", l.GetLeaderId(), err, leader.GetLeaderId())
	}
}

func sortedKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// metrics reads a service's /metrics (plain counters and gauges).
func scrapeMetrics(ctx context.Context, t *testing.T, client *http.Client, base string) map[string]float64 {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var name string
		var v float64
		if _, err := fmt.Sscanf(line, "%s %g", &name, &v); err == nil {
			out[name] = v
		}
	}
	return out
}
