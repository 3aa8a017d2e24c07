package capture

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
	"github.com/cefiot/cefiot/libs/harness/rtsptest"
	"github.com/cefiot/cefiot/libs/harness/videogen"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// TestRTSPCameraWithCredentials captures an H.264 RTSP camera that demands
// a user and password (given in the camera's URL, as operators configure
// cameras) on a real Kafka broker. The camera restarts mid-stream: capture
// reconnects within 10 s and the online record after the outage carries
// the gap (offline_for). The password never appears in capture's log
// (slog and whatever FFmpeg prints on stderr), a status or frame record,
// an admin API answer or a metric. Decoding is -hwaccel any, as deployed:
// the camera's state names the decoder.
func TestRTSPCameraWithCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("real Kafka; skipped with -short")
	}
	const password = "Door-S3cret-77"
	cluster := kafkatest.StartForTest(t, 1)
	spec := videogen.DefaultSpec()
	spec.Width, spec.Height, spec.Frames, spec.FPS, spec.MotionStart, spec.MotionEnd = 320, 240, 100, 25, 1, 99
	cam, err := rtsptest.New(spec, rtsptest.Options{Codec: rtsptest.CodecH264, User: "viewer", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	defer cam.Stop()
	stderr := captureStderr(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	prom := prometheus.NewRegistry()
	c := cameraTestCapturer(t, cluster.BootstrapServers(), "cameras:\n  gate:\n    source: "+cam.URLWithCredentials()+"\n", logger, prom)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var runErr error
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		runErr = c.run(ctx, &cefiotv1.Assignment{Epoch: 1}, &cefiotv1.Workload{Name: "capture:gate", Kind: "capture", Params: map[string]string{"camera": "gate"}})
	}()
	defer func() { cancel(); <-finished }()

	consumer := testConsumer(t, cluster.BootstrapServers(), "cameras.status", "frames.raw")
	var (
		records           []string // every record, as JSON without the pictures
		statuses          []*cefiotv1.CameraStatusChange
		frames, afterBack int
		stoppedAt, backAt time.Time
		firstBack         time.Time
	)
	for ctx.Err() == nil && afterBack < 10 {
		select {
		case <-finished:
			t.Fatalf("capture ended: %v; log:\n%s", runErr, logs.String())
		default:
		}
		m, err := consumer.ReadMessage(200 * time.Millisecond)
		if err == nil {
			switch *m.TopicPartition.Topic {
			case "cameras.status":
				s := &cefiotv1.CameraStatusChange{}
				if err := proto.Unmarshal(m.Value, s); err != nil {
					t.Fatal(err)
				}
				statuses = append(statuses, s)
				records = append(records, protojson.Format(s))
			case "frames.raw":
				f := &cefiotv1.Frame{}
				if err := proto.Unmarshal(m.Value, f); err != nil {
					t.Fatal(err)
				}
				f.Jpeg, f.ThumbnailJpeg = nil, nil
				records = append(records, protojson.Format(f))
				frames++
				if !backAt.IsZero() && f.GetCaptureTime().AsTime().After(backAt) {
					if firstBack.IsZero() {
						firstBack = time.Now()
					}
					afterBack++
				}
			}
		}
		// 20 frames through the authenticated stream, then the camera
		// restarts: off for 2 s.
		if stoppedAt.IsZero() && frames >= 20 {
			cam.Stop()
			stoppedAt = time.Now()
		}
		if backAt.IsZero() && !stoppedAt.IsZero() && time.Since(stoppedAt) > 2*time.Second {
			if err := cam.Restart(); err != nil {
				t.Fatal(err)
			}
			backAt = time.Now()
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("timed out: %d frames, %d after the camera came back, %d status records; log:\n%s", frames, afterBack, len(statuses), logs.String())
	}
	if cam.Unauthorized() < 1 {
		t.Error("the camera never challenged capture for its credentials")
	}
	took := firstBack.Sub(backAt)
	t.Logf("frames again %v after the camera came back", took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("frames again %v after the camera came back, want within 10 s", took)
	}
	// online, offline (with a reason), online with the gap.
	if n := len(statuses); n < 3 || !statuses[0].GetOnline() || statuses[1].GetOnline() || statuses[1].GetReason() == "" || !statuses[n-1].GetOnline() {
		t.Fatalf("status records %v, want online, offline with a reason, online", records)
	}
	gap := statuses[len(statuses)-1].GetOfflineFor().AsDuration()
	t.Logf("the online record after the outage says the camera was offline %v (stopped for %v)", gap.Round(time.Millisecond), firstBack.Sub(stoppedAt).Round(time.Millisecond))
	if gap <= 0 || gap > firstBack.Sub(stoppedAt) {
		t.Errorf("offline_for %v after an outage of about %v", gap, firstBack.Sub(stoppedAt))
	}

	// Nowhere the password.
	adm := &adminServer{registry: c.registry, metrics: c.metrics}
	list, err := adm.ListCameras(ctx, &cefiotv1.ListCamerasRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := adm.GetCamera(ctx, &cefiotv1.GetCameraRequest{CameraId: "gate"})
	if err != nil {
		t.Fatal(err)
	}
	// The camera's state says what decodes it: software here, unless the
	// machine has a GPU.
	if dec := got.GetCamera().GetState().GetDecoder(); dec == "" || (!hasRenderNode() && dec != "software") {
		t.Errorf("decoder %q in the camera's state", dec)
	}
	var metrics bytes.Buffer
	families, err := prom.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if _, err := expfmt.MetricFamilyToText(&metrics, mf); err != nil {
			t.Fatal(err)
		}
	}
	places := map[string]string{
		"the log":                   logs.String(),
		"stderr (FFmpeg)":           stderr(),
		"the records":               strings.Join(records, "\n"),
		"ListCameras":               protojson.Format(list),
		"GetCamera":                 protojson.Format(got),
		"the metrics":               metrics.String(),
		"the camera's source shown": got.GetCamera().GetSettings().GetSource(),
	}
	for where, text := range places {
		if strings.Contains(text, password) {
			t.Errorf("the camera's password appears in %s", where)
		}
	}
	// The URL is shown, with the password masked: the checks above saw it.
	if !strings.Contains(logs.String(), "viewer:xxxxx@"+cam.Addr) {
		t.Error("the log never names the camera (with its password masked)")
	}
	if !strings.Contains(got.GetCamera().GetSettings().GetSource(), cam.Addr) {
		t.Errorf("the source shown %q does not name the camera", got.GetCamera().GetSettings().GetSource())
	}
}

// hasRenderNode reports whether the machine has a GPU render node, which
// hardware decoding needs.
func hasRenderNode() bool {
	m, _ := filepath.Glob("/dev/dri/renderD*")
	return len(m) > 0
}

// lockedWriter serialises writes from the capture's goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// captureStderr sends the process's file descriptor 2 (where FFmpeg and
// OpenCV write) to a pipe for the rest of the test, copying it through to
// the real stderr; the returned function gives what was written so far.
func captureStderr(t *testing.T) func() string {
	t.Helper()
	saved, err := syscall.Dup(2)
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Dup2(int(w.Fd()), 2); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var buf bytes.Buffer
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		real := os.NewFile(uintptr(saved), "stderr")
		b := make([]byte, 4096)
		for {
			n, err := r.Read(b)
			if n > 0 {
				mu.Lock()
				buf.Write(b[:n])
				mu.Unlock()
				_, _ = real.Write(b[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = syscall.Dup2(saved, 2)
		w.Close()
		<-copied
		r.Close()
	})
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return buf.String()
	}
}
