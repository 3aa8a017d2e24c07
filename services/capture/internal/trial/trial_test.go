package trial

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cefiot/cefiot/libs/harness/videogen"
)

// A generated video with motion in frames 10..19: the trial reads every
// frame, finds exactly those ten and says so.
func TestRunFindsTheVideosMotion(t *testing.T) {
	spec := videogen.DefaultSpec()
	spec.Width, spec.Height, spec.Frames, spec.MotionStart, spec.MotionEnd = 320, 240, 30, 10, 19
	video := filepath.Join(t.TempDir(), "motion.avi")
	if err := videogen.Write(video, spec); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := Run(context.Background(), []string{"-max-frames", "0", video}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"frames read: 30\n", "motion frames: 10\n", "first motion at frame: 10\n", "decode: ", "detect: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// Bad input is refused with the flag or the source named.
func TestRunRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage: capture detect"},
		{[]string{"a.avi", "b.avi"}, "got 2 arguments"},
		{[]string{"-max-frames", "-1", "a.avi"}, "-max-frames -1"},
		{[]string{"-min-area", "2", "a.avi"}, "-min-area 2"},
		{[]string{"/nonexistent/video.avi"}, "/nonexistent/video.avi"},
		{[]string{"-frame-timeout", "0s", "a.avi"}, "-frame-timeout 0s"},
		{[]string{"-frame-timeout", "2s", "rtsp://admin:secret@127.0.0.1:1/stream"}, "rtsp://admin:xxxxx@127.0.0.1:1/stream within 2s"},
	} {
		err := Run(context.Background(), tc.args, new(strings.Builder))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Run(%q) = %v, want an error with %q", tc.args, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("Run(%q): the error shows the password: %v", tc.args, err)
		}
	}
}
