package motion

import (
	"path/filepath"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/cefiot/cefiot/libs/harness/videogen"
)

// The benchmarks report per-frame costs at the sample size (768x576), so
// that detection can be compared with decoding: the design target is a
// detector costing at most 20% of decoding.

func sampleVideo(b *testing.B) (string, videogen.Spec) {
	b.Helper()
	spec := videogen.DefaultSpec()
	path := filepath.Join(b.TempDir(), "sample.avi")
	if err := videogen.Write(path, spec); err != nil {
		b.Fatal(err)
	}
	return path, spec
}

// BenchmarkDecode measures decoding one frame of the sample MJPG video
// through OpenCV's VideoCapture into a reused Mat.
func BenchmarkDecode(b *testing.B) {
	path, _ := sampleVideo(b)
	m := gocv.NewMat()
	defer m.Close()
	open := func() *gocv.VideoCapture {
		vc, err := gocv.VideoCaptureFile(path)
		if err != nil {
			b.Fatal(err)
		}
		return vc
	}
	vc := open()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !vc.Read(&m) || m.Empty() {
			b.StopTimer()
			vc.Close()
			vc = open()
			b.StartTimer()
			i--
		}
	}
	b.StopTimer()
	vc.Close()
}

// decodeAll returns the sample video's frames.
func decodeAll(b *testing.B, path string) []gocv.Mat {
	b.Helper()
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil {
		b.Fatal(err)
	}
	defer vc.Close()
	var frames []gocv.Mat
	for {
		m := gocv.NewMat()
		if !vc.Read(&m) || m.Empty() {
			m.Close()
			return frames
		}
		frames = append(frames, m)
	}
}

// BenchmarkDetect measures Detect per frame with the default config on
// decoded sample frames: "all" cycles through the whole video (half of it
// motion), "still" and "motion" through frames of one kind only (motion
// frames also extract boxes). The preloaded frames (265 MB) are cold in the
// CPU caches, unlike a frame detected right after decoding, so this
// overstates the in-pipeline cost that BenchmarkDecodeThenDetect measures.
func BenchmarkDetect(b *testing.B) {
	path, spec := sampleVideo(b)
	frames := decodeAll(b, path)
	defer func() {
		for _, f := range frames {
			f.Close()
		}
	}()
	sets := map[string][]gocv.Mat{
		"all":    frames,
		"still":  frames[spec.MotionEnd+1:],
		"motion": frames[spec.MotionStart : spec.MotionEnd+1],
	}
	for _, name := range []string{"all", "still", "motion"} {
		set := sets[name]
		b.Run(name, func(b *testing.B) {
			d, err := NewDetector(DefaultConfig())
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := d.Detect(set[i%len(set)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeThenDetect decodes and detects each frame in turn, timing
// the two separately, and reports their ratio. Interleaving makes the ratio
// robust against load that shifts during a run, which skews the separate
// BenchmarkDecode and BenchmarkDetect on a shared machine.
func BenchmarkDecodeThenDetect(b *testing.B) {
	path, _ := sampleVideo(b)
	d, err := NewDetector(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	m := gocv.NewMat()
	defer m.Close()
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { vc.Close() }()
	var decode, detect time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		ok := vc.Read(&m) && !m.Empty()
		t1 := time.Now()
		if !ok {
			vc.Close()
			if vc, err = gocv.VideoCaptureFile(path); err != nil {
				b.Fatal(err)
			}
			d.Reset()
			i--
			continue
		}
		if _, err := d.Detect(m); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		decode += t1.Sub(t0)
		detect += t2.Sub(t1)
	}
	b.ReportMetric(float64(decode.Nanoseconds())/float64(b.N), "decode-ns/frame")
	b.ReportMetric(float64(detect.Nanoseconds())/float64(b.N), "detect-ns/frame")
	b.ReportMetric(100*float64(detect)/float64(decode), "detect-%-of-decode")
}

// BenchmarkEncodeJPEG measures encoding a full-resolution sample frame at
// quality 85, the other per-motion-frame cost of capture.
func BenchmarkEncodeJPEG(b *testing.B) {
	frame := sampleFrame(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := EncodeJPEG(frame, 85); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkThumbnail measures the listing thumbnail capture makes of each
// published frame (160 px wide, quality 70), from the decoded image.
func BenchmarkThumbnail(b *testing.B) {
	frame := sampleFrame(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, _, err := Thumbnail(frame, 160, 70); err != nil {
			b.Fatal(err)
		}
	}
}

// sampleFrame renders frame 100 of the sample video (a moving square on
// the background), closed when the benchmark ends.
func sampleFrame(b *testing.B) gocv.Mat {
	b.Helper()
	r, err := videogen.NewRenderer(videogen.DefaultSpec())
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	frame := gocv.NewMat()
	b.Cleanup(func() { frame.Close() })
	if err := r.Frame(100, &frame); err != nil {
		b.Fatal(err)
	}
	return frame
}
