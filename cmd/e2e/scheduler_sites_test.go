package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
	"github.com/cefiot/cefiot/libs/harness/localstack"
	"github.com/cefiot/cefiot/libs/logging"
	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/libs/sitemove"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// TestCrossSiteMovesAndEdgeAutonomy moves enrich from the edge to the cloud
// and back while frames flow (nothing lost, nothing enriched or stored
// twice, the bridge forwarding frames.raw only while enrich is away), then
// stops the whole cloud site while a new camera streams: the edge keeps
// capturing and enriching, and the cloud catches up when it returns.
func TestCrossSiteMovesAndEdgeAutonomy(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test on real Kafka; skipped with -short")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	video, spec := faultVideo(t, dir, 625)
	logger, _ := logging.New(os.Stderr, "warn", "text")
	stack := startStack(ctx, t, localstack.Config{
		BinDir: binDir(t), RunDir: filepath.Join(dir, "run"), KafkaLibs: kafkatest.Libs(t), Video: video, Realtime: true,
		CloudEnrich: true, LeaseTTL: 2 * time.Second, Logger: logger,
	})
	expectedExits := make(chan struct{})
	go func() {
		select {
		case err := <-stack.Exits():
			select {
			case <-expectedExits:
			default:
				t.Errorf("a service died: %v", err)
			}
		case <-ctx.Done():
		}
	}()
	home := sitemove.Site{Name: "edge", Client: schedulerClient(t, stack, "scheduler-edge")}
	cloud := sitemove.Site{Name: "cloud", Client: schedulerClient(t, stack, "scheduler-cloud")}
	perCamera := int64(spec.MotionFrames())

	awaitStored(ctx, t, stack, 40)
	res, err := sitemove.Move(ctx, home, cloud, "enrich", "cloud", func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("edge -> cloud handoff %s done", res.Handoff)
	bridgeForwards(ctx, t, home, "frames.raw", true)
	cloudEnriched := func() int {
		n := 0
		for _, r := range readCommitted(ctx, t, stack.Cloud.Conn(), "edge-edge.frames.enriched", true) {
			if r.enriched.GetEnrichNode() == "cloud" {
				n++
			}
		}
		return n
	}
	awaitState(ctx, t, "frames enriched in the cloud", func() (bool, string) { n := cloudEnriched(); return n >= 40, fmt.Sprint(n) })
	res, err = sitemove.Move(ctx, home, cloud, "enrich", "edge", func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cloud -> edge handoff %s done", res.Handoff)
	bridgeForwards(ctx, t, home, "frames.raw", false)
	st, err := stack.WaitSink(ctx, func(s localstack.SinkStatus) bool { return s.Stored >= perCamera }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Duplicates != 0 {
		t.Errorf("the sink skipped %d duplicates: a frame was enriched twice across the moves", st.Duplicates)
	}
	checkStoreExactlyOnce(ctx, t, stack, int(perCamera))
	checkMoveOrder(ctx, t, stack)
	if _, err := cloud.Client.GetWorkload(ctx, &cefiotv1.GetWorkloadRequest{Name: pipeline.RemoteWorkloadName("enrich", "edge")}); err == nil {
		t.Error("the cloud copy of enrich is still declared after the move back")
	}

	// Edge autonomy: the cloud site stops entirely, a second camera
	// streams, the edge captures and enriches everything on its own.
	close(expectedExits)
	outage := time.Now()
	for _, name := range []string{"sink", "enrich-cloud", "scheduler-cloud"} {
		stack.StopService(ctx, name)
	}
	broker := stack.Cloud.Nodes()[0].ID
	if err := stack.Cloud.StopBroker(ctx, broker); err != nil {
		t.Fatal(err)
	}
	enrichURL := stack.HTTP("enrich") + "/v1/enrich/status"
	before, err := stack.ReadCounters(ctx, enrichURL)
	if err != nil {
		t.Fatal(err)
	}
	cam2 := &cefiotv1.Workload{Name: "capture:cam-2", Kind: "capture", Params: map[string]string{"camera": "cam-2", "source": video, "realtime": "true"}}
	admin, err := stack.Identity(localstack.Admin) // defining a workload is an administrator's
	if err != nil {
		t.Fatal(err)
	}
	adminConn, err := grpc.NewClient(stack.SchedulerGRPC("scheduler-edge"), admin.DialOption())
	if err != nil {
		t.Fatal(err)
	}
	defer adminConn.Close()
	if _, err := cefiotv1.NewSchedulerServiceClient(adminConn).PutWorkload(ctx, &cefiotv1.PutWorkloadRequest{Workload: cam2}); err != nil {
		t.Fatal(err)
	}
	awaitState(ctx, t, "cam-2 captured and enriched at the edge with the cloud down", func() (bool, string) {
		c, err := stack.ReadCounters(ctx, enrichURL)
		return err == nil && c["records_out"]-before["records_out"] >= perCamera, fmt.Sprint(c, err)
	})
	t.Logf("edge enriched all %d frames of cam-2 in %.1fs with the cloud site stopped", perCamera, time.Since(outage).Seconds())
	if err := stack.Cloud.StartBroker(ctx, broker); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"scheduler-cloud", "sink", "enrich-cloud"} {
		if err := stack.StartService(name); err != nil {
			t.Fatal(err)
		}
	}
	back := time.Now()
	if _, err := stack.WaitSink(ctx, func(s localstack.SinkStatus) bool { return s.Stored >= perCamera }, nil); err != nil {
		t.Fatal(err) // the restarted sink counts from zero
	}
	t.Logf("the cloud stored the %d buffered frames %.1fs after it returned", perCamera, time.Since(back).Seconds())
	checkStoreExactlyOnce(ctx, t, stack, int(2*perCamera))
}

// bridgeForwards waits until the bridge's assignment does (or does not)
// carry topic in its placement params.
func bridgeForwards(ctx context.Context, t *testing.T, site sitemove.Site, topic string, want bool) {
	t.Helper()
	awaitState(ctx, t, fmt.Sprintf("bridge forwarding %s = %v", topic, want), func() (bool, string) {
		r, err := site.Client.GetWorkload(ctx, &cefiotv1.GetWorkloadRequest{Name: "bridge"})
		if err != nil {
			return false, err.Error()
		}
		topics := r.GetAssignment().GetParams()["topics"]
		has := false
		for _, tp := range splitComma(topics) {
			has = has || tp == topic
		}
		return has == want, "topics=" + topics
	})
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

// checkMoveOrder checks that, in capture order, frames were enriched at the
// edge, then in the cloud, then at the edge again (each side cuts the input
// at the same marker), and logs the handoff gaps: from the last frame
// enriched on one side to the next frame, enriched on the other. A negative
// gap means the new side was already enriching while the old one finished
// the frames before the marker.
func checkMoveOrder(ctx context.Context, t *testing.T, stack *localstack.Stack) {
	t.Helper()
	var all []*cefiotv1.EnrichedFrame
	for _, r := range readCommitted(ctx, t, stack.Cloud.Conn(), "edge-edge.frames.enriched", true) {
		if r.enriched != nil {
			all = append(all, r.enriched)
		}
	}
	// Capture order (one camera, one session: the order of frames.raw).
	sort.Slice(all, func(i, j int) bool { return all[i].GetFrame().GetSequence() < all[j].GetFrame().GetSequence() })
	var runs []string
	var switches []time.Duration
	for i, ef := range all {
		if i == 0 || ef.GetEnrichNode() != all[i-1].GetEnrichNode() {
			runs = append(runs, ef.GetEnrichNode())
			if i > 0 {
				switches = append(switches, ef.GetEnrichTime().AsTime().Sub(all[i-1].GetEnrichTime().AsTime()))
			}
		}
		if ef.GetSite() != "edge" {
			t.Fatalf("frame %s enriched with site %q, want the origin site edge", ef.GetFrame().GetFrameId(), ef.GetSite())
		}
	}
	if fmt.Sprint(runs) != "[local cloud local]" {
		t.Fatalf("enriched by %v in turn, want [local cloud local]", runs)
	}
	t.Logf("handoff gaps (last enriched on one side to the first on the other): edge->cloud %v, cloud->edge %v",
		switches[0].Round(time.Millisecond), switches[1].Round(time.Millisecond))
}
