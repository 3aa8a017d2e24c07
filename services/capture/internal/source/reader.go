package source

import (
	"fmt"
	"os"
	"strings"
	"time"

	"gocv.io/x/gocv"

	"github.com/cefiot/cefiot/services/capture/internal/avread"
	"github.com/cefiot/cefiot/services/capture/internal/videoio"
)

// streamReader reads a live source's pictures: FFmpeg's libraries
// directly for a network stream (avread), which keeps each picture's time
// by the camera's own clock, or OpenCV's VideoCapture for a V4L2 device
// and for Intel Media SDK (mfx).
type streamReader interface {
	Grab() bool
	Retrieve(m *gocv.Mat) bool
	// position is the picture's presentation time from the stream's start.
	position() (time.Duration, bool)
	// cameraTime is the picture's time by the camera's clock.
	cameraTime() (time.Time, bool)
	declaredFPS() float64
	codec() string
	decoder() string
	Close()
}

// openReader opens target (spec with its secrets expanded); packets opens
// a network stream read by FFmpeg directly in packet mode (avread).
func openReader(spec, target string, opts Options, ioTimeout time.Duration, packets bool) (streamReader, error) {
	if isDevice(spec) {
		vc, err := videoio.OpenDevice(target)
		if err != nil {
			return nil, err
		}
		return cvReader{vc}, nil
	}
	if hw, ok := ffmpegHardware(opts.Accel); ok {
		r, err := avread.Open(target, avread.Config{Options: ffmpegOptions(ioTimeout), Packets: packets, Hardware: hw})
		if err != nil {
			return nil, err
		}
		return avReader{r}, nil
	}
	vc, err := videoio.Open(target, opts.Accel)
	if err != nil {
		return nil, err
	}
	return cvReader{vc}, nil
}

// ffmpegHardware is how FFmpeg read directly decodes under accel: any
// (the machine's VAAPI device if it has one), vaapi and none; false for
// an accelerator only OpenCV drives (mfx, Intel Media SDK).
func ffmpegHardware(accel videoio.Accel) (avread.Hardware, bool) {
	switch accel {
	case videoio.AccelNone:
		return avread.HardwareNone, true
	case videoio.AccelAny:
		return avread.HardwareAny, true
	case videoio.AccelVAAPI:
		return avread.HardwareVAAPI, true
	}
	return 0, false
}

// ffmpegOptions are the options a stream is opened with: an I/O timeout,
// and whatever the operator set in OPENCV_FFMPEG_CAPTURE_OPTIONS ("key;value"
// pairs joined by "|", as OpenCV reads them), which win.
func ffmpegOptions(ioTimeout time.Duration) map[string]string {
	opts := map[string]string{
		"rw_timeout": fmt.Sprint(ioTimeout.Microseconds()),
		// FFmpeg probes a stream's frame rate over 20 pictures by default,
		// and the pictures that arrive meanwhile are read past at every
		// connection (catchUp): a few are enough for a camera's steady rate.
		"fpsprobesize": "3",
	}
	for _, pair := range strings.Split(os.Getenv("OPENCV_FFMPEG_CAPTURE_OPTIONS"), "|") {
		if k, v, ok := strings.Cut(pair, ";"); ok && k != "" {
			opts[k] = v
		}
	}
	return opts
}

// avReader is a stream read by FFmpeg directly, decoded in software or on
// the machine's VAAPI device.
type avReader struct{ *avread.Reader }

func (r avReader) position() (time.Duration, bool) { return r.Position() }
func (r avReader) cameraTime() (time.Time, bool)   { return r.ProducerTime() }
func (r avReader) declaredFPS() float64            { return r.FPS() }
func (r avReader) codec() string                   { return r.Codec() }
func (r avReader) decoder() string                 { return r.Decoder() }

// keptPicture is a picture whose packet a stream in packet mode kept,
// undecoded (see StreamOptions.packets).
type keptPicture struct {
	r   *avread.Reader
	seq int64
}

// decode decodes the picture into m; false when its packet is no longer
// kept (or its connection is closed).
func (k keptPicture) decode(m *gocv.Mat) bool { return k.r != nil && k.r.DecodeKept(k.seq, m) }

// kept is the picture just grabbed, when r is in packet mode.
func (r avReader) kept() (keptPicture, bool) {
	if !r.Packets() {
		return keptPicture{}, false
	}
	return keptPicture{r: r.Reader, seq: r.Seq()}, true
}

// cvReader is a device or a stream read through OpenCV's VideoCapture.
type cvReader struct{ *videoio.Capture }

func (r cvReader) position() (time.Duration, bool) {
	pos := r.Get(gocv.VideoCapturePosMsec)
	if pos <= 0 || pos != pos { // none, or NaN
		return 0, false
	}
	return time.Duration(pos * float64(time.Millisecond)), true
}

func (r cvReader) cameraTime() (time.Time, bool) { return time.Time{}, false }
func (r cvReader) declaredFPS() float64          { return r.Get(gocv.VideoCaptureFPS) }
func (r cvReader) codec() string                 { return r.Codec() }

func (r cvReader) decoder() string {
	if a := r.Accel(); a != videoio.AccelNone {
		return a.String()
	}
	return "software"
}
