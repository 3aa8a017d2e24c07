// Package videogen renders a deterministic sample video whose motion is
// confined to a known, documented range of frames.
//
// Every frame shows the same static, textured background (a colour gradient
// with a fixed pixel texture, shapes and text, so that JPEG compression
// behaves as it does on real footage) and a patterned square. The square sits
// still before Spec.MotionStart, moves by a non-zero offset on every frame
// from Spec.MotionStart to Spec.MotionEnd (both inclusive), and then stays at
// its final position. Frame i therefore differs from frame i-1 exactly when
// MotionStart <= i <= MotionEnd, which is what a frame-to-previous-frame
// motion detector should report.
//
// Write produces an MJPG .avi through OpenCV's VideoWriter and WriteImages a
// folder of numbered JPEG files holding the same frames. Because MJPG and JPEG
// code every frame independently and deterministically, identical frames
// outside the motion range decode to identical pixels, with one exception:
// OpenCV 4.6 writes MJPG through FFmpeg, whose rate control codes frame 0
// of the .avi at a lower quality than the rest, so decoded frame 1 differs
// from decoded frame 0 by a few grey levels (at most about 30, and only a
// few after a slight blur or downscale). A detector with any sensible pixel
// threshold ignores it; the JPEG folder does not have it.
package videogen

import (
	"fmt"
	"image"
	"image/color"
	"os"
	"path/filepath"

	"gocv.io/x/gocv"
)

// Spec describes a sample video. Start from DefaultSpec and change what you
// need; Validate reports the first invalid field.
type Spec struct {
	// Width and Height are the frame size in pixels (each at least 64).
	Width, Height int
	// Frames is the number of frames to render (at least 2).
	Frames int
	// FPS is the frame rate stored in the video container (> 0).
	FPS float64
	// MotionStart and MotionEnd are the first and the last frame index
	// (0-based, both INCLUSIVE) that differ from their previous frame.
	// 1 <= MotionStart <= MotionEnd < Frames. Frame 0 has no predecessor
	// and is never a motion frame.
	MotionStart, MotionEnd int
	// SquareSize is the side of the moving square in pixels. 0 selects
	// min(Width, Height)/6.
	SquareSize int
	// Speed is how far the square moves per motion frame along each axis,
	// in pixels. 0 selects max(2, min(Width, Height)/72).
	Speed int
	// JPEGQuality is the quality (1..100) of the files written by
	// WriteImages. 0 selects 90. The MJPG video uses OpenCV's default.
	JPEGQuality int
	// Noise adds sensor noise of up to +-Noise grey levels (0..64), new in
	// every frame, as a real camera's picture has: then every frame
	// differs a little from the last (a detector's pixel threshold
	// ignores it), and a video codec has real work to do. 0: none.
	Noise int
}

// DefaultSpec returns the project's sample video: 768x576 at 25 fps, 200
// frames, motion in frames 50..149 inclusive (exactly 100 motion frames).
func DefaultSpec() Spec {
	return Spec{
		Width:       768,
		Height:      576,
		Frames:      200,
		FPS:         25,
		MotionStart: 50,
		MotionEnd:   149,
	}
}

// ImageName returns the file name WriteImages uses for frame i. Names are
// zero-padded so that a lexical sort yields frame order.
func ImageName(i int) string {
	return fmt.Sprintf("frame_%06d.jpg", i)
}

// Validate reports the first field of s that is out of range.
func (s Spec) Validate() error {
	switch {
	case s.Width < 64:
		return fmt.Errorf("videogen: spec: Width must be >= 64, got %d", s.Width)
	case s.Height < 64:
		return fmt.Errorf("videogen: spec: Height must be >= 64, got %d", s.Height)
	case s.Frames < 2:
		return fmt.Errorf("videogen: spec: Frames must be >= 2, got %d", s.Frames)
	case !(s.FPS > 0) || s.FPS > 1000:
		return fmt.Errorf("videogen: spec: FPS must be in (0, 1000], got %v", s.FPS)
	case s.MotionStart < 1 || s.MotionStart >= s.Frames:
		return fmt.Errorf("videogen: spec: MotionStart must be in [1, Frames-1=%d], got %d", s.Frames-1, s.MotionStart)
	case s.MotionEnd < s.MotionStart || s.MotionEnd >= s.Frames:
		return fmt.Errorf("videogen: spec: MotionEnd must be in [MotionStart=%d, Frames-1=%d], got %d", s.MotionStart, s.Frames-1, s.MotionEnd)
	case s.SquareSize < 0:
		return fmt.Errorf("videogen: spec: SquareSize must be >= 0, got %d", s.SquareSize)
	case s.Speed < 0:
		return fmt.Errorf("videogen: spec: Speed must be >= 0, got %d", s.Speed)
	case s.JPEGQuality < 0 || s.JPEGQuality > 100:
		return fmt.Errorf("videogen: spec: JPEGQuality must be in [0, 100], got %d", s.JPEGQuality)
	case s.Noise < 0 || s.Noise > 64:
		return fmt.Errorf("videogen: spec: Noise must be in [0, 64], got %d", s.Noise)
	}
	sq, sp := s.squareSize(), s.speed()
	if minDim := min(s.Width, s.Height); sq < 8 || sq+2*sp > minDim {
		return fmt.Errorf("videogen: spec: SquareSize %d plus twice Speed %d must fit in %d pixels (and SquareSize >= 8)", sq, sp, minDim)
	}
	return nil
}

// IsMotion reports whether frame i differs from frame i-1.
func (s Spec) IsMotion(i int) bool {
	return i >= s.MotionStart && i <= s.MotionEnd
}

// MotionFrames returns the number of frames for which IsMotion is true.
func (s Spec) MotionFrames() int {
	return s.MotionEnd - s.MotionStart + 1
}

func (s Spec) squareSize() int {
	if s.SquareSize > 0 {
		return s.SquareSize
	}
	return min(s.Width, s.Height) / 6
}

func (s Spec) speed() int {
	if s.Speed > 0 {
		return s.Speed
	}
	return max(2, min(s.Width, s.Height)/72)
}

func (s Spec) jpegQuality() int {
	if s.JPEGQuality > 0 {
		return s.JPEGQuality
	}
	return 90
}

// SquareAt returns the rectangle covered by the moving square in frame i.
func (s Spec) SquareAt(i int) image.Rectangle {
	sq, sp := s.squareSize(), s.speed()
	// k counts the moves made up to and including frame i.
	k := min(max(i-s.MotionStart+1, 0), s.MotionFrames())
	// Start left of centre and bounce along both axes (a triangle wave
	// with period 2*span), so every move changes the position.
	x0, y0 := s.Width/4-sq/2, s.Height/3-sq/2
	x := bounce(x0+k*sp, s.Width-sq)
	y := bounce(y0+k*(sp/2+1), s.Height-sq)
	return image.Rect(x, y, x+sq, y+sq)
}

// bounce folds v into [0, span] like a ball between two walls.
func bounce(v, span int) int {
	if span <= 0 {
		return 0
	}
	v %= 2 * span
	if v < 0 {
		v += 2 * span
	}
	if v > span {
		v = 2*span - v
	}
	return v
}

// Renderer draws the frames of a Spec. It owns OpenCV memory: Close it.
// A Renderer is not safe for concurrent use.
type Renderer struct {
	spec       Spec
	background gocv.Mat
}

// NewRenderer validates spec and prepares its static background.
func NewRenderer(spec Spec) (*Renderer, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	bg, err := renderBackground(spec.Width, spec.Height)
	if err != nil {
		return nil, err
	}
	return &Renderer{spec: spec, background: bg}, nil
}

// Spec returns the spec the renderer draws.
func (r *Renderer) Spec() Spec { return r.spec }

// Close releases the renderer's OpenCV memory.
func (r *Renderer) Close() error {
	return r.background.Close()
}

// Frame draws frame i (0 <= i < Frames) into dst as an 8-bit BGR image of
// the spec's size, reusing dst's memory when it already has that shape.
func (r *Renderer) Frame(i int, dst *gocv.Mat) error {
	if i < 0 || i >= r.spec.Frames {
		return fmt.Errorf("videogen: frame index %d out of range [0, %d)", i, r.spec.Frames)
	}
	r.background.CopyTo(dst)
	sqr := r.spec.SquareAt(i)
	drawSquare(dst, sqr)
	if r.spec.Noise > 0 {
		return addNoise(dst, r.spec.Noise, uint32(i))
	}
	return nil
}

// addNoise adds up to +-amp grey levels of deterministic noise (seeded by
// frame) to every byte of dst, saturating at 0 and 255.
func addNoise(dst *gocv.Mat, amp int, frame uint32) error {
	n := dst.Rows() * dst.Cols() * dst.Channels()
	buf := make([]byte, n)
	seed := 0x9E3779B9 ^ (frame+1)*0x85EBCA6B
	for i := range buf {
		seed ^= seed << 13
		seed ^= seed >> 17
		seed ^= seed << 5
		buf[i] = byte(seed % uint32(2*amp+1))
	}
	noise, err := gocv.NewMatFromBytes(dst.Rows(), dst.Cols(), dst.Type(), buf)
	if err != nil {
		return fmt.Errorf("videogen: noise: %w", err)
	}
	defer noise.Close()
	gocv.Add(*dst, noise, dst)
	offset := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(float64(amp), float64(amp), float64(amp), 0), dst.Rows(), dst.Cols(), dst.Type())
	defer offset.Close()
	gocv.Subtract(*dst, offset, dst)
	return nil
}

// drawSquare paints a 4x4 checkerboard with a dark border: its interior
// changes when it moves, not only its edges.
func drawSquare(dst *gocv.Mat, r image.Rectangle) {
	light := color.RGBA{R: 250, G: 240, B: 40, A: 255}
	dark := color.RGBA{R: 200, G: 30, B: 30, A: 255}
	n := 4
	w := r.Dx()
	for cy := 0; cy < n; cy++ {
		for cx := 0; cx < n; cx++ {
			c := light
			if (cx+cy)%2 == 1 {
				c = dark
			}
			cell := image.Rect(
				r.Min.X+cx*w/n, r.Min.Y+cy*w/n,
				r.Min.X+(cx+1)*w/n, r.Min.Y+(cy+1)*w/n,
			)
			gocv.Rectangle(dst, cell, c, -1)
		}
	}
	gocv.Rectangle(dst, r, color.RGBA{A: 255}, 2)
}

// renderBackground builds the static scene: a gradient with a fixed
// pseudo-random texture, a few shapes and a caption.
func renderBackground(w, h int) (gocv.Mat, error) {
	buf := make([]byte, w*h*3)
	var seed uint32 = 0x9E3779B9
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			// xorshift32: deterministic texture of +-12 grey levels.
			seed ^= seed << 13
			seed ^= seed >> 17
			seed ^= seed << 5
			n := int(seed%25) - 12
			o := (y*w + x) * 3
			buf[o+0] = clamp8(40 + 150*x/w + n)        // B
			buf[o+1] = clamp8(60 + 120*y/h + n)        // G
			buf[o+2] = clamp8(90 + 80*(x+y)/(w+h) + n) // R
		}
	}
	tmp, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8UC3, buf)
	if err != nil {
		return gocv.Mat{}, fmt.Errorf("videogen: build background: %w", err)
	}
	// NewMatFromBytes borrows buf; own the pixels before buf goes away.
	bg := tmp.Clone()
	if err := tmp.Close(); err != nil {
		bg.Close()
		return gocv.Mat{}, fmt.Errorf("videogen: build background: %w", err)
	}

	s := min(w, h)
	gocv.Rectangle(&bg, image.Rect(w*6/10, h*6/10, w*6/10+s/4, h*6/10+s/5), color.RGBA{R: 30, G: 90, B: 160, A: 255}, -1)
	gocv.Rectangle(&bg, image.Rect(w/20, h*7/10, w/20+s/5, h*7/10+s/4), color.RGBA{R: 220, G: 220, B: 210, A: 255}, 3)
	gocv.Circle(&bg, image.Pt(w*8/10, h/5), s/10, color.RGBA{R: 20, G: 150, B: 60, A: 255}, -1)
	gocv.Circle(&bg, image.Pt(w/2, h*8/10), s/14, color.RGBA{R: 240, G: 240, B: 240, A: 255}, 2)
	for i := 0; i < 6; i++ {
		y := h/12 + i*h/60
		gocv.Line(&bg, image.Pt(w/2, y), image.Pt(w*7/10, y+h/30), color.RGBA{R: 10, G: 10, B: 40, A: 255}, 1)
	}
	scale := float64(s) / 600
	gocv.PutText(&bg, "cefiot sample", image.Pt(w/20, h/10), gocv.FontHersheySimplex, 1.2*scale, color.RGBA{R: 255, G: 255, B: 255, A: 255}, 2)
	gocv.PutText(&bg, fmt.Sprintf("%dx%d static scene", w, h), image.Pt(w/20, h/10+int(40*scale)+4), gocv.FontHersheyPlain, 1.5*scale, color.RGBA{A: 255}, 1)
	return bg, nil
}

func clamp8(v int) byte {
	return byte(min(max(v, 0), 255))
}

// Write renders spec into an MJPG-coded video at path. The container is
// chosen by OpenCV from the extension; use ".avi". The file is written
// under a temporary name in the same directory and renamed into place, so
// path never holds a partial video.
func Write(path string, spec Spec) (err error) {
	r, err := NewRenderer(spec)
	if err != nil {
		return err
	}
	defer r.Close()

	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmpFile, err := os.CreateTemp(dir, "."+base+".tmp-*"+filepath.Ext(base))
	if err != nil {
		return fmt.Errorf("videogen: write %s: %w", path, err)
	}
	tmp := tmpFile.Name()
	if err := tmpFile.Close(); err != nil {
		return fmt.Errorf("videogen: write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()

	vw, err := gocv.VideoWriterFile(tmp, "MJPG", spec.FPS, spec.Width, spec.Height, true)
	if err != nil {
		return fmt.Errorf("videogen: write %s: %w", path, err)
	}
	// gocv does not report a failed open; VideoWriter_Open only sets state.
	if !vw.IsOpened() {
		vw.Close()
		return fmt.Errorf("videogen: write %s: OpenCV could not open an MJPG writer (is the extension .avi?)", path)
	}
	frame := gocv.NewMat()
	defer frame.Close()
	for i := 0; i < spec.Frames; i++ {
		if err := r.Frame(i, &frame); err != nil {
			vw.Close()
			return fmt.Errorf("videogen: write %s: %w", path, err)
		}
		if err := vw.Write(frame); err != nil {
			vw.Close()
			return fmt.Errorf("videogen: write %s: frame %d: %w", path, i, err)
		}
	}
	if err := vw.Close(); err != nil {
		return fmt.Errorf("videogen: write %s: close: %w", path, err)
	}
	if fi, err := os.Stat(tmp); err != nil {
		return fmt.Errorf("videogen: write %s: %w", path, err)
	} else if fi.Size() == 0 {
		return fmt.Errorf("videogen: write %s: OpenCV wrote an empty file", path)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("videogen: write %s: %w", path, err)
	}
	return nil
}

// WriteImages renders spec into dir (created if missing) as JPEG files
// named by ImageName, one per frame.
func WriteImages(dir string, spec Spec) error {
	r, err := NewRenderer(spec)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("videogen: write images to %s: %w", dir, err)
	}
	params := []int{gocv.IMWriteJpegQuality, spec.jpegQuality()}
	frame := gocv.NewMat()
	defer frame.Close()
	for i := 0; i < spec.Frames; i++ {
		if err := r.Frame(i, &frame); err != nil {
			return fmt.Errorf("videogen: write images to %s: %w", dir, err)
		}
		name := filepath.Join(dir, ImageName(i))
		if !gocv.IMWriteWithParams(name, frame, params) {
			return fmt.Errorf("videogen: write image %s: OpenCV could not encode or write the file", name)
		}
	}
	return nil
}
