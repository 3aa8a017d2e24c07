package redact

import (
	"strings"
	"testing"
)

func TestURLHidesPasswordsOnly(t *testing.T) {
	for in, want := range map[string]string{
		"rtsp://admin:s3cret@10.0.0.5:554/stream1": "rtsp://admin:xxxxx@10.0.0.5:554/stream1",
		"http://u:p%40ss@cam/mjpeg":                "http://u:xxxxx@cam/mjpeg",
		"rtsp://viewer@cam/stream":                 "rtsp://viewer@cam/stream",
		"/videos/door.avi":                         "/videos/door.avi",
		"/dev/video0":                              "/dev/video0",
		"not a url: %zz":                           "not a url: %zz",
	} {
		if got := URL(in); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRestoreKeepsStoredSecretsOfUnchangedValues(t *testing.T) {
	stored := map[string]string{"source": "rtsp://admin:s3cret@cam/1", "fps": "5"}
	shown := Params(stored)
	if strings.Contains(shown["source"], "s3cret") {
		t.Fatalf("shown %v", shown)
	}
	shown["fps"] = "10"
	Restore(shown, stored)
	if shown["source"] != stored["source"] || shown["fps"] != "10" {
		t.Fatalf("restored %v", shown)
	}
	changed := map[string]string{"source": "rtsp://admin:new@cam/2"}
	Restore(changed, stored)
	if changed["source"] != "rtsp://admin:new@cam/2" {
		t.Fatalf("a new URL was replaced: %v", changed)
	}
}
