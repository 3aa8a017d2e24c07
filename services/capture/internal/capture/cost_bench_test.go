package capture

import (
	"fmt"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"gocv.io/x/gocv"
	"golang.org/x/sys/unix"

	"github.com/cefiot/cefiot/libs/harness/videogen"
	"github.com/cefiot/cefiot/services/capture/internal/avread"
	"github.com/cefiot/cefiot/services/capture/internal/motion"
	"github.com/cefiot/cefiot/services/capture/internal/videoio"
)

// Assumptions of BenchmarkCamerasPerCore: a 1080p H.264 camera at 15 fps
// (a keyframe a second) with motion a tenth of the time, motion frames
// stored as JPEG (quality 80) with a 320-pixel thumbnail.
const (
	costFPS          = 15
	costMotionShare  = 0.10
	costDetectCapFPS = 5
	// costFrames is how many frames each stage is measured over, whatever
	// b.N is (make bench runs every benchmark 20 times, too few frames).
	costFrames = 300
)

// BenchmarkCamerasPerCore measures what one camera costs capture, stage by
// stage, in CPU time, on one CPU (this thread, and the decoding threads
// FFmpeg starts from it, are pinned to it): decoding a
// frame (grab), converting it to BGR (what a rate-capped source skips),
// detecting motion, and encoding a motion frame. From those it reports how
// many cameras one core sustains at the full 15 fps and with detection
// capped at 5 fps (the source thins the rest: decoded, not converted).
//
//	go test -run '^$' -bench CamerasPerCore -benchtime 1x ./internal/capture
func BenchmarkCamerasPerCore(b *testing.B) {
	scene := videogen.Spec{Width: 1920, Height: 1080, Frames: 150, FPS: costFPS, MotionStart: 1, MotionEnd: 149, Noise: 6}
	clip := videogen.H264Clip(b, scene, "4M", 0)
	subScene := scene
	subScene.Width, subScene.Height = 640, 360
	subClip := videogen.H264Clip(b, subScene, "512k", 0) // a camera's sub-stream
	// One core: this thread (which every OpenCV call below runs on) may
	// only run on one CPU, and so may the decoding threads FFmpeg starts
	// from it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var all, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		b.Fatal(err)
	}
	one.Set(0)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		b.Fatalf("pin to one CPU: %v", err)
	}
	defer func() { _ = unix.SchedSetaffinity(0, &all) }()
	det, err := motion.NewDetector(motion.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer det.Close()
	// Each stage is measured in a pass of its own over costFrames: FFmpeg
	// decodes ahead in its threads, so a stage timed between two others
	// would be charged some of their work.
	decodePass := func(clip string, read bool, keep func(gocv.Mat)) time.Duration {
		m := gocv.NewMat()
		defer m.Close()
		var vc *videoio.Capture
		start := processCPU()
		for i := 0; i < costFrames; i++ {
			if i%150 == 0 { // the clip's end: from the start again
				if vc != nil {
					vc.Close()
				}
				vc = openClip(b, clip)
			}
			if !read {
				vc.Grab()
				continue
			}
			if !vc.Read(&m) || m.Empty() {
				b.Fatalf("frame %d: cannot decode the clip", i)
			}
			keep(m)
		}
		vc.Close()
		return processCPU() - start
	}
	var kept []gocv.Mat
	defer func() {
		for _, m := range kept {
			m.Close()
		}
	}()
	probe := openClip(b, clip)
	b.Logf("decoded by %s", map[bool]string{true: "software", false: probe.Accel().String()}[probe.Accel() == videoio.AccelNone])
	probe.Close()
	b.ResetTimer()
	grab := decodePass(clip, false, nil)
	read := decodePass(clip, true, func(m gocv.Mat) {
		if len(kept) < 15 {
			kept = append(kept, m.Clone())
		}
	})
	var subKept []gocv.Mat
	defer func() {
		for _, m := range subKept {
			m.Close()
		}
	}()
	subGrab := decodePass(subClip, false, nil)
	subRead := decodePass(subClip, true, func(m gocv.Mat) {
		if len(subKept) < 15 {
			subKept = append(subKept, m.Clone())
		}
	})
	// A two-stream camera copies each main picture into its ring.
	ring := gocv.NewMat()
	defer ring.Close()
	start := processCPU()
	for i := 0; i < costFrames; i++ {
		kept[i%len(kept)].CopyTo(&ring)
	}
	ringCopy := processCPU() - start
	start = processCPU()
	for i := 0; i < costFrames; i++ {
		if _, err := det.Detect(subKept[i%len(subKept)]); err != nil {
			b.Fatal(err)
		}
	}
	subDetect := processCPU() - start
	start = processCPU()
	for i := 0; i < costFrames; i++ {
		if _, err := det.Detect(kept[i%len(kept)]); err != nil {
			b.Fatal(err)
		}
	}
	detect := processCPU() - start
	encoded := costFrames / 10
	start = processCPU()
	for i := 0; i < encoded; i++ {
		m := kept[i%len(kept)]
		if _, err := motion.EncodeJPEG(m, 80); err != nil {
			b.Fatal(err)
		}
		if _, _, _, err := motion.Thumbnail(m, 320, 70); err != nil {
			b.Fatal(err)
		}
	}
	encode := processCPU() - start
	b.StopTimer()
	ms := func(d time.Duration, n int) float64 { return float64(d) / float64(time.Millisecond) / float64(n) }
	decodeMS, convertMS, detectMS, encodeMS := ms(grab, costFrames), ms(read-grab, costFrames), ms(detect, costFrames), ms(encode, encoded)
	// CPU milliseconds one camera needs per second.
	full := costFPS*(decodeMS+convertMS+detectMS) + costMotionShare*costFPS*encodeMS
	capped := costFPS*decodeMS + costDetectCapFPS*(convertMS+detectMS) + costMotionShare*costDetectCapFPS*encodeMS
	b.ReportMetric(decodeMS, "decode-ms/frame")
	b.ReportMetric(convertMS, "convert-ms/frame")
	b.ReportMetric(detectMS, "detect-ms/frame")
	b.ReportMetric(encodeMS, "encode-ms/motion-frame")
	subDecodeMS, subConvertMS, subDetectMS, ringMS := ms(subGrab, costFrames), ms(subRead-subGrab, costFrames), ms(subDetect, costFrames), ms(ringCopy, costFrames)
	// Two streams: the main one decoded, converted and copied into the
	// ring at its full rate, the 640x360 sub-stream decoded at its full
	// rate and converted and detected at the cap.
	twoStream := costFPS*(decodeMS+convertMS+ringMS) + costFPS*subDecodeMS + costDetectCapFPS*(subConvertMS+subDetectMS) + costMotionShare*costDetectCapFPS*encodeMS
	b.ReportMetric(1000/full, "cameras/core@15fps")
	b.ReportMetric(1000/capped, "cameras/core@detect5fps")
	// Two streams, the main one kept undecoded (packet mode, the default)
	// and decoded only for the frames stored: measured over the clip with
	// motion in a window of a tenth of it, and with motion throughout.
	keptShare := keptMainPass(b, clip, costMotionShare)
	keptAlways := keptMainPass(b, clip, 1)
	twoStreamSub := costFPS*subDecodeMS + costDetectCapFPS*(subConvertMS+subDetectMS)
	twoStreamKept := keptShare + twoStreamSub + costMotionShare*costDetectCapFPS*encodeMS
	twoStreamKeptAlways := keptAlways + twoStreamSub + costDetectCapFPS*encodeMS
	b.ReportMetric(1000/twoStream, "cameras/core@two-stream")
	b.ReportMetric(1000/twoStreamKept, "cameras/core@two-stream-kept")
	b.ReportMetric(1000/twoStreamKeptAlways, "cameras/core@two-stream-kept-motion-always")
	b.ReportMetric(keptShare/costFPS, "kept-main-ms/frame")
	b.ReportMetric(subDecodeMS, "sub-decode-ms/frame")
	b.ReportMetric(subDetectMS, "sub-detect-ms/frame")
	b.ReportMetric(ringMS, "ring-copy-ms/frame")
	b.ReportMetric(0, "ns/op")
	if b.N > 1 {
		return // printed by the first run (b.N 1) already: the measure does not depend on b.N
	}
	// Printed, not logged: go test cuts a benchmark's log at 10 lines.
	fmt.Printf("\nCPU ms per frame, one core, 1080p H.264 at %d fps:\n\n%s", costFPS, costTable([][2]string{
		{"decode 1080p", fmt.Sprintf("%.2f", decodeMS)},
		{"convert to BGR", fmt.Sprintf("%.2f", convertMS)},
		{"detect motion (1080p picture)", fmt.Sprintf("%.2f", detectMS)},
		{"encode a motion frame (JPEG q80, thumbnail)", fmt.Sprintf("%.2f", encodeMS)},
		{"two streams: decode the 640x360 sub-stream", fmt.Sprintf("%.2f", subDecodeMS)},
		{"two streams: convert and detect on it", fmt.Sprintf("%.2f", subConvertMS+subDetectMS)},
		{"two streams: copy a main picture into the ring", fmt.Sprintf("%.2f", ringMS)},
		{"two streams: main kept, decoded for motion (per frame of the stream)", fmt.Sprintf("%.2f", keptShare/costFPS)},
	}))
	fmt.Printf("\ncameras one core sustains (motion %.0f %% of the time):\n\n%s\n", 100*costMotionShare, costTable([][2]string{
		{"one stream, every frame looked at", fmt.Sprintf("%.1f", 1000/full)},
		{fmt.Sprintf("one stream, detection capped at %d fps", costDetectCapFPS), fmt.Sprintf("%.1f", 1000/capped)},
		{"two streams, every main picture decoded (named accelerator)", fmt.Sprintf("%.1f", 1000/twoStream)},
		{"two streams, main decoded only for motion frames (default)", fmt.Sprintf("%.1f", 1000/twoStreamKept)},
		{"the same, motion all the time", fmt.Sprintf("%.1f", 1000/twoStreamKeptAlways)},
	}))
}

// costTable formats rows of two columns as a Markdown table.
func costTable(rows [][2]string) string {
	var sb strings.Builder
	sb.WriteString("| what | value |\n|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&sb, "| %s | %s |\n", r[0], r[1])
	}
	return sb.String()
}

// keptMainPass measures what a main stream kept in packet mode costs per
// second of video, in CPU ms: every packet read and kept, and, while
// motion lasts (a window of share of the clip, starting mid-way through a
// group of pictures), the pictures at the detection cap decoded and
// converted, each from where the decoder stands or from its keyframe.
func keptMainPass(b *testing.B, clip string, share float64) float64 {
	b.Helper()
	m := gocv.NewMat()
	defer m.Close()
	const clipFrames = 150
	window := int(share * clipFrames)
	first := clipFrames/4 + costFPS/2 // mid-way through a group of pictures
	if window >= clipFrames {
		first = 0
	}
	step := costFPS / costDetectCapFPS
	start := processCPU()
	for pass := 0; pass < costFrames/clipFrames; pass++ {
		r, err := avread.Open(clip, avread.Config{Packets: true, Hardware: avread.HardwareAny})
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; r.Grab(); i++ {
			if i >= first && i < first+window && (i-first)%step == 0 && !r.DecodeKept(r.Seq(), &m) {
				b.Fatalf("picture %d: not decoded", i)
			}
		}
		r.Close()
	}
	seconds := float64(costFrames) / costFPS
	return float64(processCPU()-start) / float64(time.Millisecond) / seconds
}

// processCPU is the CPU time of the process (user and system, all its
// threads: FFmpeg decodes in threads of its own).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// openClip opens the clip as capture opens a camera by default (-hwaccel
// any: the machine's hardware decoder if it has one).
func openClip(b *testing.B, path string) *videoio.Capture {
	b.Helper()
	vc, err := videoio.Open(path, videoio.AccelAny)
	if err != nil {
		b.Fatalf("open %s: %v", path, err)
	}
	return vc
}
