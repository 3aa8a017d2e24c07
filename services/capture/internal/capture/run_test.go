package capture

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
	"github.com/cefiot/cefiot/libs/harness/mjpegtest"
	"github.com/cefiot/cefiot/libs/harness/videogen"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// TestCamerasOnRealKafka runs two cameras in one capture process on a real
// Kafka broker: an HTTP MJPEG camera that the test switches off and on, and
// a video file. It checks the status records (online, offline with a
// reason, online again), that the stream produces frames again within 10 s
// of coming back, and that the file camera's event is complete.
func TestCamerasOnRealKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("real Kafka; skipped with -short")
	}
	cluster := kafkatest.StartForTest(t, 1)
	spec := videogen.DefaultSpec()
	spec.Width, spec.Height, spec.Frames, spec.MotionStart, spec.MotionEnd = 320, 240, 40, 10, 19
	cam, err := mjpegtest.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer cam.Stop()
	video := filepath.Join(t.TempDir(), "door.avi")
	if err := videogen.Write(video, spec); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c := cameraTestCapturer(t, cluster.BootstrapServers(), "cameras:\n  yard:\n    source: "+cam.URL()+"\n", logger, prometheus.NewRegistry())

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, wl := range []*cefiotv1.Workload{
		{Name: "capture:yard", Kind: "capture", Params: map[string]string{"camera": "yard"}},
		{Name: "capture:door", Kind: "capture", Params: map[string]string{"camera": "door", "source": video}},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- c.run(ctx, &cefiotv1.Assignment{Epoch: 1}, wl)
		}()
	}
	defer func() { cancel(); wg.Wait() }()

	consumer := testConsumer(t, cluster.BootstrapServers(), "cameras.status", "frames.raw")
	var (
		yardStatus      []bool
		yardReason      string
		doorFrames      []*cefiotv1.Frame
		yardAfterReturn int
		stoppedAt       time.Time
		returnedAt      time.Time
		firstBack       time.Time
	)
	for ctx.Err() == nil && (firstBack.IsZero() || yardAfterReturn < 5 || len(doorFrames) < spec.MotionFrames()) {
		m, err := consumer.ReadMessage(200 * time.Millisecond)
		if err == nil {
			switch *m.TopicPartition.Topic {
			case "cameras.status":
				var s cefiotv1.CameraStatusChange
				if err := proto.Unmarshal(m.Value, &s); err != nil {
					t.Fatal(err)
				}
				if s.GetCameraId() == "yard" {
					yardStatus = append(yardStatus, s.GetOnline())
					if !s.GetOnline() {
						yardReason = s.GetReason()
					}
				}
			case "frames.raw":
				var f cefiotv1.Frame
				if err := proto.Unmarshal(m.Value, &f); err != nil {
					t.Fatal(err)
				}
				if f.GetCameraId() == "door" {
					doorFrames = append(doorFrames, &f)
				} else if !returnedAt.IsZero() && f.GetCaptureTime().AsTime().After(returnedAt) {
					if firstBack.IsZero() {
						firstBack = time.Now()
					}
					yardAfterReturn++
				}
			}
		}
		// Switch the camera off once it is online, and on again 2 s later.
		if stoppedAt.IsZero() && len(yardStatus) > 0 && yardStatus[0] {
			cam.Stop()
			stoppedAt = time.Now()
		}
		if returnedAt.IsZero() && !stoppedAt.IsZero() && time.Since(stoppedAt) > 2*time.Second {
			if err := cam.Restart(spec.FPS); err != nil {
				t.Fatal(err)
			}
			returnedAt = time.Now()
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("timed out: yard status %v, %d yard frames after return, %d door frames", yardStatus, yardAfterReturn, len(doorFrames))
	}
	if len(yardStatus) < 3 || !yardStatus[0] || yardStatus[1] || !yardStatus[len(yardStatus)-1] || yardReason == "" {
		t.Fatalf("yard status records %v (reason %q), want online, offline with a reason, online", yardStatus, yardReason)
	}
	took := firstBack.Sub(returnedAt)
	t.Logf("yard: frames again %v after the camera came back", took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("frames again %v after the camera came back, want within 10s", took)
	}
	// The file camera: exactly its motion frames, one event START..END.
	if len(doorFrames) != spec.MotionFrames() {
		t.Fatalf("door published %d frames, want %d", len(doorFrames), spec.MotionFrames())
	}
	for i, f := range doorFrames {
		want := cefiotv1.EventPhase_EVENT_PHASE_UPDATE
		switch i {
		case 0:
			want = cefiotv1.EventPhase_EVENT_PHASE_START
		case len(doorFrames) - 1:
			want = cefiotv1.EventPhase_EVENT_PHASE_END
		}
		if f.GetSequence() != uint64(spec.MotionStart+i) || f.GetEventPhase() != want || f.GetEventFrameIndex() != uint32(i) ||
			f.GetEventId() != doorFrames[0].GetEventId() || !f.GetMotion() {
			t.Fatalf("door frame %d: seq %d phase %v index %d event %s", i, f.GetSequence(), f.GetEventPhase(), f.GetEventFrameIndex(), f.GetEventId())
		}
	}
	// The API shows the yard camera online, with its reconnect.
	adm := &adminServer{registry: c.registry}
	got, err := adm.GetCamera(ctx, &cefiotv1.GetCameraRequest{CameraId: "yard"})
	if err != nil || !got.GetCamera().GetState().GetOnline() || got.GetCamera().GetState().GetReconnects() < 1 {
		t.Fatalf("GetCamera(yard) = %v, %v", got, err)
	}
	// It streams at spec.FPS, so it delivered frames in the last seconds.
	fps := got.GetCamera().GetState().GetMeasuredFps()
	t.Logf("yard: measured %.1f fps (streamed at %v)", fps, spec.FPS)
	if fps <= 0 {
		t.Errorf("yard measured_fps = %v while streaming at %v fps, want > 0", fps, spec.FPS)
	}
}
