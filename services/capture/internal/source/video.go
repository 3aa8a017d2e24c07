package source

import (
	"context"
	"fmt"
	"io"

	"gocv.io/x/gocv"

	"github.com/cefiot/cefiot/services/capture/internal/videoio"
)

// VideoFile is a Source reading a video file through OpenCV's VideoCapture
// (FFmpeg backend).
type VideoFile struct {
	path     string
	opts     Options
	vc       *videoio.Capture
	mat      gocv.Mat
	pending  bool // mat holds the frame read by OpenVideoFile
	done     bool
	closed   bool
	next     uint64
	fps      float64
	width    int
	height   int
	declared int // frame count the container declares; may be wrong
	codec    string
	pace     pacer
	thinning
}

var (
	_ Source  = (*VideoFile)(nil)
	_ Thinner = (*VideoFile)(nil)
)

// OpenVideoFile opens the video at path and decodes its first frame, so
// that a missing, unreadable, unsupported, truncated-to-nothing or corrupt
// file is reported here, naming the path and the reason, rather than as an
// early io.EOF.
func OpenVideoFile(path string, opts Options) (*VideoFile, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if _, err := checkFile(path); err != nil {
		return nil, fmt.Errorf("source: open video %s: %w", path, err)
	}
	// FFmpeg explicitly: with the default preference OpenCV 4.6 falls back
	// to GStreamer for files FFmpeg rejects, which only adds noisy warnings,
	// and may treat a name containing '%' as an image-sequence pattern.
	vc, err := videoio.Open(path, opts.Accel)
	if err != nil {
		return nil, fmt.Errorf("source: open video %s: OpenCV cannot open it (not a video, unsupported codec or corrupt%s): %v", path, opts.accelHint(), err)
	}
	v := &VideoFile{
		path:     path,
		opts:     opts,
		vc:       vc,
		mat:      gocv.NewMat(),
		width:    int(vc.Get(gocv.VideoCaptureFrameWidth)),
		height:   int(vc.Get(gocv.VideoCaptureFrameHeight)),
		declared: int(vc.Get(gocv.VideoCaptureFrameCount)),
		codec:    vc.Codec(),
	}
	v.fps = opts.fps(vc.Get(gocv.VideoCaptureFPS))
	v.pace = pacer{enabled: opts.Realtime, fps: v.fps}
	if !vc.Read(&v.mat) || v.mat.Empty() {
		v.Close()
		return nil, fmt.Errorf("source: open video %s: OpenCV opened it but cannot decode a first frame (truncated or corrupt)", path)
	}
	v.pending = true
	return v, nil
}

// Next returns the next frame, or io.EOF after the last one.
func (v *VideoFile) Next(ctx context.Context) (Frame, error) {
	if v.closed {
		return Frame{}, fmt.Errorf("source: video %s: Next after Close", v.path)
	}
	if err := ctx.Err(); err != nil {
		return Frame{}, err
	}
	if v.done {
		return Frame{}, io.EOF
	}
	if v.pending && v.skip(offset(v.next, v.fps)) {
		v.pending = false
		v.next++
		v.skipped++
	}
	if !v.pending {
		// Frames that are not due are decoded but not converted.
		for v.skip(offset(v.next, v.fps)) {
			v.vc.Grab()
			v.next++
			v.skipped++
		}
	}
	if v.pending {
		v.pending = false
	} else if !v.vc.Read(&v.mat) || v.mat.Empty() {
		// OpenCV does not tell the end of the stream from a decoding
		// failure; either way nothing more can be read.
		v.done = true
		return Frame{}, io.EOF
	}
	if err := v.pace.wait(ctx, v.next); err != nil {
		// Keep the decoded frame for the next call.
		v.pending = true
		return Frame{}, err
	}
	f := Frame{
		Mat:         v.mat,
		Index:       v.next,
		CaptureTime: v.opts.now(),
		Offset:      offset(v.next, v.fps),
	}
	v.delivered(f.Offset)
	v.next++
	return f, nil
}

// Close releases the decoder. It is safe to call more than once.
func (v *VideoFile) Close() error {
	if v.closed {
		return nil
	}
	v.closed = true
	if v.vc != nil {
		v.vc.Close()
	}
	if err := v.mat.Close(); err != nil {
		return fmt.Errorf("source: close video %s: %w", v.path, err)
	}
	return nil
}

// Describe returns the path, size, frame rate, codec and declared length.
func (v *VideoFile) Describe() string {
	pace := "as fast as decoded"
	if v.opts.Realtime {
		pace = "real time"
	}
	return fmt.Sprintf("video file %s (%dx%d, %s decoded by %s, %g fps, %d frames declared, %s)",
		v.path, v.width, v.height, v.codec, v.Decoder(), v.fps, v.declared, pace)
}

// Decoder is "software", or the hardware acceleration decoding the video.
func (v *VideoFile) Decoder() string { return cvReader{v.vc}.decoder() }

// FPS returns the frame rate used for Offset and pacing.
func (v *VideoFile) FPS() float64 { return v.fps }

// Size returns the frame size the container declares.
func (v *VideoFile) Size() (width, height int) { return v.width, v.height }

// DeclaredFrames returns the frame count stored in the container, which
// can be wrong for truncated files; only io.EOF ends the stream.
func (v *VideoFile) DeclaredFrames() int { return v.declared }
