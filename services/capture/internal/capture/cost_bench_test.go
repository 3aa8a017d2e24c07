package capture

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"gocv.io/x/gocv"
	"golang.org/x/sys/unix"

	"github.com/cefiot/cefiot/libs/harness/videogen"
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
	clip := h264Clip(b, scene, "4M")
	subScene := scene
	subScene.Width, subScene.Height = 640, 360
	subClip := h264Clip(b, subScene, "512k") // a camera's sub-stream
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
	b.ReportMetric(1000/twoStream, "cameras/core@two-stream")
	b.ReportMetric(subDecodeMS, "sub-decode-ms/frame")
	b.ReportMetric(subDetectMS, "sub-detect-ms/frame")
	b.ReportMetric(ringMS, "ring-copy-ms/frame")
	b.ReportMetric(0, "ns/op")
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

// h264Clip renders spec and has Debian's ffmpeg encode it with libx264 as
// a camera would (a keyframe a second, no B-frames, at bitrate) into an MP4
// file.
func h264Clip(b *testing.B, spec videogen.Spec, bitrate string) string {
	b.Helper()
	dir := b.TempDir()
	src := filepath.Join(dir, "scene.avi")
	if err := videogen.Write(src, spec); err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(dir, "scene.mp4")
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-i", src, "-an", "-pix_fmt", "yuv420p",
		"-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", fmt.Sprint(int(spec.FPS)), "-b:v", bitrate, out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("ffmpeg: %v: %s", err, bytes.TrimSpace(msg))
	}
	if _, err := os.Stat(out); err != nil {
		b.Fatal(err)
	}
	return out
}
