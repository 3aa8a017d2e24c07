package videogen

import (
	"bytes"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gocv.io/x/gocv"
)

func TestDefaultSpec(t *testing.T) {
	s := DefaultSpec()
	if err := s.Validate(); err != nil {
		t.Fatalf("DefaultSpec invalid: %v", err)
	}
	if got := s.MotionFrames(); got != 100 {
		t.Fatalf("MotionFrames = %d, want 100", got)
	}
	for i := 0; i < s.Frames; i++ {
		moved := i > 0 && s.SquareAt(i) != s.SquareAt(i-1)
		if moved != s.IsMotion(i) {
			t.Errorf("frame %d: square moved=%v, IsMotion=%v", i, moved, s.IsMotion(i))
		}
		r := s.SquareAt(i)
		if !r.In(imageRect(s)) {
			t.Errorf("frame %d: square %v outside frame", i, r)
		}
	}
}

func TestValidateNamesField(t *testing.T) {
	cases := map[string]func(*Spec){
		"Width":       func(s *Spec) { s.Width = 10 },
		"Height":      func(s *Spec) { s.Height = 0 },
		"Frames":      func(s *Spec) { s.Frames = 1 },
		"FPS":         func(s *Spec) { s.FPS = 0 },
		"MotionStart": func(s *Spec) { s.MotionStart = 0 },
		"MotionEnd":   func(s *Spec) { s.MotionEnd = s.Frames },
		"SquareSize":  func(s *Spec) { s.SquareSize = 1000 },
		"Speed":       func(s *Spec) { s.Speed = -1 },
		"JPEGQuality": func(s *Spec) { s.JPEGQuality = 101 },
	}
	for field, mutate := range cases {
		s := DefaultSpec()
		mutate(&s)
		err := s.Validate()
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: Validate() = %v, want an error naming the field", field, err)
		}
	}
}

func TestWriteReadsBack(t *testing.T) {
	spec := DefaultSpec()
	path := filepath.Join(t.TempDir(), "sample.avi")
	if err := Write(path, spec); err != nil {
		t.Fatal(err)
	}
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	if got := int(vc.Get(gocv.VideoCaptureFrameCount)); got != spec.Frames {
		t.Errorf("frame count property = %d, want %d", got, spec.Frames)
	}
	if got := vc.Get(gocv.VideoCaptureFPS); got != spec.FPS {
		t.Errorf("fps property = %v, want %v", got, spec.FPS)
	}
	if got := vc.CodecString(); got != "MJPG" {
		t.Errorf("codec = %q, want MJPG", got)
	}
	m := gocv.NewMat()
	defer m.Close()
	n := 0
	for vc.Read(&m) && !m.Empty() {
		if m.Cols() != spec.Width || m.Rows() != spec.Height || m.Channels() != 3 {
			t.Fatalf("frame %d is %dx%dx%d, want %dx%dx3", n, m.Cols(), m.Rows(), m.Channels(), spec.Width, spec.Height)
		}
		n++
	}
	if n != spec.Frames {
		t.Errorf("read %d frames, want %d", n, spec.Frames)
	}
	// No temporary file is left behind.
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only sample.avi", len(entries))
	}
}

func TestWriteIsDeterministic(t *testing.T) {
	spec := DefaultSpec()
	spec.Frames, spec.MotionStart, spec.MotionEnd = 20, 5, 9
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.avi"), filepath.Join(dir, "b.avi")
	for _, p := range []string{a, b} {
		if err := Write(p, spec); err != nil {
			t.Fatal(err)
		}
	}
	ba, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ba, bb) {
		t.Error("two writes of the same spec differ")
	}
}

func TestWriteBadPath(t *testing.T) {
	err := Write(filepath.Join(t.TempDir(), "missing", "x.avi"), DefaultSpec())
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("Write into a missing directory: err = %v, want an error naming the path", err)
	}
}

func TestWriteImages(t *testing.T) {
	spec := DefaultSpec()
	spec.Frames, spec.MotionStart, spec.MotionEnd = 12, 3, 7
	dir := filepath.Join(t.TempDir(), "frames")
	if err := WriteImages(dir, spec); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != spec.Frames {
		t.Fatalf("wrote %d files, want %d", len(entries), spec.Frames)
	}
	for i, e := range entries {
		if e.Name() != ImageName(i) {
			t.Errorf("entry %d = %s, want %s", i, e.Name(), ImageName(i))
		}
		m := gocv.IMRead(filepath.Join(dir, e.Name()), gocv.IMReadColor)
		if m.Cols() != spec.Width || m.Rows() != spec.Height {
			t.Errorf("%s is %dx%d, want %dx%d", e.Name(), m.Cols(), m.Rows(), spec.Width, spec.Height)
		}
		m.Close()
	}
}

// TestStaticFramesIdentical checks the property detectors rely on: frames
// without motion decode to exactly the same pixels as their predecessor, and
// motion frames do not. The one documented exception is frame 1 of the .avi
// (FFmpeg codes frame 0 at a lower quality): its difference must stay small.
func TestStaticFramesIdentical(t *testing.T) {
	spec := DefaultSpec()
	spec.Frames, spec.MotionStart, spec.MotionEnd = 12, 4, 8
	dir := t.TempDir()
	path := filepath.Join(dir, "s.avi")
	if err := Write(path, spec); err != nil {
		t.Fatal(err)
	}
	if err := WriteImages(dir, spec); err != nil {
		t.Fatal(err)
	}
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	prevVideo, prevImage := gocv.NewMat(), gocv.NewMat()
	defer prevVideo.Close()
	defer prevImage.Close()
	for i := 0; i < spec.Frames; i++ {
		video := gocv.NewMat()
		if !vc.Read(&video) || video.Empty() {
			t.Fatalf("video ended at frame %d", i)
		}
		img := gocv.IMRead(filepath.Join(dir, ImageName(i)), gocv.IMReadColor)
		if i > 0 {
			changed, maxDiff := diffStats(t, video, prevVideo)
			switch {
			case i == 1:
				if maxDiff > 48 {
					t.Errorf("video frame 1: max difference %v to frame 0, want <= 48", maxDiff)
				}
			case spec.IsMotion(i) != (changed > 0):
				t.Errorf("video frame %d: %d changed pixels, IsMotion=%v", i, changed, spec.IsMotion(i))
			}
			if changed, _ := diffStats(t, img, prevImage); spec.IsMotion(i) != (changed > 0) {
				t.Errorf("image %d: %d changed pixels, IsMotion=%v", i, changed, spec.IsMotion(i))
			}
		}
		video.CopyTo(&prevVideo)
		img.CopyTo(&prevImage)
		video.Close()
		img.Close()
	}
}

// diffStats returns how many channel values of a and b differ and the
// largest difference.
func diffStats(t *testing.T, a, b gocv.Mat) (changed int, maxDiff float32) {
	t.Helper()
	diff := gocv.NewMat()
	defer diff.Close()
	gocv.AbsDiff(a, b, &diff)
	flat := diff.Reshape(1, 0)
	defer flat.Close()
	_, maxDiff, _, _ = gocv.MinMaxLoc(flat)
	return gocv.CountNonZero(flat), maxDiff
}

func imageRect(s Spec) image.Rectangle { return image.Rect(0, 0, s.Width, s.Height) }
