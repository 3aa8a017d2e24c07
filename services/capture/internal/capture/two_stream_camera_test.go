package capture

import (
	"context"
	"image"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
	"github.com/cefiot/cefiot/libs/harness/rtsptest"
	"github.com/cefiot/cefiot/libs/harness/videogen"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// TestTwoStreamCamera captures a camera configured with two streams (its
// 1280x720 H.264 main stream as source, its 320x180 sub-stream as
// detect_source) on a real Kafka broker: motion is detected on the
// sub-stream, every published frame (once the main stream is up) is the
// main stream's picture (1280x720) with the motion boxes scaled to it, and
// the camera's settings and state say so.
func TestTwoStreamCamera(t *testing.T) {
	if testing.Short() {
		t.Skip("real Kafka; skipped with -short")
	}
	cluster := kafkatest.StartForTest(t, 1)
	spec := videogen.DefaultSpec()
	spec.Width, spec.Height, spec.Frames, spec.FPS, spec.MotionStart, spec.MotionEnd = 1280, 720, 60, 15, 1, 59
	cam, err := rtsptest.New(spec, rtsptest.Options{Codec: rtsptest.CodecH264, SubStream: image.Pt(320, 180)})
	if err != nil {
		t.Fatal(err)
	}
	defer cam.Stop()
	yaml := "cameras:\n  porch:\n    source: " + cam.URL() + "\n    detect_source: " + cam.SubURL() + "\n    fps: 5\n"
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c := cameraTestCapturer(t, cluster.BootstrapServers(), yaml, logger, prometheus.NewRegistry())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var runErr error
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		runErr = c.run(ctx, &cefiotv1.Assignment{Epoch: 1}, &cefiotv1.Workload{Name: "capture:porch", Kind: "capture", Params: map[string]string{"camera": "porch"}})
	}()
	defer func() { cancel(); <-finished }()

	consumer := testConsumer(t, cluster.BootstrapServers(), "frames.raw")
	square := spec.SquareAt(1).Dx() // the moving square's side in the main stream
	main, sub := 0, 0
	for ctx.Err() == nil && main < 15 {
		select {
		case <-finished:
			t.Fatalf("capture ended: %v", runErr)
		default:
		}
		m, err := consumer.ReadMessage(200 * time.Millisecond)
		if err != nil {
			continue
		}
		f := &cefiotv1.Frame{}
		if err := proto.Unmarshal(m.Value, f); err != nil {
			t.Fatal(err)
		}
		if f.GetWidth() != 1280 || f.GetHeight() != 720 {
			// Until the main stream is up, the sub-stream's picture.
			if f.GetWidth() != 320 || main > 0 {
				t.Fatalf("a %dx%d frame after %d of the main stream's", f.GetWidth(), f.GetHeight(), main)
			}
			sub++
			continue
		}
		main++
		frameRect := image.Rect(0, 0, 1280, 720)
		var union image.Rectangle
		for _, b := range f.GetBoxes() {
			r := image.Rect(int(b.GetX()), int(b.GetY()), int(b.GetX()+b.GetWidth()), int(b.GetY()+b.GetHeight()))
			if !r.In(frameRect) {
				t.Errorf("frame %s: box %v outside the 1280x720 picture", f.GetFrameId(), r)
			}
			union = union.Union(r)
		}
		// Found on the 320x180 sub-stream, where the square is 30 pixels:
		// scaled, they cover it at the main stream's size.
		if len(f.GetBoxes()) > 0 && (union.Dx() < square*3/4 || union.Dy() < square*3/4) {
			t.Errorf("frame %s: boxes %v cover %v, want at least the square's size (%d)", f.GetFrameId(), f.GetBoxes(), union, square)
		}
		if f.GetMotion() && len(f.GetBoxes()) == 0 {
			t.Errorf("motion frame %s without boxes", f.GetFrameId())
		}
		if !strings.Contains(f.GetSource(), "two-stream camera") {
			t.Errorf("source %q", f.GetSource())
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("timed out with %d frames from the main stream (%d from the sub-stream)", main, sub)
	}
	t.Logf("%d frames of the main stream (%d of the sub-stream while the main one came up)", main, sub)
	adm := &adminServer{registry: c.registry, metrics: c.metrics}
	got, err := adm.GetCamera(ctx, &cefiotv1.GetCameraRequest{CameraId: "porch"})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetCamera().GetSettings().GetDetectSource() != cam.SubURL() || got.GetCamera().GetState().GetDecoder() == "" {
		t.Fatalf("camera %v: want its detect_source and decoder", got.GetCamera())
	}
}
