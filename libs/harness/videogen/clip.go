package videogen

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
)

// H264Clip renders spec and has Debian's ffmpeg encode it with libx264 as
// a camera would (a keyframe a second, at bitrate, with bframes B-frames
// between references: cameras send none) into an MP4 file in a temporary
// directory of tb's.
func H264Clip(tb testing.TB, spec Spec, bitrate string, bframes int) string {
	tb.Helper()
	dir := tb.TempDir()
	src := filepath.Join(dir, "scene.avi")
	if err := Write(src, spec); err != nil {
		tb.Fatal(err)
	}
	out := filepath.Join(dir, "scene.mp4")
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-i", src, "-an", "-pix_fmt", "yuv420p",
		"-c:v", "libx264", "-preset", "veryfast", "-bf", fmt.Sprint(bframes), "-g", fmt.Sprint(int(spec.FPS)), "-b:v", bitrate, out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("ffmpeg: %v: %s", err, bytes.TrimSpace(msg))
	}
	return out
}
