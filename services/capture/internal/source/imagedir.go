package source

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

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
	// Watch mode: sizes seen at the previous poll of files not yet read.
	polled     map[string]int64
	outOfOrder int
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
	if len(names) == 0 && !opts.Watch {
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
	if opts.Watch {
		d.polled = map[string]int64{}
		return d, nil
	}
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
	} else {
		for !d.decodeNext() {
			if !d.opts.Watch {
				return Frame{}, io.EOF
			}
			if err := d.poll(ctx); err != nil {
				return Frame{}, err
			}
		}
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

// poll waits one watch interval and appends the new files that are
// complete (same size as at the previous poll) and sort after the last
// name read. Files that arrive sorting before it cannot get a stable
// position and are skipped, counted and logged.
func (d *ImageDir) poll(ctx context.Context) error {
	iv := d.opts.WatchInterval
	if iv <= 0 {
		iv = 500 * time.Millisecond
	}
	t := time.NewTimer(iv)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		d.opts.logger().Warn("source: cannot list watched folder; retrying", "dir", d.dir, "err", err)
		return nil
	}
	last := ""
	if n := len(d.names); n > 0 {
		last = d.names[n-1]
	}
	seen := map[string]int64{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || name <= last {
			if !e.IsDir() && name < last && !strings.HasPrefix(name, ".") && !slices.Contains(d.names, name) {
				if _, warned := d.polled[name]; !warned {
					d.outOfOrder++
					d.opts.logger().Warn("source: skipping file that arrived out of name order in a watched folder",
						"path", filepath.Join(d.dir, name), "last_read", last)
				}
				seen[name] = -1
			}
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		seen[name] = fi.Size()
	}
	var ready []string
	for name, size := range seen {
		if size > 0 && d.polled[name] == size {
			ready = append(ready, name)
		}
	}
	slices.Sort(ready)
	// Only a prefix of complete files in name order can be taken: a later
	// name must not be read before an earlier one still being written.
	var pendingNames []string
	for name, size := range seen {
		if size >= 0 && !slices.Contains(ready, name) {
			pendingNames = append(pendingNames, name)
		}
	}
	slices.Sort(pendingNames)
	if len(pendingNames) > 0 {
		i := 0
		for i < len(ready) && ready[i] < pendingNames[0] {
			i++
		}
		ready = ready[:i]
	}
	d.names = append(d.names, ready...)
	d.polled = seen
	return nil
}

// OutOfOrder returns how many files of a watched folder were skipped
// because they arrived sorting before a file already read.
func (d *ImageDir) OutOfOrder() int { return d.outOfOrder }
