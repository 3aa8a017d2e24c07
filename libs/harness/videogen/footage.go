package videogen

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"gocv.io/x/gocv"
)

// Footage returns the path of real footage with people in it: OpenCV's
// pedestrian sample vtest.avi (768x576, 10 fps, 795 frames of people
// walking through a hall), which scripts/fetch-footage.sh extracts from
// Debian's opencv-doc package into .cache/footage/. $CEFIOT_FOOTAGE names
// another copy. Without it the test is skipped, or fails when
// $CEFIOT_REQUIRE_FOOTAGE is set (make test sets it).
func Footage(tb testing.TB) string {
	tb.Helper()
	p, err := footagePath()
	if err != nil {
		if os.Getenv("CEFIOT_REQUIRE_FOOTAGE") != "" {
			tb.Fatal(err)
		}
		tb.Skip(err)
	}
	return p
}

func footagePath() (string, error) {
	if p := os.Getenv("CEFIOT_FOOTAGE"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("footage: CEFIOT_FOOTAGE: %w", err)
		}
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			p := filepath.Join(d, ".cache", "footage", "vtest.avi")
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("footage: no %s (scripts/fetch-footage.sh fetches it)", p)
			}
			return p, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("footage: no go.work above the working directory, and no CEFIOT_FOOTAGE")
		}
	}
}

// FootageFrames reads n frames spread evenly over the footage.
func FootageFrames(tb testing.TB, n int) []gocv.Mat {
	tb.Helper()
	vc, err := gocv.VideoCaptureFile(Footage(tb))
	if err != nil {
		tb.Fatal(err)
	}
	defer vc.Close()
	step := max(int(vc.Get(gocv.VideoCaptureFrameCount))/n, 1)
	var out []gocv.Mat
	m := gocv.NewMat()
	defer m.Close()
	for i := 0; len(out) < n && vc.Read(&m); i++ {
		if i%step == 0 {
			out = append(out, m.Clone())
		}
	}
	tb.Cleanup(func() {
		for _, f := range out {
			f.Close()
		}
	})
	if len(out) < n {
		tb.Fatalf("footage: read %d of %d frames", len(out), n)
	}
	return out
}

// WriteFootageClip writes the first n frames of the footage to path (MJPG
// AVI at the footage's rate), for a camera fed a short clip.
func WriteFootageClip(tb testing.TB, path string, n int) {
	tb.Helper()
	vc, err := gocv.VideoCaptureFile(Footage(tb))
	if err != nil {
		tb.Fatal(err)
	}
	defer vc.Close()
	m := gocv.NewMat()
	defer m.Close()
	if !vc.Read(&m) {
		tb.Fatal("footage: no first frame")
	}
	w, err := gocv.VideoWriterFile(path, "MJPG", vc.Get(gocv.VideoCaptureFPS), m.Cols(), m.Rows(), true)
	if err != nil {
		tb.Fatal(err)
	}
	defer w.Close()
	for i := 0; i < n; i++ {
		if i > 0 && !vc.Read(&m) {
			break
		}
		if err := w.Write(m); err != nil {
			tb.Fatal(err)
		}
	}
}
