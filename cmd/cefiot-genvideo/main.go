// Command cefiot-genvideo writes the deterministic sample video (and
// optionally the same frames as a folder of JPEGs) whose motion is confined
// to a known range of frames, for demos and for testing capture.
//
//	cefiot-genvideo -out sample.avi [-frames 200 -motion-start 50 -motion-end 149
//	    -width 768 -height 576 -fps 25] [-images DIR]
//
// -motion-start and -motion-end are both inclusive: the defaults give
// exactly 100 motion frames.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/harness/videogen"
	"github.com/cefiot/cefiot/libs/program"
)

func main() {
	program.Main("cefiot-genvideo", func(ctx context.Context, args []string) error { return realMain(ctx, args, os.Stdout, os.Stderr) })
}

func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	def := videogen.DefaultSpec()
	fs := flag.NewFlagSet("cefiot-genvideo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "MJPG video file to write (.avi)")
	images := fs.String("images", "", "also (or only) write the frames as numbered JPEGs into this folder")
	spec := def
	fs.IntVar(&spec.Frames, "frames", def.Frames, "number of frames")
	fs.IntVar(&spec.MotionStart, "motion-start", def.MotionStart, "first motion frame (0-based, inclusive, >= 1)")
	fs.IntVar(&spec.MotionEnd, "motion-end", def.MotionEnd, "last motion frame (inclusive, < frames)")
	fs.IntVar(&spec.Width, "width", def.Width, "frame width in pixels")
	fs.IntVar(&spec.Height, "height", def.Height, "frame height in pixels")
	fs.Float64Var(&spec.FPS, "fps", def.FPS, "frame rate stored in the video")
	fs.IntVar(&spec.JPEGQuality, "quality", 0, "JPEG quality of -images files, 1..100 (0: 90)")
	if err := config.Parse(fs, args, nil); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *out == "" && *images == "" {
		return errors.New("nothing to do: give -out FILE.avi and/or -images DIR")
	}
	if err := spec.Validate(); err != nil {
		return err
	}
	summary := fmt.Sprintf("%dx%d, %g fps, %d frames, motion in frames %d..%d inclusive (%d frames)",
		spec.Width, spec.Height, spec.FPS, spec.Frames, spec.MotionStart, spec.MotionEnd, spec.MotionFrames())
	if *out != "" {
		if err := videogen.Write(*out, spec); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s: %s\n", *out, summary)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if *images != "" {
		if err := videogen.WriteImages(*images, spec); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s/%s..%s: %s\n", *images, videogen.ImageName(0), videogen.ImageName(spec.Frames-1), summary)
	}
	return nil
}
