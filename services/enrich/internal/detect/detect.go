// Package detect labels pictures with the objects in them. The default is
// OpenCV's built-in HOG person detector (Dalal and Triggs' pedestrian SVM,
// shipped inside OpenCV: nothing to download). Any ONNX detection model in
// a YOLO export's layout runs through OpenCV's DNN module with its class
// list (dnn.go). A picture wider than the detector's working width is
// scaled down first; boxes are given in the picture's own pixels.
package detect

import (
	"fmt"
	"image"

	"gocv.io/x/gocv"
)

// Label is one object found in a picture.
type Label struct {
	Name string
	// Score is the detector's confidence, 0..1 (1 for detectors that give
	// none, such as HOG, whose threshold decides alone).
	Score float64
	Box   image.Rectangle
}

// Detector finds objects in 8-bit BGR pictures. It is not safe for
// concurrent use.
type Detector interface {
	// Name names the detector and its settings, for logs and metrics.
	Name() string
	Detect(img gocv.Mat) ([]Label, error)
	Close() error
}

// HOGOptions tune the HOG person detector.
type HOGOptions struct {
	// Width is the working width: wider pictures are scaled down to it
	// (default 640). HOG's window is 64x128, so people smaller than about
	// 128 pixels tall at this width are missed.
	Width int
	// HitThreshold is the SVM distance a window must exceed (default 0;
	// higher misses more and errs less).
	HitThreshold float64
}

// HOG is OpenCV's default people detector.
type HOG struct {
	hog  gocv.HOGDescriptor
	opts HOGOptions
	work gocv.Mat
}

var _ Detector = (*HOG)(nil)

// NewHOG loads the built-in people detector.
func NewHOG(opts HOGOptions) (*HOG, error) {
	if opts.Width == 0 {
		opts.Width = 640
	}
	if opts.Width < 128 || opts.Width > 4096 {
		return nil, fmt.Errorf("detect: HOG width %d: must be 128..4096", opts.Width)
	}
	svm, err := defaultPeopleDetector()
	if err != nil {
		return nil, err
	}
	defer svm.Close()
	h := &HOG{hog: gocv.NewHOGDescriptor(), opts: opts, work: gocv.NewMat()}
	if err := h.hog.SetSVMDetector(svm); err != nil {
		_ = h.Close()
		return nil, fmt.Errorf("detect: HOG people detector: %w", err)
	}
	return h, nil
}

// Name names the detector.
func (h *HOG) Name() string { return fmt.Sprintf("hog-people (width %d)", h.opts.Width) }

// WorkWidth is the width HOG works at: wider pictures are scaled down.
func (h *HOG) WorkWidth() int { return h.opts.Width }

// Detect returns a "person" label for each person found.
func (h *HOG) Detect(img gocv.Mat) ([]Label, error) {
	if img.Empty() {
		return nil, fmt.Errorf("detect: empty picture")
	}
	src, scale := img, 1.0
	if img.Cols() > h.opts.Width {
		scale = float64(img.Cols()) / float64(h.opts.Width)
		gocv.Resize(img, &h.work, image.Pt(h.opts.Width, int(float64(img.Rows())/scale+0.5)), 0, 0, gocv.InterpolationArea)
		src = h.work
	}
	rects := h.hog.DetectMultiScaleWithParams(src, h.opts.HitThreshold, image.Pt(8, 8), image.Pt(8, 8), 1.05, 2, false)
	out := make([]Label, 0, len(rects))
	bounds := image.Rect(0, 0, img.Cols(), img.Rows())
	for _, r := range rects {
		box := image.Rect(int(float64(r.Min.X)*scale), int(float64(r.Min.Y)*scale), int(float64(r.Max.X)*scale), int(float64(r.Max.Y)*scale)).Intersect(bounds)
		if box.Empty() {
			continue
		}
		out = append(out, Label{Name: "person", Score: 1, Box: box})
	}
	return out, nil
}

// Close releases the detector.
func (h *HOG) Close() error {
	h.work.Close()
	return h.hog.Close()
}
