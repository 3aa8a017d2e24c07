// Package trial is `capture detect`: it opens one camera source the way the
// capture service does, runs motion detection on its frames and prints
// what it found, with no Kafka, etcd or certificates. An operator uses it
// on a new board to check that OpenCV opens the camera and that detection
// sees what it should; the image tests use it to run capture's decoding
// and detection on every platform an image is built for.
package trial

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/cefiot/cefiot/libs/logging"
	"github.com/cefiot/cefiot/libs/redact"
	"github.com/cefiot/cefiot/services/capture/internal/motion"
	"github.com/cefiot/cefiot/services/capture/internal/source"
)

// Result is what a trial found.
type Result struct {
	Source       string        // the source's description
	Frames       int           // frames read
	MotionFrames int           // frames with motion
	FirstMotion  int           // index of the first motion frame, -1 if none
	Decode       time.Duration // wall time reading and decoding, all frames
	Detect       time.Duration // wall time detecting, all frames
}

// Run parses args (flags, then the source) and runs the trial, printing
// its result to out.
func Run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("capture detect", flag.ContinueOnError)
	maxFrames := fs.Int("max-frames", 250, "frames to read at most (0: until the source ends)")
	minArea := fs.Float64("min-area", motion.DefaultConfig().MinArea, "fraction of the detection image that must change for motion, (0, 1]")
	detectWidth := fs.Int("detect-width", motion.DefaultConfig().DetectWidth, "width of the image motion is detected on, pixels")
	frameWait := fs.Duration("frame-timeout", 30*time.Second, "longest wait for a frame (a stream that cannot be reached fails after it)")
	fs.SetOutput(io.Discard) // usage goes out through the error, or to out for -h
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(out, "usage: capture detect [flags] SOURCE")
		fs.SetOutput(out)
		fs.PrintDefaults()
		return nil
	} else if err != nil {
		return fmt.Errorf("capture detect: %w", err)
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: capture detect [flags] SOURCE (a video file, an image folder, rtsp://, http(s):// or /dev/videoN); got %d arguments after the flags", fs.NArg())
	}
	if *maxFrames < 0 {
		return fmt.Errorf("-max-frames %d: must be 0 or more", *maxFrames)
	}
	cfg := motion.DefaultConfig()
	cfg.MinArea, cfg.DetectWidth = *minArea, *detectWidth
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("-min-area %v, -detect-width %d: %w", *minArea, *detectWidth, err)
	}
	if *frameWait <= 0 {
		return fmt.Errorf("-frame-timeout %v: must be positive", *frameWait)
	}
	r, err := Detect(ctx, fs.Arg(0), cfg, *maxFrames, *frameWait)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "source: %s\n", r.Source)
	fmt.Fprintf(out, "frames read: %d\nmotion frames: %d\n", r.Frames, r.MotionFrames)
	if r.FirstMotion >= 0 {
		fmt.Fprintf(out, "first motion at frame: %d\n", r.FirstMotion)
	}
	if r.Frames > 0 {
		fmt.Fprintf(out, "decode: %.2f ms a frame\ndetect: %.2f ms a frame\n",
			float64(r.Decode.Microseconds())/1000/float64(r.Frames), float64(r.Detect.Microseconds())/1000/float64(r.Frames))
	}
	return nil
}

// Detect reads up to maxFrames frames of spec (0: all) and detects motion
// in them with cfg. It fails when a frame takes longer than frameWait.
func Detect(ctx context.Context, spec string, cfg motion.Config, maxFrames int, frameWait time.Duration) (Result, error) {
	src, err := source.Open(spec, source.Options{Logger: logging.Discard()}, source.StreamOptions{})
	if err != nil {
		return Result{}, fmt.Errorf("open %s: %w", redact.URL(spec), err)
	}
	defer src.Close()
	det, err := motion.NewDetector(cfg)
	if err != nil {
		return Result{}, err
	}
	defer det.Close()
	r := Result{Source: src.Describe(), FirstMotion: -1}
	for maxFrames == 0 || r.Frames < maxFrames {
		start := time.Now()
		fctx, cancel := context.WithTimeout(ctx, frameWait)
		f, err := src.Next(fctx)
		cancel()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return r, fmt.Errorf("no frame %d from %s within %v", r.Frames, redact.URL(spec), frameWait)
		}
		if err != nil {
			return r, fmt.Errorf("read frame %d of %s: %w", r.Frames, redact.URL(spec), err)
		}
		decoded := time.Now()
		res, err := det.Detect(f.Mat)
		if err != nil {
			return r, fmt.Errorf("detect on frame %d: %w", r.Frames, err)
		}
		r.Decode += decoded.Sub(start)
		r.Detect += time.Since(decoded)
		if res.Motion {
			if r.FirstMotion < 0 {
				r.FirstMotion = r.Frames
			}
			r.MotionFrames++
		}
		r.Frames++
	}
	return r, nil
}
