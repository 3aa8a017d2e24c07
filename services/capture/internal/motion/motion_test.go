package motion

import (
	"context"
	"image"
	"image/color"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/cefiot/cefiot/libs/harness/videogen"
	"github.com/cefiot/cefiot/services/capture/internal/source"
)

// detectAll runs a default detector over src and returns the results by
// frame index.
func detectAll(t *testing.T, src source.Source) []Result {
	t.Helper()
	d, err := NewDetector(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var results []Result
	for {
		f, err := src.Next(context.Background())
		if err == io.EOF {
			return results
		}
		if err != nil {
			t.Fatal(err)
		}
		if f.Index != uint64(len(results)) {
			t.Fatalf("frame index %d, want %d", f.Index, len(results))
		}
		r, err := d.Detect(f.Mat)
		if err != nil {
			t.Fatalf("frame %d: %v", f.Index, err)
		}
		results = append(results, r)
	}
}

// checkMotionFrames verifies that exactly spec's motion frames are
// detected and that their boxes cover the moving square.
func checkMotionFrames(t *testing.T, spec videogen.Spec, results []Result) {
	t.Helper()
	if len(results) != spec.Frames {
		t.Fatalf("got %d results, want %d", len(results), spec.Frames)
	}
	var motion []int
	minMotion, maxStill := 1.0, 0.0
	for i, r := range results {
		if r.Motion {
			motion = append(motion, i)
		}
		if spec.IsMotion(i) {
			minMotion = min(minMotion, r.Score)
		} else {
			maxStill = max(maxStill, r.Score)
		}
		if r.Motion != spec.IsMotion(i) {
			t.Errorf("frame %d: Motion=%v score=%.5f, want Motion=%v", i, r.Motion, r.Score, spec.IsMotion(i))
			continue
		}
		if !r.Motion {
			if len(r.Boxes) != 0 {
				t.Errorf("frame %d: still frame has boxes %v", i, r.Boxes)
			}
			continue
		}
		// The changes lie where the square was and is; the boxes must
		// cover the square's new position and stay near the two.
		moved := spec.SquareAt(i).Union(spec.SquareAt(i - 1))
		near := moved.Inset(-24)
		var union image.Rectangle
		for _, b := range r.Boxes {
			if !b.In(near) {
				t.Errorf("frame %d: box %v is not near the square's path %v", i, b, moved)
			}
			union = union.Union(b)
		}
		if !spec.SquareAt(i).In(union.Inset(-2)) {
			t.Errorf("frame %d: boxes %v do not cover the square %v", i, r.Boxes, spec.SquareAt(i))
		}
	}
	if len(motion) != spec.MotionFrames() {
		t.Errorf("detected %d motion frames, want %d", len(motion), spec.MotionFrames())
	}
	t.Logf("motion frames %v..%v (%d); lowest motion score %.5f, highest still score %.5f, MinArea %.5f",
		first(motion), last(motion), len(motion), minMotion, maxStill, DefaultConfig().MinArea)
}

func first(s []int) any {
	if len(s) == 0 {
		return "none"
	}
	return s[0]
}

func last(s []int) any {
	if len(s) == 0 {
		return "none"
	}
	return s[len(s)-1]
}

func TestDetectGeneratedVideo(t *testing.T) {
	spec := videogen.DefaultSpec()
	path := filepath.Join(t.TempDir(), "sample.avi")
	if err := videogen.Write(path, spec); err != nil {
		t.Fatal(err)
	}
	src, err := source.OpenVideoFile(path, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	results := detectAll(t, src)
	checkMotionFrames(t, spec, results)
	if results[0].Motion || results[0].Score != 0 {
		t.Errorf("first frame: %+v, want no motion", results[0])
	}
}

func TestDetectImageFolder(t *testing.T) {
	spec := videogen.DefaultSpec()
	dir := t.TempDir()
	if err := videogen.WriteImages(dir, spec); err != nil {
		t.Fatal(err)
	}
	src, err := source.OpenImageDir(dir, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	checkMotionFrames(t, spec, detectAll(t, src))
}

// TestDetectOtherSizes checks that the detector is not tuned to one size.
func TestDetectOtherSizes(t *testing.T) {
	for _, size := range []image.Point{{1280, 720}, {320, 240}, {200, 150}} {
		spec := videogen.DefaultSpec()
		spec.Width, spec.Height = size.X, size.Y
		spec.Frames, spec.MotionStart, spec.MotionEnd = 60, 20, 39
		dir := t.TempDir()
		if err := videogen.WriteImages(dir, spec); err != nil {
			t.Fatal(err)
		}
		src, err := source.OpenImageDir(dir, source.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Run(strings.ReplaceAll(size.String(), ",", "x"), func(t *testing.T) {
			checkMotionFrames(t, spec, detectAll(t, src))
		})
		src.Close()
	}
}

func TestFirstFrameAndReset(t *testing.T) {
	d, err := NewDetector(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	black := gocv.NewMatWithSize(480, 640, gocv.MatTypeCV8UC3)
	defer black.Close()
	white := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(255, 255, 255, 0), 480, 640, gocv.MatTypeCV8UC3)
	defer white.Close()
	small := gocv.NewMatWithSize(240, 320, gocv.MatTypeCV8UC3)
	defer small.Close()

	steps := []struct {
		name  string
		frame gocv.Mat
		reset bool
		want  bool
	}{
		{"first frame", white, false, false},
		{"same frame", white, false, false},
		{"black after white", black, false, true},
		{"white after reset", white, true, false},
		{"black after white", black, false, true},
		{"new size starts a session", small, false, false},
		{"white after size change", white, false, false},
	}
	for _, s := range steps {
		if s.reset {
			d.Reset()
		}
		r, err := d.Detect(s.frame)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if r.Motion != s.want {
			t.Errorf("%s: Motion = %v (score %v), want %v", s.name, r.Motion, r.Score, s.want)
		}
		if s.want {
			if r.Score != 1 {
				t.Errorf("%s: score %v, want 1", s.name, r.Score)
			}
			if len(r.Boxes) != 1 || r.Boxes[0] != image.Rect(0, 0, 640, 480) {
				t.Errorf("%s: boxes %v, want the whole frame", s.name, r.Boxes)
			}
		}
	}
}

func TestDetectGreyAndBGRA(t *testing.T) {
	d, err := NewDetector(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, typ := range []gocv.MatType{gocv.MatTypeCV8UC1, gocv.MatTypeCV8UC4} {
		d.Reset()
		a := gocv.NewMatWithSize(100, 100, typ)
		b := gocv.NewMatWithSize(100, 100, typ)
		gocv.Rectangle(&b, image.Rect(10, 20, 30, 40), colorWhite, -1)
		if _, err := d.Detect(a); err != nil {
			t.Fatal(err)
		}
		r, err := d.Detect(b)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Motion || len(r.Boxes) != 1 {
			t.Errorf("type %v: %+v, want one box", typ, r)
		} else if !image.Rect(10, 20, 30, 40).In(r.Boxes[0]) {
			t.Errorf("type %v: box %v does not cover the change", typ, r.Boxes[0])
		}
		a.Close()
		b.Close()
	}
}

func TestDetectRejectsBadFrames(t *testing.T) {
	d, err := NewDetector(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	empty := gocv.NewMat()
	defer empty.Close()
	if _, err := d.Detect(empty); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("Detect(empty) = %v", err)
	}
	float := gocv.NewMatWithSize(10, 10, gocv.MatTypeCV32F)
	defer float.Close()
	if _, err := d.Detect(float); err == nil || !strings.Contains(err.Error(), "unsupported") {
		t.Errorf("Detect(float) = %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	if _, err := NewDetector(Config{}); err == nil {
		t.Error("the zero Config was accepted")
	}
	cases := map[string]func(*Config){
		"DetectWidth": func(c *Config) { c.DetectWidth = 8 },
		"BlurSize":    func(c *Config) { c.BlurSize = 4 },
		"Threshold":   func(c *Config) { c.Threshold = 255 },
		"MinArea":     func(c *Config) { c.MinArea = 0 },
		"Dilate":      func(c *Config) { c.Dilate = -1 },
		"MaxBoxes":    func(c *Config) { c.MaxBoxes = -1 },
	}
	for field, mutate := range cases {
		c := DefaultConfig()
		mutate(&c)
		if _, err := NewDetector(c); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s out of range: NewDetector error = %v, want one naming the field", field, err)
		}
	}
	c := DefaultConfig()
	c.BlurSize, c.Dilate, c.MaxBoxes = 0, 0, 0
	d, err := NewDetector(c)
	if err != nil {
		t.Fatalf("minimal config rejected: %v", err)
	}
	d.Close()
}

func TestEncodeJPEG(t *testing.T) {
	r, err := videogen.NewRenderer(videogen.DefaultSpec())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	frame := gocv.NewMat()
	defer frame.Close()
	if err := r.Frame(60, &frame); err != nil {
		t.Fatal(err)
	}
	low, err := EncodeJPEG(frame, 30)
	if err != nil {
		t.Fatal(err)
	}
	high, err := EncodeJPEG(frame, 95)
	if err != nil {
		t.Fatal(err)
	}
	if len(low) >= len(high) {
		t.Errorf("quality 30 gave %d bytes, quality 95 %d: want fewer", len(low), len(high))
	}
	if len(high) < 2 || high[0] != 0xFF || high[1] != 0xD8 {
		t.Fatalf("not a JPEG: % x", high[:min(4, len(high))])
	}
	back, err := gocv.IMDecode(high, gocv.IMReadColor)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if back.Cols() != frame.Cols() || back.Rows() != frame.Rows() {
		t.Errorf("decoded %dx%d, want %dx%d", back.Cols(), back.Rows(), frame.Cols(), frame.Rows())
	}
	for _, q := range []int{0, 101} {
		if _, err := EncodeJPEG(frame, q); err == nil || !strings.Contains(err.Error(), "quality") {
			t.Errorf("quality %d: err = %v", q, err)
		}
	}
	empty := gocv.NewMat()
	defer empty.Close()
	if _, err := EncodeJPEG(empty, 80); err == nil {
		t.Error("empty image encoded")
	}
}

var colorWhite = colorRGBA(255)

func colorRGBA(v uint8) color.RGBA { return color.RGBA{R: v, G: v, B: v, A: 255} }
