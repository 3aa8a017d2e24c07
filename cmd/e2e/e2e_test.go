package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"google.golang.org/grpc"

	"github.com/cefiot/cefiot/libs/harness/kafkalocal"
	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
	"github.com/cefiot/cefiot/libs/harness/localstack"
	"github.com/cefiot/cefiot/libs/harness/videogen"
	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/logging"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// binDir returns the built service binaries and programs: CEFIOT_BIN_DIR
// (make test sets it) or a fresh build of all of them into a temporary
// directory.
func binDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("CEFIOT_BIN_DIR"); d != "" {
		return d
	}
	wd, _ := os.Getwd()
	root, err := kafkalocal.FindRepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	args := []string{"build", "-o", dir + "/"}
	for _, s := range []string{"capture", "enrich", "bridge", "sink", "scheduler"} {
		args = append(args, "./services/"+s)
	}
	// Every program under cmd/, as make build builds them.
	mains, _ := filepath.Glob(filepath.Join(root, "cmd", "*", "main.go"))
	for _, m := range mains {
		args = append(args, "./cmd/"+filepath.Base(filepath.Dir(m)))
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build services: %v\n%s", err, out)
	}
	return dir
}

func listAll(ctx context.Context, t *testing.T, c cefiotv1.SinkServiceClient) []*cefiotv1.StoredFrame {
	t.Helper()
	var out []*cefiotv1.StoredFrame
	token := ""
	for {
		resp, err := c.ListFrames(ctx, &cefiotv1.ListFramesRequest{PageSize: 30, PageToken: token})
		if err != nil {
			t.Fatalf("ListFrames: %v", err)
		}
		out = append(out, resp.GetFrames()...)
		if token = resp.GetNextPageToken(); token == "" {
			return out
		}
	}
}

// TestVideoToStore carries a generated video with motion in frames 50..149
// only through capture, enrich, bridge and sink across two real Kafka
// clusters, then restarts the whole pipeline over the same video.
func TestVideoToStore(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test on real Kafka; skipped with -short")
	}
	libs := kafkatest.Libs(t)
	bins := binDir(t)
	dir := t.TempDir()
	spec := videogen.DefaultSpec()
	video := filepath.Join(dir, "sample.avi")
	if err := videogen.Write(video, spec); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	logger, _ := logging.New(os.Stderr, "warn", "text")
	stack := startStack(ctx, t, localstack.Config{
		BinDir: bins, RunDir: filepath.Join(dir, "run"), KafkaLibs: libs, Video: video, Logger: logger,
	})
	failOnExit(ctx, t, stack, cancel)

	want := spec.MotionFrames()
	start := time.Now()
	if _, err := stack.WaitSink(ctx, func(s localstack.SinkStatus) bool {
		return s.Stored >= int64(want)
	}, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d frames stored %.1fs after the stack was up", want, time.Since(start).Seconds())
	// Capture has published everything it will: the video is finite.
	waitCaptureDone(ctx, t, stack, int64(want))

	conn, err := grpc.NewClient(stack.SinkGRPC(), stack.Operator().DialOption())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sink := cefiotv1.NewSinkServiceClient(conn)
	frames := listAll(ctx, t, sink)
	checkFrames(ctx, t, stack, sink, frames, spec)
	checkEvents(ctx, t, stack, sink, want)

	// Garbage on a topic is counted and skipped, never fatal and never stored.
	produceGarbage(t, stack.Edge.Conn(), "frames.raw")
	produceGarbage(t, stack.Cloud.Conn(), "edge-edge.frames.enriched")
	waitCounter(ctx, t, stack, stack.HTTP("enrich")+"/v1/enrich/status", "bad_records", 1)
	waitCounter(ctx, t, stack, stack.SinkHTTP()+"/v1/sink/status", "bad_records", 1)
	checkDeadLetter(ctx, t, stack.Edge.Conn(), "frames.deadletter", "enrich")
	checkDeadLetter(ctx, t, stack.Cloud.Conn(), "sink.deadletter", "sink")
	checkAuditTrail(ctx, t, stack)
	checkCameraScope(ctx, t, stack, frames[0])

	// Restart the whole pipeline over the same video: the same frame ids come
	// again and the store keeps exactly one of each.
	for i := len(localstack.Services) - 1; i >= 0; i-- {
		stack.StopService(ctx, localstack.Services[i])
	}
	for _, name := range localstack.Services {
		if err := stack.StartService(name); err != nil {
			t.Fatal(err)
		}
	}
	st, err := stack.WaitSink(ctx, func(s localstack.SinkStatus) bool {
		return s.RecordsIn >= int64(want)
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Stored != 0 || st.Duplicates != int64(want) {
		t.Fatalf("after replay: stored %d new frames and skipped %d duplicates, want 0 and %d", st.Stored, st.Duplicates, want)
	}
	again := listAll(ctx, t, sink)
	if len(again) != want {
		t.Fatalf("after replay the store lists %d frames, want %d", len(again), want)
	}
	// Frames under frames/, their thumbnails under thumbs/.
	for _, top := range []string{"frames", "thumbs"} {
		files := 0
		_ = filepath.WalkDir(filepath.Join(stack.StoreDir(), top), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && filepath.Ext(p) == ".jpg" {
				files++
			}
			return nil
		})
		if files != want {
			t.Fatalf("store holds %d JPEG files under %s/, want %d", files, top, want)
		}
	}
}

func produceGarbage(t *testing.T, bootstrap kafkax.Conn, topic string) {
	t.Helper()
	p, err := kafka.NewProducer(bootstrap.Config(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dr := make(chan kafka.Event, 1)
	if err := p.Produce(&kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Key:            []byte("cam-1"), Value: []byte{0xff, 0xfe, 0x00, 0x13, 0x37},
	}, dr); err != nil {
		t.Fatal(err)
	}
	if m := (<-dr).(*kafka.Message); m.TopicPartition.Error != nil {
		t.Fatal(m.TopicPartition.Error)
	}
}

func waitCounter(ctx context.Context, t *testing.T, stack *localstack.Stack, url, name string, want int64) {
	t.Helper()
	for {
		c, err := stack.ReadCounters(ctx, url)
		if err == nil && c[name] >= want {
			if c[name] != want {
				t.Fatalf("%s %s = %d, want %d", url, name, c[name], want)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never reached %s=%d: %v %v", url, name, want, c, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func waitCaptureDone(ctx context.Context, t *testing.T, stack *localstack.Stack, want int64) {
	t.Helper()
	url := stack.HTTP("capture") + "/v1/capture/status"
	for {
		counters, err := stack.ReadCounters(ctx, url)
		if err == nil && counters["published"] >= want {
			if counters["motion_frames"] != want || counters["frames"] != 200 {
				t.Fatalf("capture counters %v: want 200 frames read, %d with motion", counters, want)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("capture never finished: %v %v", counters, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func checkFrames(ctx context.Context, t *testing.T, stack *localstack.Stack, sink cefiotv1.SinkServiceClient, frames []*cefiotv1.StoredFrame, spec videogen.Spec) {
	t.Helper()
	if len(frames) != spec.MotionFrames() {
		t.Fatalf("store lists %d frames, want %d", len(frames), spec.MotionFrames())
	}
	var seqs []int
	seen := map[string]bool{}
	for _, f := range frames {
		if seen[f.GetFrameId()] {
			t.Errorf("frame %s listed twice", f.GetFrameId())
		}
		seen[f.GetFrameId()] = true
		seqs = append(seqs, int(f.GetSequence()))
		if want := fmt.Sprintf("cam-1_%d_%08d", f.GetSessionEpoch(), f.GetSequence()); f.GetFrameId() != want {
			t.Errorf("frame id %s, want %s", f.GetFrameId(), want)
		}
		if f.GetCameraId() != "cam-1" || f.GetSite() != "edge" || f.GetWidth() != int32(spec.Width) || f.GetHeight() != int32(spec.Height) {
			t.Errorf("frame %s metadata: camera %q site %q size %dx%d", f.GetFrameId(), f.GetCameraId(), f.GetSite(), f.GetWidth(), f.GetHeight())
		}
		if f.GetMotionScore() <= 0 || len(f.GetBoxes()) == 0 || f.GetEnrichNode() == "" || f.GetCaptureNode() == "" {
			t.Errorf("frame %s: score %v boxes %d enrich node %q capture node %q", f.GetFrameId(), f.GetMotionScore(), len(f.GetBoxes()), f.GetEnrichNode(), f.GetCaptureNode())
		}
	}
	sort.Ints(seqs)
	for i, s := range seqs {
		if s != spec.MotionStart+i {
			t.Fatalf("stored sequences %v, want %d..%d", seqs, spec.MotionStart, spec.MotionEnd)
		}
	}
	// Every 10th frame: the JPEG (over gRPC and as an image over HTTP)
	// matches the hash enrich computed.
	for i := 0; i < len(frames); i += 10 {
		f := frames[i]
		resp, err := sink.GetFrame(ctx, &cefiotv1.GetFrameRequest{FrameId: f.GetFrameId()})
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(resp.GetJpeg())
		if hex.EncodeToString(sum[:]) != f.GetContentSha256() {
			t.Errorf("frame %s: JPEG hash differs from content_sha256", f.GetFrameId())
		}
		hr, err := stack.OperatorHTTP().Get(stack.SinkHTTP() + "/v1/frames/" + f.GetFrameId() + "/jpeg")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(hr.Body)
		hr.Body.Close()
		if hr.StatusCode != 200 || hr.Header.Get("Content-Type") != "image/jpeg" || string(body) != string(resp.GetJpeg()) {
			t.Errorf("GET jpeg of %s: %d %s, %d bytes", f.GetFrameId(), hr.StatusCode, hr.Header.Get("Content-Type"), len(body))
		}
	}
}

func tail(s string, n int) string {
	lines := 0
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			lines++
			if lines > n {
				return s[i+1:]
			}
		}
	}
	return s
}
