package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
	"github.com/cefiot/cefiot/libs/harness/localstack"
	"github.com/cefiot/cefiot/libs/logging"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// TestKilledWorkerProcessComesBack kills the process running a camera's
// capture from outside the stack (kill -9, as someone trying failover in
// `make run EDGE_NODES=3` would) while frames flow. It must look like a node
// failure, not the end of the stack: the exit is reported, the process is
// started again as a node's supervisor would, the capture runs again under
// a new epoch, frames keep arriving, and the store ends with every motion
// frame exactly once.
func TestKilledWorkerProcessComesBack(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test on real Kafka; skipped with -short")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	video, spec := faultVideo(t, dir, 750)
	var nodes []localstack.NodeSpec
	for i := 1; i <= 3; i++ { // as cefiot-local -edge-nodes 3
		nodes = append(nodes, localstack.NodeSpec{Name: fmt.Sprintf("node-%d", i)})
	}
	logger, _ := logging.New(os.Stderr, "warn", "text")
	stack := startStack(ctx, t, localstack.Config{
		BinDir: binDir(t), RunDir: filepath.Join(dir, "run"), KafkaLibs: kafkatest.Libs(t), Video: video, Realtime: true,
		Nodes: nodes, Logger: logger, // the local default's lease TTL
	})
	exits := watchExits(ctx, t, stack)
	edge := schedulerClient(t, stack, "scheduler-edge")
	awaitState(ctx, t, "every workload running", func() (bool, string) {
		as, cs, err := runningClaims(ctx, edge)
		return err == nil && len(as) == 3 && len(cs) == 3, describeRunning(as, cs)
	})
	awaitStored(ctx, t, stack, 20)

	as, cs, err := runningClaims(ctx, edge)
	if err != nil {
		t.Fatal(err)
	}
	const workload = "capture:cam-1"
	node, oldEpoch := cs[workload].GetNode(), as[workload].GetEpoch()
	victim, workerID := "capture@"+node, "capture-"+node
	pid := stack.PID(victim)
	if pid == 0 {
		t.Fatalf("no process %s", victim)
	}
	exited := exits.expect(victim)
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case ex := <-exited:
		t.Logf("exit reported: %v", ex.Err)
	case <-ctx.Done():
		t.Fatal("the kill was not reported")
	}
	var owner *cefiotv1.Claim
	awaitState(ctx, t, workload+" running again under a new epoch", func() (bool, string) {
		as, cs, err := runningClaims(ctx, edge)
		owner = cs[workload]
		return err == nil && owner != nil && owner.GetEpoch() > oldEpoch, describeRunning(as, cs)
	})
	t.Logf("%s running again on %s %.1fs after the kill", workload, owner.GetNode(), time.Since(killed).Seconds())
	awaitState(ctx, t, "the killed process back and registered", func() (bool, string) {
		if p := stack.PID(victim); p == 0 || p == pid {
			return false, "not started again"
		}
		ws, err := edge.ListWorkers(ctx, &cefiotv1.ListWorkersRequest{})
		if err != nil {
			return false, err.Error()
		}
		for _, w := range ws.GetWorkers() {
			if w.GetId() == workerID && w.GetRegisteredTime().AsTime().After(killed) {
				return true, ""
			}
		}
		return false, workerID + " not registered again"
	})
	t.Logf("%s registered again %.1fs after the kill", workerID, time.Since(killed).Seconds())
	before := awaitStored(ctx, t, stack, 0)
	awaitStored(ctx, t, stack, before+20) // frames keep flowing

	want := spec.MotionFrames()
	if _, err := stack.WaitSink(ctx, func(s localstack.SinkStatus) bool { return s.Stored >= int64(want) }, nil); err != nil {
		t.Fatal(err)
	}
	checkStoreExactlyOnce(ctx, t, stack, want)
	checkPipelineExactlyOnce(ctx, t, stack.Edge.Conn(), stack.Cloud.Conn(), "edge")
}
