package capture

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

const sampleFile = `cameras:
  door:
    source: rtsp://user:secret@192.0.2.10/stream1
    fps: 5
    threshold: 30
    mask: [[[0, 0], [200, 0], [200, 80]]]
    pre_capture: 10
    post_capture: 25
    min_motion_frames: 3
    cooldown: 5s
`

func TestRegistryFileParamsAndLiveUpdate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cameras.yaml")
	if err := os.WriteFile(path, []byte(sampleFile), 0o644); err != nil {
		t.Fatal(err)
	}
	reg, err := NewRegistry(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	// The workload gives a source and a threshold; the file wins.
	_, params, err := ParseCamera(map[string]string{"camera": "door", "source": "/videos/x.avi", "threshold": "40", "blur": "7"})
	if err != nil {
		t.Fatal(err)
	}
	run, err := reg.Attach("door", params)
	if err != nil {
		t.Fatal(err)
	}
	s := run.Settings()
	if s.Source != "rtsp://user:secret@192.0.2.10/stream1" || s.Threshold != 30 || s.Blur != 7 || s.FPS != 5 ||
		s.PreCapture != 10 || s.MinMotionFrames != 3 || s.Cooldown != 5*time.Second || len(s.Mask) != 1 || len(s.Mask[0]) != 3 {
		t.Fatalf("settings %+v", s)
	}
	if _, err := reg.Attach("door", params); err == nil {
		t.Fatal("the same camera attached twice")
	}

	// The admin API changes a setting live and writes the file.
	adm := &adminServer{registry: reg}
	v := run.Version()
	resp, err := adm.UpdateCamera(context.Background(), &cefiotv1.UpdateCameraRequest{CameraId: "door", Settings: &cefiotv1.CameraSettings{
		MinArea: ptr(0.02), Cooldown: durationpb.New(time.Second), Mask: &cefiotv1.MaskZones{},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if run.Version() == v || run.Settings().MinArea != 0.02 || run.Settings().Cooldown != time.Second || len(run.Settings().Mask) != 0 {
		t.Fatalf("update not applied: %+v", run.Settings())
	}
	if got := resp.GetCamera().GetSettings().GetSource(); strings.Contains(got, "secret") {
		t.Fatalf("API shows the password: %s", got)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), "min_area: 0.02") || !strings.Contains(string(b), "threshold: 30") {
		t.Fatalf("file after update:\n%s", b)
	}
	// A restart reads what the API wrote.
	reg2, err := NewRegistry(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if s, _, err := reg2.Camera("door"); err != nil || s.MinArea != 0.02 {
		t.Fatalf("after reload: %+v, %v", s, err)
	}

	// Bad updates name the field and change nothing.
	for field, set := range map[string]*cefiotv1.CameraSettings{
		"settings.threshold":         {Threshold: ptr(int32(0))},
		"settings.min_area":          {MinArea: ptr(2.0)},
		"settings.blur":              {Blur: ptr(int32(4))},
		"settings.min_motion_frames": {MinMotionFrames: ptr(int32(0))},
		"settings.global_change":     {GlobalChange: ptr(0.01)},
		"settings.mask.zones[0]":     {Mask: &cefiotv1.MaskZones{Zones: []*cefiotv1.Polygon{{Points: []*cefiotv1.Point{{X: 1}}}}}},
		"settings.source":            {Source: ptr("")},
		"settings.fps":               {Fps: ptr(-1.0)},
	} {
		v := run.Version()
		_, err := adm.UpdateCamera(context.Background(), &cefiotv1.UpdateCameraRequest{CameraId: "door", Settings: set})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: err = %v", field, err)
		}
		if run.Version() != v {
			t.Errorf("%s: a refused update changed the camera", field)
		}
	}
	if _, err := adm.UpdateCamera(context.Background(), &cefiotv1.UpdateCameraRequest{CameraId: "a/b", Settings: &cefiotv1.CameraSettings{}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("bad camera id: %v", err)
	}
	if _, err := adm.GetCamera(context.Background(), &cefiotv1.GetCameraRequest{CameraId: "nobody"}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown camera: %v", err)
	}

	// A hand edit of the file is picked up by Watch.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go reg.Watch(ctx, 20*time.Millisecond)
	v = run.Version()
	time.Sleep(20 * time.Millisecond) // a distinct modification time
	edited := strings.Replace(string(b), "threshold: 30", "threshold: 12", 1)
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for run.Settings().Threshold != 12 {
		if time.Now().After(deadline) {
			t.Fatal("hand edit of the file not applied")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if run.Version() == v {
		t.Fatal("version did not change")
	}
	reg.Detach(run)
	if ids := reg.IDs(); len(ids) != 1 || ids[0] != "door" {
		t.Fatalf("IDs = %v", ids)
	}
}

func TestBadCameraFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cameras.yaml")
	for content, want := range map[string]string{
		"cameras:\n  door:\n    threshold: 999\n":                                              "cameras.door.threshold",
		"cameras:\n  door:\n    no_such_key: 1\n":                                              "no_such_key",
		"cameras:\n  'a/b':\n    fps: 1\n":                                                     "cameras.a/b",
		"cameras:\n  door:\n    source: rtsp://cam/main\n    detect_source: /videos/sub.mp4\n": "cameras.door.detect_source",
		"cameras:\n  door:\n    source: /videos/door.mp4\n    detect_source: rtsp://cam/sub\n": "needs source to be the camera's main stream",
	} {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := NewRegistry(path, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want one naming %s", content, err, want)
		}
	}
}
