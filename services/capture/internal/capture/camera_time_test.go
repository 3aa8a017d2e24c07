package capture

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
	"github.com/cefiot/cefiot/libs/harness/rtsptest"
	"github.com/cefiot/cefiot/libs/harness/videogen"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

func TestCameraTimeFrameID(t *testing.T) {
	at := time.UnixMicro(1_764_547_200_123_499)
	if id := CameraTimeFrameID("door-1", at); id != "door-1_at_1764547200123" {
		t.Fatalf("id %q", id)
	}
	if id := CameraTimeFrameID("door-1", at.Add(time.Microsecond)); id != "door-1_at_1764547200124" {
		t.Fatalf("id %q: the nearest millisecond", id)
	}
}

// TestTwoCapturesOfOneRTSPCameraMakeTheSameIDs: two captures of one H.264
// RTSP camera (on two nodes, as when a healed partition or an etcd quorum
// loss leaves the camera's capture running twice), the second started 3 s
// after the first, both into real Kafka. Each frame's id is the camera's
// time of its picture: every id names a picture the camera sent at that
// time, and the frames both captured have the same ids, so the sink
// stores them once.
func TestTwoCapturesOfOneRTSPCameraMakeTheSameIDs(t *testing.T) {
	if testing.Short() {
		t.Skip("real Kafka and a live RTSP camera; skipped with -short")
	}
	cluster := kafkatest.StartForTest(t, 1)
	spec := videogen.DefaultSpec()
	spec.Width, spec.Height, spec.Frames, spec.FPS, spec.MotionStart, spec.MotionEnd = 320, 240, 60, 15, 1, 59
	cam, err := rtsptest.New(spec, rtsptest.Options{Codec: rtsptest.CodecH264})
	if err != nil {
		t.Fatal(err)
	}
	defer cam.Stop()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cameras := "cameras:\n  door:\n    source: " + cam.URL() + "\n"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i, node := range []string{"n1", "n2"} {
		c := cameraTestCapturer(t, cluster.BootstrapServers(), cameras, logger, prometheus.NewRegistry())
		c.cfg.Node = node
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-time.After(time.Duration(i) * 3 * time.Second): // the second starts later, on purpose
			case <-runCtx.Done():
				return
			}
			if err := c.run(runCtx, &cefiotv1.Assignment{Epoch: 1}, &cefiotv1.Workload{Name: "capture:door", Kind: "capture", Params: map[string]string{"camera": "door"}}); err != nil && runCtx.Err() == nil {
				t.Errorf("capture on %s: %v", node, err)
			}
		}()
	}

	consumer := testConsumer(t, cluster.BootstrapServers(), "frames.raw")
	ids := map[string]map[string]bool{"n1": {}, "n2": {}}
	for ctx.Err() == nil && len(ids["n2"]) < 60 {
		m, err := consumer.ReadMessage(200 * time.Millisecond)
		if err != nil {
			continue
		}
		f := &cefiotv1.Frame{}
		if err := proto.Unmarshal(m.Value, f); err != nil {
			t.Fatal(err)
		}
		node, id := f.GetCaptureNode(), f.GetFrameId()
		if ids[node][id] {
			t.Fatalf("%s published frame %s twice", node, id)
		}
		ids[node][id] = true
	}
	stop()
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("timed out: %d frames from n1, %d from n2", len(ids["n1"]), len(ids["n2"]))
	}
	for node, set := range ids {
		timed := 0
		for id := range set {
			ms, ok := strings.CutPrefix(id, "door_at_")
			if !ok {
				continue
			}
			timed++
			n, err := strconv.ParseInt(ms, 10, 64)
			if err != nil {
				t.Fatalf("%s: frame id %q", node, id)
			}
			if _, ok := cam.SentAt(time.UnixMilli(n)); !ok {
				t.Errorf("%s: frame %s names a time the camera sent no picture at", node, id)
			}
		}
		t.Logf("%s: %d frames, %d with the camera's time", node, len(set), timed)
		if timed != len(set) {
			t.Errorf("%s: only %d of %d frames with the camera's time (a connection reads past the pictures before the camera's first sender report)", node, timed, len(set))
		}
	}
	both := 0
	for id := range ids["n2"] {
		if ids["n1"][id] {
			both++
		}
	}
	t.Logf("%d of the second capture's %d frames have an id the first capture gave a frame too", both, len(ids["n2"]))
	if both < len(ids["n2"])*9/10 {
		t.Errorf("only %d of the second capture's %d frames have ids the first capture gave", both, len(ids["n2"]))
	}
}
