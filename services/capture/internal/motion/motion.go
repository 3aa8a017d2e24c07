// Package motion decides whether a frame differs from the previous one.
//
// Each frame is downscaled to a detection width, converted to grey and
// blurred; the absolute difference to the previous detection image is
// thresholded, and the fraction of changed pixels is the frame's score.
// A frame is a motion frame when its score reaches Config.MinArea. For
// motion frames the changed regions are returned as bounding boxes in
// full-resolution pixels. Differencing against the previous frame (rather
// than a background model) reports exactly the frames in which something
// moved, and follows lighting changes after one frame.
//
// A Detector reuses its OpenCV buffers from frame to frame, so detection
// allocates nothing per frame except the boxes of motion frames.
package motion

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"sort"

	"gocv.io/x/gocv"
)

// Config tunes a Detector. Start from DefaultConfig: NewDetector rejects
// out-of-range fields instead of guessing, so the zero Config is invalid.
type Config struct {
	// DetectWidth is the width in pixels of the detection image; its
	// height keeps the frame's aspect ratio. Frames no wider than this are
	// used at their own size, never upscaled. Default 320.
	DetectWidth int
	// BlurSize is the side of the Gaussian blur kernel that suppresses
	// sensor noise and compression artefacts: odd, 3..31, or 0 for no
	// blur. Default 5.
	BlurSize int
	// Threshold is the grey-level difference a detection pixel must exceed
	// to count as changed, 1..254. Default 25.
	Threshold int
	// MinArea is the smallest score, the fraction of detection pixels
	// changed, that makes a motion frame, in (0, 1]. Default 0.001 (77
	// pixels of a 320x240 detection image).
	MinArea float64
	// Dilate is how many 3x3 dilations join neighbouring changed pixels
	// into one region before boxes are taken, 0..16. It affects boxes
	// only, never the score. Default 2.
	Dilate int
	// MaxBoxes caps the boxes returned per frame, largest first; 0 skips
	// box extraction altogether. Default 16.
	MaxBoxes int
	// Mask lists polygons, in full-resolution pixel coordinates, whose
	// pixels the detector ignores (a road, a tree, a timestamp overlay).
	// The score is the changed fraction of the pixels outside the mask.
	Mask [][]image.Point
	// GlobalChange, in (0, 1], makes a frame whose score reaches it a
	// global change (a light switched, the exposure jumped) rather than
	// motion: Result.Global is set and Motion is not. 0 disables the
	// guard. Default 0 (the capture service sets its own).
	GlobalChange float64
}

// DefaultConfig returns the configuration the capture service uses unless
// told otherwise.
func DefaultConfig() Config {
	return Config{
		DetectWidth: 320,
		BlurSize:    5,
		Threshold:   25,
		MinArea:     0.001,
		Dilate:      2,
		MaxBoxes:    16,
	}
}

// Validate reports the first field of c that is out of range.
func (c Config) Validate() error {
	switch {
	case c.DetectWidth < 16 || c.DetectWidth > 8192:
		return fmt.Errorf("motion: config: DetectWidth must be in [16, 8192], got %d", c.DetectWidth)
	case c.BlurSize != 0 && (c.BlurSize < 3 || c.BlurSize > 31 || c.BlurSize%2 == 0):
		return fmt.Errorf("motion: config: BlurSize must be 0 or odd in [3, 31], got %d", c.BlurSize)
	case c.Threshold < 1 || c.Threshold > 254:
		return fmt.Errorf("motion: config: Threshold must be in [1, 254], got %d", c.Threshold)
	case math.IsNaN(c.MinArea) || c.MinArea <= 0 || c.MinArea > 1:
		return fmt.Errorf("motion: config: MinArea must be in (0, 1], got %v", c.MinArea)
	case c.Dilate < 0 || c.Dilate > 16:
		return fmt.Errorf("motion: config: Dilate must be in [0, 16], got %d", c.Dilate)
	case c.MaxBoxes < 0:
		return fmt.Errorf("motion: config: MaxBoxes must be >= 0, got %d", c.MaxBoxes)
	case math.IsNaN(c.GlobalChange) || c.GlobalChange < 0 || c.GlobalChange > 1:
		return fmt.Errorf("motion: config: GlobalChange must be 0 or in (0, 1], got %v", c.GlobalChange)
	case c.GlobalChange > 0 && c.GlobalChange <= c.MinArea:
		return fmt.Errorf("motion: config: GlobalChange %v must be above MinArea %v", c.GlobalChange, c.MinArea)
	}
	for i, p := range c.Mask {
		if len(p) < 3 {
			return fmt.Errorf("motion: config: Mask[%d] has %d points, want at least 3", i, len(p))
		}
	}
	return nil
}

// Result is the verdict on one frame.
type Result struct {
	// Motion reports whether Score reached Config.MinArea. The first frame
	// of a session, which has nothing to compare with, is never motion.
	Motion bool
	// Score is the fraction of detection pixels that changed, 0..1.
	Score float64
	// Changed is the number of detection pixels that changed.
	Changed int
	// Boxes bound the changed regions in full-resolution pixel
	// coordinates, largest first. Only motion frames have boxes.
	Boxes []image.Rectangle
	// Global reports a global change (see Config.GlobalChange): too much
	// of the image changed at once to be motion.
	Global bool
}

// Detector finds motion between consecutive frames of one session. It
// holds OpenCV memory: Close it. A Detector is not safe for concurrent use.
type Detector struct {
	cfg Config

	full    image.Point // size of the frames of this session
	det     image.Point // size of the detection image
	hasPrev bool

	// Reused buffers. cur and prev swap after every frame.
	small, grey, cur, prev, diff, mask, dilated gocv.Mat
	kernel                                      gocv.Mat
	// zones is 255 where pixels count and 0 where Config.Mask hides them,
	// at the detection size; empty without a mask. allowed counts the 255s.
	zones   gocv.Mat
	allowed int
}

// NewDetector validates cfg and allocates a detector.
func NewDetector(cfg Config) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &Detector{
		cfg:     cfg,
		small:   gocv.NewMat(),
		grey:    gocv.NewMat(),
		cur:     gocv.NewMat(),
		prev:    gocv.NewMat(),
		diff:    gocv.NewMat(),
		mask:    gocv.NewMat(),
		dilated: gocv.NewMat(),
		kernel:  gocv.GetStructuringElement(gocv.MorphRect, image.Pt(3, 3)),
		zones:   gocv.NewMat(),
	}
	return d, nil
}

// Config returns the detector's configuration.
func (d *Detector) Config() Config { return d.cfg }

// Reset starts a new session: the next frame is a first frame.
func (d *Detector) Reset() { d.hasPrev = false }

// Close releases the detector's OpenCV memory.
func (d *Detector) Close() error {
	for _, m := range []*gocv.Mat{&d.small, &d.grey, &d.cur, &d.prev, &d.diff, &d.mask, &d.dilated, &d.kernel, &d.zones} {
		if err := m.Close(); err != nil {
			return fmt.Errorf("motion: close detector: %w", err)
		}
	}
	return nil
}

// Detect compares frame, an 8-bit grey, BGR or BGRA image, with the
// previous frame given to Detect. A frame whose size differs from the
// previous one starts a new session (see Reset). frame is only read.
func (d *Detector) Detect(frame gocv.Mat) (Result, error) {
	if frame.Empty() {
		return Result{}, fmt.Errorf("motion: detect: empty frame")
	}
	var toGrey gocv.ColorConversionCode
	switch frame.Type() {
	case gocv.MatTypeCV8UC1:
		toGrey = -1
	case gocv.MatTypeCV8UC3:
		toGrey = gocv.ColorBGRToGray
	case gocv.MatTypeCV8UC4:
		toGrey = gocv.ColorBGRAToGray
	default:
		return Result{}, fmt.Errorf("motion: detect: unsupported frame type %v, want 8-bit with 1, 3 or 4 channels", frame.Type())
	}

	if size := image.Pt(frame.Cols(), frame.Rows()); size != d.full {
		d.full = size
		d.det = detectSize(size, d.cfg.DetectWidth)
		d.hasPrev = false
		d.buildZones()
	}

	// Downscale first, so the colour conversion touches ~6x fewer pixels.
	// Nearest-neighbour costs about a third of bilinear on three channels
	// and the blur below does the smoothing bilinear would have added.
	src := frame
	if d.det != d.full {
		gocv.Resize(frame, &d.small, d.det, 0, 0, gocv.InterpolationNearestNeighbor)
		src = d.small
	}
	if toGrey >= 0 {
		gocv.CvtColor(src, &d.grey, toGrey)
		src = d.grey
	}
	if d.cfg.BlurSize > 0 {
		k := image.Pt(d.cfg.BlurSize, d.cfg.BlurSize)
		gocv.GaussianBlur(src, &d.cur, k, 0, 0, gocv.BorderDefault)
	} else {
		src.CopyTo(&d.cur)
	}

	first := !d.hasPrev
	d.hasPrev = true
	if first {
		d.cur, d.prev = d.prev, d.cur
		return Result{}, nil
	}
	gocv.AbsDiff(d.cur, d.prev, &d.diff)
	d.cur, d.prev = d.prev, d.cur

	gocv.Threshold(d.diff, &d.mask, float32(d.cfg.Threshold), 255, gocv.ThresholdBinary)
	total := d.det.X * d.det.Y
	if !d.zones.Empty() {
		gocv.BitwiseAnd(d.mask, d.zones, &d.mask)
		total = d.allowed
	}
	changed := gocv.CountNonZero(d.mask)
	r := Result{Changed: changed}
	if total > 0 {
		r.Score = float64(changed) / float64(total)
	}
	r.Motion = r.Score >= d.cfg.MinArea
	if d.cfg.GlobalChange > 0 && r.Score >= d.cfg.GlobalChange {
		r.Motion, r.Global = false, true
	}
	if r.Motion && d.cfg.MaxBoxes > 0 {
		r.Boxes = d.boxes()
	}
	return r, nil
}

// detectSize scales full to width w, keeping the aspect ratio.
func detectSize(full image.Point, w int) image.Point {
	if full.X <= w {
		return full
	}
	h := int(math.Round(float64(full.Y) * float64(w) / float64(full.X)))
	return image.Pt(w, max(h, 1))
}

// boxes extracts the bounding boxes of the changed regions of d.mask and
// scales them to full resolution.
func (d *Detector) boxes() []image.Rectangle {
	mask := d.mask
	if d.cfg.Dilate > 0 {
		gocv.DilateWithParams(d.mask, &d.dilated, d.kernel, image.Pt(-1, -1),
			gocv.BorderType(d.cfg.Dilate), gocv.BorderConstant, color.RGBA{})
		mask = d.dilated
	}
	contours := gocv.FindContours(mask, gocv.RetrievalExternal, gocv.ChainApproxSimple)
	defer contours.Close()
	n := contours.Size()
	if n == 0 {
		return nil
	}
	boxes := make([]image.Rectangle, 0, n)
	for i := 0; i < n; i++ {
		boxes = append(boxes, d.scale(gocv.BoundingRect(contours.At(i))))
	}
	sort.SliceStable(boxes, func(i, j int) bool {
		return area(boxes[i]) > area(boxes[j])
	})
	if len(boxes) > d.cfg.MaxBoxes {
		boxes = boxes[:d.cfg.MaxBoxes]
	}
	return boxes
}

// scale maps a detection-image rectangle to the smallest full-resolution
// rectangle covering it.
func (d *Detector) scale(r image.Rectangle) image.Rectangle {
	if d.det == d.full {
		return r
	}
	sx := float64(d.full.X) / float64(d.det.X)
	sy := float64(d.full.Y) / float64(d.det.Y)
	out := image.Rect(
		int(math.Floor(float64(r.Min.X)*sx)), int(math.Floor(float64(r.Min.Y)*sy)),
		int(math.Ceil(float64(r.Max.X)*sx)), int(math.Ceil(float64(r.Max.Y)*sy)),
	)
	return out.Intersect(image.Rectangle{Max: d.full})
}

func area(r image.Rectangle) int { return r.Dx() * r.Dy() }

// buildZones rasterises Config.Mask at the detection size.
func (d *Detector) buildZones() {
	d.zones.Close()
	d.zones = gocv.NewMat()
	d.allowed = d.det.X * d.det.Y
	if len(d.cfg.Mask) == 0 {
		return
	}
	d.zones = gocv.NewMatWithSizeFromScalar(gocv.NewScalar(255, 0, 0, 0), d.det.Y, d.det.X, gocv.MatTypeCV8UC1)
	sx := float64(d.det.X) / float64(d.full.X)
	sy := float64(d.det.Y) / float64(d.full.Y)
	polys := make([][]image.Point, 0, len(d.cfg.Mask))
	for _, poly := range d.cfg.Mask {
		scaled := make([]image.Point, len(poly))
		for i, p := range poly {
			scaled[i] = image.Pt(int(math.Round(float64(p.X)*sx)), int(math.Round(float64(p.Y)*sy)))
		}
		polys = append(polys, scaled)
	}
	pv := gocv.NewPointsVectorFromPoints(polys)
	defer pv.Close()
	gocv.FillPoly(&d.zones, pv, color.RGBA{})
	d.allowed = gocv.CountNonZero(d.zones)
}
