package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
	"github.com/cefiot/cefiot/libs/harness/localstack"
	"github.com/cefiot/cefiot/libs/logging"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// edgeControlPlaneOutage is how long TestEdgeControlPlaneDownFramesFlow
// keeps the edge site's etcd and scheduler away.
const edgeControlPlaneOutage = 2 * time.Minute

// TestEdgeControlPlaneDownFramesFlow: control plane down is not data plane
// down. The edge site's whole control plane (its scheduler and the etcd it
// embeds) is SIGKILLed for two minutes while a camera's frames flow: no
// worker can renew its lease, no one can place anything, as when etcd
// loses its quorum. Capture (of a file, whose frame ids come from its
// content), enrich and bridge, all safe to overlap, keep running in
// degraded mode, so frames keep arriving in the cloud during the outage.
// When the control plane returns (etcd extends every lease when it elects
// a leader), nothing moves: the same owners under the same epochs, no
// lease lost. The store holds every frame the camera sent, exactly once.
func TestEdgeControlPlaneDownFramesFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("two-minute fault test on real Kafka; skipped with -short")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// 25 fps, motion in every frame: 40 s before the outage, the outage,
	// and 40 s after.
	frames := int((edgeControlPlaneOutage + 80*time.Second) / (40 * time.Millisecond))
	video, spec := faultVideo(t, dir, frames)
	want := spec.MotionFrames()
	logger, _ := logging.New(os.Stderr, "warn", "text")
	stack := startStack(ctx, t, localstack.Config{
		BinDir: binDir(t), RunDir: filepath.Join(dir, "run"), KafkaLibs: kafkatest.Libs(t), Video: video, Realtime: true,
		Cameras: []string{"cam-1"}, Logger: logger,
	})
	exits := watchExits(ctx, t, stack)
	edge := schedulerClient(t, stack, "scheduler-edge")

	var before map[string]*cefiotv1.Claim
	awaitState(ctx, t, "capture, enrich and bridge running", func() (bool, string) {
		as, cs, err := runningClaims(ctx, edge)
		before = cs
		return err == nil && len(as) == 3 && len(cs) == 3, describeRunning(as, cs)
	})
	awaitStored(ctx, t, stack, 50)

	down := time.Now()
	exits.expect("scheduler-edge")
	stack.KillService("scheduler-edge") // and its etcd: no member left
	for _, service := range []string{"capture", "enrich", "bridge"} {
		awaitState(ctx, t, service+" degraded (fenced, still running)", func() (bool, string) {
			m := scrapeMetrics(ctx, t, stack.OperatorHTTP(), stack.HTTP(service))
			return m["cefiot_worker_degraded_workloads"] >= 1, fmt.Sprintf("fence pauses %v", m["cefiot_worker_fence_pauses_total"])
		})
	}
	degradedAt := awaitStored(ctx, t, stack, 0)
	t.Logf("every stage degraded %.1fs after the control plane died; %d frames stored", time.Since(down).Seconds(), degradedAt)
	// The outage itself is the point: a fixed duration, not a wait for an
	// event.
	time.Sleep(time.Until(down.Add(edgeControlPlaneOutage)))
	during := awaitStored(ctx, t, stack, 0) - degradedAt
	if err := stack.StartService("scheduler-edge"); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	// 25 frames/s are sent; at least half of the outage's worth must have
	// been stored while the control plane was away.
	if min := int64(edgeControlPlaneOutage.Seconds() * 25 / 2); during < min {
		t.Fatalf("%d frames stored during the %v outage, want at least %d: the data plane stopped with the control plane", during, edgeControlPlaneOutage, min)
	}
	t.Logf("%d frames stored while the edge control plane was away for %v", during, edgeControlPlaneOutage)

	if _, err := stack.WaitSink(ctx, func(s localstack.SinkStatus) bool { return s.Stored >= int64(want) }, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("every frame stored %.1fs after the control plane came back", time.Since(back).Seconds())
	checkStoreExactlyOnce(ctx, t, stack, want)
	checkPipelineExactlyOnce(ctx, t, stack.Edge.Conn(), stack.Cloud.Conn(), "edge")

	// Nothing moved: the same owners under the same epochs, no lease lost,
	// and nothing degraded any more.
	var as map[string]*cefiotv1.Assignment
	var cs map[string]*cefiotv1.Claim
	awaitState(ctx, t, "the scheduler answers again", func() (bool, string) {
		var err error
		as, cs, err = runningClaims(ctx, edge)
		return err == nil && len(cs) == 3, describeRunning(as, cs)
	})
	for name, c := range before {
		if now := cs[name]; now == nil || now.GetWorkerId() != c.GetWorkerId() || now.GetEpoch() != c.GetEpoch() {
			t.Errorf("%s moved: %s epoch %d before the outage, now %s", name, c.GetWorkerId(), c.GetEpoch(), describeRunning(as, cs))
		}
	}
	for _, service := range []string{"capture", "enrich", "bridge"} {
		m := scrapeMetrics(ctx, t, stack.OperatorHTTP(), stack.HTTP(service))
		if m["cefiot_worker_lease_losses_total"] != 0 || m["cefiot_worker_fence_overruns_total"] != 0 || m["cefiot_worker_degraded_workloads"] != 0 {
			t.Errorf("%s: %v lease losses, %v fence overruns, %v degraded workloads; want none", service,
				m["cefiot_worker_lease_losses_total"], m["cefiot_worker_fence_overruns_total"], m["cefiot_worker_degraded_workloads"])
		}
	}
}
