package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
	"github.com/cefiot/cefiot/libs/harness/localstack"
	"github.com/cefiot/cefiot/libs/harness/mjpegtest"
	"github.com/cefiot/cefiot/libs/harness/rtsptest"
	"github.com/cefiot/cefiot/libs/harness/videogen"
	"github.com/cefiot/cefiot/libs/logging"
	"github.com/cefiot/cefiot/libs/pipeline"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// liveOverlap is how long two captures of the live camera overlap in
// TestLiveCameraOverlapAndFailover.
const liveOverlap = 20 * time.Second

// liveCamera is a live test camera whose stored pictures can be told
// apart: which of the pictures it sent a stored frame is.
type liveCamera struct {
	url string
	// reportWait is how long a new connection may wait for the camera's
	// first sender report, reading past its pictures.
	reportWait time.Duration
	// number is the camera's number of the picture a stored frame shows;
	// false when the frame does not tell.
	number func(id string, jpeg []byte) (int, bool, error)
}

// TestLiveCameraOverlapAndFailover runs a live camera, motion in each
// picture, on a site of two capture nodes and one node for enrich and
// bridge; twice: an H.264 RTSP camera whose sender reports give its
// clock (frame ids are the camera's time of each picture, which tells the
// picture it sent then), and an HTTP MJPEG camera (no camera clock: frame
// ids are fingerprints of the pictures, each numbered in its pixels).
//
// Overlap: the node capturing the camera is cut from the site's etcd; the
// capture moves to the other node while the cut-off one goes on in
// degraded mode, so both capture the camera at once. They make the same
// ids: the sink counts the second copies as duplicates, and no picture is
// stored twice.
//
// Failover: the node capturing the camera is then SIGKILLed; the capture
// moves back. The pictures missed are counted from the numbers of the
// stored pictures and bounded by the failover time; outside that one gap,
// every picture between the first and the last stored was stored.
func TestLiveCameraOverlapAndFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test on real Kafka; skipped with -short")
	}
	const fps = 25
	spec := videogen.Spec{Width: 320, Height: 240, Frames: 400, FPS: fps, MotionStart: 1, MotionEnd: 399}
	t.Run("rtsp-h264", func(t *testing.T) {
		cam, err := rtsptest.New(spec, rtsptest.Options{Codec: rtsptest.CodecH264})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cam.Stop)
		liveOverlapAndFailover(t, fps, liveCamera{url: cam.URL(), reportWait: time.Second, number: func(id string, _ []byte) (int, bool, error) {
			ms, ok := strings.CutPrefix(id, "cam-1_at_")
			if !ok {
				return 0, false, nil
			}
			n, err := strconv.ParseInt(ms, 10, 64)
			if err != nil {
				return 0, false, fmt.Errorf("frame id %q", id)
			}
			i, ok := cam.SentAt(time.UnixMilli(n))
			if !ok {
				near, off := cam.NearestSent(time.UnixMilli(n))
				return 0, false, fmt.Errorf("the camera sent no picture at that time (its picture %d, %v from it, was the nearest)", near, off)
			}
			return i, true, nil
		}})
	})
	t.Run("http-mjpeg", func(t *testing.T) {
		cam, err := mjpegtest.NewLive(spec)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cam.Close)
		liveOverlapAndFailover(t, fps, liveCamera{url: cam.URL(), number: func(_ string, jpeg []byte) (int, bool, error) {
			n, err := mjpegtest.PictureNumber(jpeg)
			return n, err == nil, err
		}})
	})
}

func liveOverlapAndFailover(t *testing.T, fps int, cam liveCamera) {
	interval := time.Second / time.Duration(fps)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	logger, _ := logging.New(os.Stderr, "warn", "text")
	captureOnly := []string{pipeline.KindCapture}
	stack := startStack(ctx, t, localstack.Config{
		BinDir: binDir(t), RunDir: filepath.Join(dir, "run"), KafkaLibs: kafkatest.Libs(t), Video: cam.url,
		Cameras: []string{"cam-1"}, Logger: logger,
		Nodes: []localstack.NodeSpec{
			{Name: "node-1", Services: captureOnly, ProxyEtcd: true},
			{Name: "node-2", Services: captureOnly, ProxyEtcd: true},
			{Name: "node-3", Services: []string{pipeline.KindEnrich, pipeline.KindBridge}},
		},
	})
	exits := watchExits(ctx, t, stack)
	edge := schedulerClient(t, stack, "scheduler-edge")
	const workload = "capture:cam-1"
	captureOn := func(node string) *cefiotv1.Claim {
		var claim *cefiotv1.Claim
		awaitState(ctx, t, workload+" running on "+node, func() (bool, string) {
			as, cs, err := runningClaims(ctx, edge)
			claim = cs[workload]
			return err == nil && claim != nil && claim.GetNode() == node, describeRunning(as, cs)
		})
		return claim
	}
	var placed *cefiotv1.Claim
	awaitState(ctx, t, workload+" running", func() (bool, string) {
		as, cs, err := runningClaims(ctx, edge)
		placed = cs[workload]
		return err == nil && placed != nil, describeRunning(as, cs)
	})
	if placed.GetNode() != "node-1" {
		// node-1's capture may not have registered yet: the scheduler refuses
		// the move with FailedPrecondition until it has.
		awaitState(ctx, t, workload+" moved to node-1", func() (bool, string) {
			_, err := edge.MoveWorkload(ctx, &cefiotv1.MoveWorkloadRequest{Workload: workload, Node: "node-1"})
			if err != nil && status.Code(err) != codes.FailedPrecondition {
				t.Fatal(err)
			}
			return err == nil, fmt.Sprint(err)
		})
	}
	first := captureOn("node-1")
	awaitStored(ctx, t, stack, 50)

	// Overlap: node-1 cut off, node-2 takes the camera, both capture.
	if err := stack.PartitionNode("node-1"); err != nil {
		t.Fatal(err)
	}
	second := captureOn("node-2")
	if second.GetEpoch() <= first.GetEpoch() {
		t.Fatalf("node-2's epoch %d is not newer than node-1's %d", second.GetEpoch(), first.GetEpoch())
	}
	m := scrapeMetrics(ctx, t, stack.OperatorHTTP(), stack.HTTP("capture@node-1"))
	if m["cefiot_worker_degraded_workloads"] < 1 {
		t.Fatalf("node-1's capture is not running in degraded mode: %v degraded workloads", m["cefiot_worker_degraded_workloads"])
	}
	dupsBefore := awaitSink(ctx, t, stack).Duplicates
	overlapStart := time.Now()
	time.Sleep(liveOverlap) // the overlap itself is the point
	if err := stack.HealNode("node-1"); err != nil {
		t.Fatal(err)
	}
	// node-1 learns its lease is gone and stops; its last frames drain.
	awaitState(ctx, t, "node-1's capture stopped", func() (bool, string) {
		m := scrapeMetrics(ctx, t, stack.OperatorHTTP(), stack.HTTP("capture@node-1"))
		return m["cefiot_worker_degraded_workloads"] == 0 && m["cefiot_worker_lease_losses_total"] >= 1,
			fmt.Sprintf("degraded %v, lease losses %v", m["cefiot_worker_degraded_workloads"], m["cefiot_worker_lease_losses_total"])
	})
	overlapDups := awaitSink(ctx, t, stack).Duplicates - dupsBefore
	overlapFrames := int64(time.Since(overlapStart) / interval)
	t.Logf("two captures for %v: the sink skipped %d second copies (of about %d pictures)", time.Since(overlapStart).Round(time.Second), overlapDups, overlapFrames)
	if overlapDups < overlapFrames/2 {
		t.Fatalf("the sink skipped %d second copies during a %v overlap of two captures: their frame ids differ", overlapDups, liveOverlap)
	}

	// Failover: SIGKILL node-2, the capture moves to node-1.
	awaitStored(ctx, t, stack, awaitSink(ctx, t, stack).Stored+50)
	exits.expect("capture@node-2")
	killed := time.Now()
	stack.KillNode("node-2")
	captureOn("node-1")
	moved := time.Since(killed)
	awaitStored(ctx, t, stack, awaitSink(ctx, t, stack).Stored+100)
	// Frames of one camera reach the store in capture order (one
	// partition): 50 more stored after cut, everything captured before
	// it is in the store.
	cut := time.Now()
	awaitStored(ctx, t, stack, awaitSink(ctx, t, stack).Stored+50)

	// Which pictures were stored before cut: each stored JPEG carries
	// the camera's picture number.
	numbers, untold := storedPictures(ctx, t, stack, cut, cam.number)
	if len(numbers) == 0 {
		t.Fatal("nothing stored")
	}
	if untold > 0 {
		t.Errorf("%d frames stored whose ids do not tell their picture", untold)
	}
	seen := map[int]string{}
	for id, n := range numbers {
		if other, ok := seen[n]; ok {
			t.Errorf("picture %d stored twice: frames %s and %s", n, other, id)
		}
		seen[n] = id
	}
	pictures := make([]int, 0, len(seen))
	for n := range seen {
		pictures = append(pictures, n)
	}
	sort.Ints(pictures)
	// The largest run of missing pictures is the failover's; any other
	// picture missing between the first and the last stored is a loss.
	var failoverMissed, otherMissed int
	for i := 1; i < len(pictures); i++ {
		missed := pictures[i] - pictures[i-1] - 1
		switch {
		case missed > failoverMissed:
			otherMissed += failoverMissed
			failoverMissed = missed
		default:
			otherMissed += missed
		}
	}
	t.Logf("%d pictures stored (%d to %d); failover: capture ran again on node-1 %.2fs after node-2 was SIGKILLed, %d pictures missed (%.2fs at %d fps)",
		len(pictures), pictures[0], pictures[len(pictures)-1], moved.Seconds(), failoverMissed, float64(failoverMissed)/float64(fps), fps)
	if bound := int((moved + 2*time.Second + cam.reportWait) / interval); failoverMissed > bound {
		t.Errorf("%d pictures missed at failover, more than the %v the capture took to move plus 2 s to connect and %v to wait for the camera's clock (%d)", failoverMissed, moved.Round(time.Millisecond), cam.reportWait, bound)
	}
	if otherMissed > 0 {
		t.Errorf("%d pictures missed outside the failover", otherMissed)
	}
}

// storedPictures returns the camera's number of the picture of every
// frame stored with a capture time before end, by frame id, and how many
// stored frames do not tell their picture.
func storedPictures(ctx context.Context, t *testing.T, stack *localstack.Stack, end time.Time, number func(id string, jpeg []byte) (int, bool, error)) (map[string]int, int) {
	t.Helper()
	conn, err := grpc.NewClient(stack.SinkGRPC(), stack.Operator().DialOption())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sink := cefiotv1.NewSinkServiceClient(conn)
	out, untold := map[string]int{}, 0
	for token := ""; ; {
		resp, err := sink.ListFrames(ctx, &cefiotv1.ListFramesRequest{EndTime: timestamppb.New(end), PageSize: 500, PageToken: token})
		if err != nil {
			t.Fatalf("ListFrames: %v", err)
		}
		for _, f := range resp.GetFrames() {
			got, err := sink.GetFrame(ctx, &cefiotv1.GetFrameRequest{FrameId: f.GetFrameId()})
			if err != nil {
				t.Fatalf("GetFrame %s: %v", f.GetFrameId(), err)
			}
			n, ok, err := number(f.GetFrameId(), got.GetJpeg())
			switch {
			case err != nil:
				t.Fatalf("frame %s: %v", f.GetFrameId(), err)
			case ok:
				out[f.GetFrameId()] = n
			default:
				untold++
			}
		}
		if token = resp.GetNextPageToken(); token == "" {
			return out, untold
		}
	}
}

func awaitSink(ctx context.Context, t *testing.T, stack *localstack.Stack) localstack.SinkStatus {
	t.Helper()
	st, err := stack.WaitSink(ctx, func(localstack.SinkStatus) bool { return true }, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
