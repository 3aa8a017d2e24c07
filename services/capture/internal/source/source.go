// Package source delivers decoded frames from recorded media, a video file
// or a folder of images, behind one small interface, so that capture can
// treat a file like a camera.
//
// Frames are 8-bit BGR gocv.Mats owned by the source: a Frame's Mat is
// valid until the next call to Next or Close, which lets a source decode
// every frame into the same memory. Clone the Mat to keep it longer.
//
// Sources are not safe for concurrent use.
package source

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"time"

	"gocv.io/x/gocv"

	"github.com/cefiot/cefiot/services/capture/internal/videoio"
)

// Frame is one decoded frame.
type Frame struct {
	// Mat is the decoded 8-bit BGR image, owned by the source and valid
	// until the next call to Next or Close.
	Mat gocv.Mat
	// Index is the frame's position in the session, starting at 0.
	// Frames a source skips (unreadable images) take no index.
	Index uint64
	// CaptureTime is the wall-clock time at which the source delivered the
	// frame. Recorded media carry no trustworthy capture time.
	CaptureTime time.Time
	// Offset is the frame's position on the media timeline: Index divided
	// by the source's frame rate.
	Offset time.Duration
	// Name is the image's file name for image folders, empty for videos.
	Name string
	// StreamTime, for a live stream, is the picture's time by the stream's
	// own presentation times (see liveClock): unlike CaptureTime, it does
	// not move when the picture is read late. Zero for other sources.
	StreamTime time.Time
	// CameraTime, for a network stream whose camera tells its clock (an
	// RTSP camera's RTCP sender reports), is the picture's time by that
	// clock: the same for every reader of the camera, whenever it
	// connected and however it decodes. Zero when the stream gives none
	// (yet: a camera's first report comes within seconds of connecting).
	CameraTime time.Time
	// Full, for a two-stream camera (Paired), returns the main stream's
	// picture of the frame's moment, valid until the next call to Next or
	// Close; false when the main stream has none (Mat is then the picture
	// to keep). nil for other sources: Mat is the picture.
	Full func() (gocv.Mat, bool)
	// kept, from a stream in packet mode, is the picture undecoded (Mat
	// is then empty).
	kept keptPicture
}

// Picture is the picture to keep for f: the main stream's for a two-stream
// camera (or its sub-stream's when the main one has none), else Mat.
func (f Frame) Picture() gocv.Mat {
	if f.Full != nil {
		if m, ok := f.Full(); ok {
			return m
		}
	}
	return f.Mat
}

// Source yields frames until it returns io.EOF.
type Source interface {
	// Next returns the next frame. It returns io.EOF (unwrapped) once the
	// media is exhausted, and ctx.Err() when ctx ends, including while
	// waiting for the real-time pace.
	Next(ctx context.Context) (Frame, error)
	// Close releases the source's resources; the last Frame's Mat becomes
	// invalid.
	Close() error
	// Describe returns a one-line human-readable description of the
	// source, such as its path, size and frame rate.
	Describe() string
}

// Thinner is a Source that can skip frames its consumer will not look at
// (a detection rate cap) without converting them: FFmpeg still decodes
// each (the frames that follow depend on it), but the conversion to BGR
// and the copy, about a third of a frame's cost, are saved.
type Thinner interface {
	// SetMinInterval makes Next deliver frames at least d apart on the
	// media timeline (Frame.Offset); 0 delivers every frame. Frame
	// indexes count the skipped frames too.
	SetMinInterval(d time.Duration)
}

// thinning tracks a Thinner's interval and the next frame due.
type thinning struct {
	interval time.Duration
	due      time.Duration // Offset of the next frame to deliver
	skipped  int64
}

// SetMinInterval sets the interval; the next frame is due at once.
func (t *thinning) SetMinInterval(d time.Duration) { t.interval, t.due = max(d, 0), 0 }

// skip reports whether a frame at offset is not due.
func (t *thinning) skip(offset time.Duration) bool { return t.interval > 0 && offset < t.due }

// delivered notes a frame delivered at offset.
func (t *thinning) delivered(offset time.Duration) {
	if t.interval > 0 {
		t.due = offset + t.interval
	}
}

// Skipped is how many frames were skipped without conversion.
func (t *thinning) Skipped() int64 { return t.skipped }

// DefaultFPS is the frame rate assumed for image folders and for videos
// that do not declare a usable one.
const DefaultFPS = 25.0

// Options tune a source. The zero value delivers frames as fast as they
// decode, at the media's own frame rate for Offset.
type Options struct {
	// Realtime paces Next at the frame rate: frame i is delivered no
	// earlier than i/FPS after the first. A consumer that falls behind is
	// not caught up by dropping frames. Off by default.
	Realtime bool
	// FPS overrides the frame rate used for pacing and Offset. 0 means the
	// video's declared rate, or DefaultFPS for image folders.
	FPS float64
	// Logger receives warnings, such as files skipped in an image folder.
	// nil means slog.Default().
	Logger *slog.Logger
	// Now returns the current time for Frame.CaptureTime; nil means
	// time.Now.
	Now func() time.Time
	// Watch makes an image folder a live source: after its files it keeps
	// polling for new ones (names sorting after the last one read) instead
	// of ending.
	Watch bool
	// WatchInterval is the polling period of a watched folder (default
	// 500ms). A new file is read once its size is the same at two polls.
	WatchInterval time.Duration
	// Accel is the decoding acceleration of videos and network streams:
	// videoio.AccelNone (the zero value) decodes in software, AccelAny
	// uses the machine's accelerator if it has one, a named one is
	// required (the open fails without it).
	Accel videoio.Accel
}

// accelHint adds to an open error that a required accelerator may be the
// cause.
func (o Options) accelHint() string {
	if o.Accel == videoio.AccelNone || o.Accel == videoio.AccelAny {
		return ""
	}
	return ", or hardware decoding " + o.Accel.String() + " is not available on this machine"
}

// Decoding is a Source that tells how it decodes.
type Decoding interface {
	// Decoder is "software", or the hardware acceleration in use; empty
	// while nothing is open.
	Decoder() string
}

func (o Options) validate() error {
	if math.IsNaN(o.FPS) || math.IsInf(o.FPS, 0) || o.FPS < 0 || o.FPS > 1000 {
		return fmt.Errorf("source: options: FPS must be in [0, 1000], got %v", o.FPS)
	}
	return nil
}

func (o Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// fps picks the configured rate, else the media's declared one if usable,
// else DefaultFPS.
func (o Options) fps(declared float64) float64 {
	switch {
	case o.FPS > 0:
		return o.FPS
	case declared > 0 && declared <= 1000 && !math.IsNaN(declared):
		return declared
	default:
		return DefaultFPS
	}
}

// Open opens spec as a live stream (rtsp://, http(s)://, /dev/videoN; see
// OpenStream), as an image folder if it is a directory, and as a video file
// otherwise.
func Open(path string, opts Options, sopts StreamOptions) (Source, error) {
	if IsStream(path) {
		return OpenStream(path, opts, sopts)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("source: open %s: %w", path, err)
	}
	if fi.IsDir() {
		return OpenImageDir(path, opts)
	}
	return OpenVideoFile(path, opts)
}

// pacer delays frames to a fixed rate measured from the first frame.
type pacer struct {
	enabled bool
	fps     float64
	start   time.Time
}

// wait blocks until frame index is due or ctx ends.
func (p *pacer) wait(ctx context.Context, index uint64) error {
	if !p.enabled {
		return nil
	}
	if index == 0 || p.start.IsZero() {
		p.start = time.Now()
		return nil
	}
	due := p.start.Add(offset(index, p.fps))
	d := time.Until(due)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func offset(index uint64, fps float64) time.Duration {
	return time.Duration(float64(index) / fps * float64(time.Second))
}

// checkFile reports, naming path, why a regular file cannot be read.
func checkFile(path string) (os.FileInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (mode %s)", fi.Mode())
	}
	if fi.Size() == 0 {
		return nil, fmt.Errorf("file is empty")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	f.Close()
	return fi, nil
}
