package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
	"github.com/cefiot/cefiot/libs/harness/localstack"
	"github.com/cefiot/cefiot/libs/harness/smallfs"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// TestSinkFullDiskStopsAndResumes puts the cloud sink's store on a real
// 3 MiB filesystem while a camera's frames flow. When it is full, the sink
// stops storing (nothing is committed, nothing dead-lettered) and says so:
// cefiot_sink_disk_full 1, disk_full in its status, its gRPC health
// NOT_SERVING. Once the filesystem grows, it resumes by itself, and the
// store holds every frame the camera sent, exactly once.
func TestSinkFullDiskStopsAndResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test on real Kafka; skipped with -short")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	video, spec := faultVideo(t, dir, 500)
	want := spec.MotionFrames()
	runDir := filepath.Join(dir, "run")
	store := filepath.Join(runDir, "sink-store")
	smallfs.Mount(t, store, 3<<20)
	stack := startStack(ctx, t, localstack.Config{
		BinDir: binDir(t), RunDir: runDir, KafkaLibs: kafkatest.Libs(t), Video: video, Realtime: true, Cameras: []string{"cam-1"},
	})
	watchExits(ctx, t, stack)
	if stack.StoreDir() != store {
		t.Fatalf("the stack's store is %s, not the small filesystem %s", stack.StoreDir(), store)
	}
	conn, err := grpc.NewClient(stack.SinkGRPC(), stack.Operator().DialOption())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	health, sink := healthpb.NewHealthClient(conn), cefiotv1.NewSinkServiceClient(conn)

	awaitStored(ctx, t, stack, 1) // the stack is up and frames flow
	// The three say it together: near the limit a batch of small frames
	// may still fit between two that do not, so each is awaited, not
	// sampled once.
	awaitState(ctx, t, "the sink says its disk is full (metric, status and health)", func() (bool, string) {
		m := scrapeMetrics(ctx, t, stack.OperatorHTTP(), stack.SinkHTTP())
		st, serr := sink.GetStatus(ctx, &cefiotv1.GetStatusRequest{})
		h, herr := health.Check(ctx, &healthpb.HealthCheckRequest{Service: cefiotv1.SinkService_ServiceDesc.ServiceName})
		said := m["cefiot_sink_disk_full"] == 1 && serr == nil && st.GetStatus().GetCounters()["disk_full"] == 1 &&
			herr == nil && h.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING
		return said, fmt.Sprintf("stored %v, gauge %v, status %v (%v), health %v (%v)", m["cefiot_sink_frames_stored_total"],
			m["cefiot_sink_disk_full"], st.GetStatus().GetCounters(), serr, h.GetStatus(), herr)
	})
	full := awaitStored(ctx, t, stack, 0)
	if full >= int64(want) {
		t.Fatalf("all %d frames fitted before the disk was full: the filesystem is too large for the test", want)
	}
	m := scrapeMetrics(ctx, t, stack.OperatorHTTP(), stack.SinkHTTP())
	if m["cefiot_sink_bad_records_total"] != 0 {
		t.Errorf("%v records dead-lettered because of a full disk", m["cefiot_sink_bad_records_total"])
	}
	t.Logf("disk full after %d of %d frames", full, want)

	smallfs.Grow(t, store, 256<<20)
	grown := time.Now()
	if _, err := stack.WaitSink(ctx, func(s localstack.SinkStatus) bool { return s.Stored >= int64(want) }, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("every frame stored %.1fs after the disk had room again", time.Since(grown).Seconds())
	checkStoreExactlyOnce(ctx, t, stack, want)
	awaitState(ctx, t, "the sink says its disk has room", func() (bool, string) {
		m := scrapeMetrics(ctx, t, stack.OperatorHTTP(), stack.SinkHTTP())
		h, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: cefiotv1.SinkService_ServiceDesc.ServiceName})
		return m["cefiot_sink_disk_full"] == 0 && err == nil && h.GetStatus() == healthpb.HealthCheckResponse_SERVING, fmt.Sprint(h.GetStatus(), err)
	})
}
