package source

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gocv.io/x/gocv"
)

// ImageDir is a Source reading the image files of one folder in lexical
// order of their names (zero-pad frame numbers). Sub-folders and names
// starting with "." are ignored. A file OpenCV cannot decode is skipped
// with a warning and counted in Skipped; it does not end the stream.
type ImageDir struct {
	dir     string
	opts    Options
	names   []string // candidate files, sorted
	pos     int      // next name to try
	mat     gocv.Mat
	name    string // name of the image in mat
	pending bool   // mat holds the image decoded by OpenImageDir
	closed  bool
	next    uint64
	fps     float64
	skipped int
	pace    pacer
}

var _ Source = (*ImageDir)(nil)

// OpenImageDir lists dir and decodes its first readable image, so that a
// missing folder, or one without any decodable image, is reported here.
func OpenImageDir(dir string, opts Options) (*ImageDir, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, fmt.Errorf("source: open image folder %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		names = append(names, e.Name())
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("source: open image folder %s: no files", dir)
	}
	d := &ImageDir{
		dir:   dir,
		opts:  opts,
		names: names,
		mat:   gocv.NewMat(),
		fps:   opts.fps(0),
	}
	d.pace = pacer{enabled: opts.Realtime, fps: d.fps}
	if !d.decodeNext() {
		d.Close()
		return nil, fmt.Errorf("source: open image folder %s: none of its %d files is an image OpenCV can decode", dir, len(names))
	}
	d.pending = true
	return d, nil
}

// decodeNext decodes the next decodable file into d.mat, skipping and
// counting the others. It reports false when no file is left.
func (d *ImageDir) decodeNext() bool {
	for d.pos < len(d.names) {
		name := d.names[d.pos]
		d.pos++
		path := filepath.Join(d.dir, name)
		m := gocv.IMRead(path, gocv.IMReadColor)
		if m.Empty() {
			m.Close()
			d.skipped++
			d.opts.logger().Warn("source: skipping file that is not a decodable image",
				"path", path, "skipped", d.skipped)
			continue
		}
		d.mat.Close()
		d.mat = m
		d.name = name
		return true
	}
	return false
}

// Next returns the next image, or io.EOF after the last one.
func (d *ImageDir) Next(ctx context.Context) (Frame, error) {
	if d.closed {
		return Frame{}, fmt.Errorf("source: image folder %s: Next after Close", d.dir)
	}
	if err := ctx.Err(); err != nil {
		return Frame{}, err
	}
	if d.pending {
		d.pending = false
	} else if !d.decodeNext() {
		return Frame{}, io.EOF
	}
	if err := d.pace.wait(ctx, d.next); err != nil {
		d.pending = true
		return Frame{}, err
	}
	f := Frame{
		Mat:         d.mat,
		Index:       d.next,
		CaptureTime: d.opts.now(),
		Offset:      offset(d.next, d.fps),
		Name:        d.name,
	}
	d.next++
	return f, nil
}

// Close releases the last image. It is safe to call more than once.
func (d *ImageDir) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	if err := d.mat.Close(); err != nil {
		return fmt.Errorf("source: close image folder %s: %w", d.dir, err)
	}
	return nil
}

// Describe returns the folder, its file count and frame rate.
func (d *ImageDir) Describe() string {
	pace := "as fast as decoded"
	if d.opts.Realtime {
		pace = "real time"
	}
	return fmt.Sprintf("image folder %s (%d files, %d skipped so far, %g fps, %s)",
		d.dir, len(d.names), d.skipped, d.fps, pace)
}

// Skipped returns how many files so far could not be decoded.
func (d *ImageDir) Skipped() int { return d.skipped }

// FPS returns the frame rate used for Offset and pacing.
func (d *ImageDir) FPS() float64 { return d.fps }
