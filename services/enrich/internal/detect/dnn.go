package detect

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"sort"

	"gocv.io/x/gocv"
)

// DNNOptions configure an ONNX detection model run by OpenCV's DNN module.
type DNNOptions struct {
	// Model is the path of the .onnx file.
	Model string
	// Classes names the model's classes, in the order of its class ids
	// (for a COCO model: person, bicycle, car, ...).
	Classes []string
	// Only, when not empty, keeps only these classes (the rest are not
	// reported); each must be in Classes.
	Only []string
	// Input is the model's square input size (default 640).
	Input int
	// Score is the lowest class score reported, 0..1 (default 0.5).
	Score float64
	// NMS is the overlap (intersection over union) above which the lower
	// scored of two boxes of one class is dropped (default 0.45).
	NMS float64
	// Layout is the output's layout: "yolov8", "yolov5" or "yolox"; empty
	// tells it from the output's shape.
	Layout string
}

// DNN is an ONNX detection model. Pictures are letterboxed into its square
// input (scaled to fit, padded with grey) as YOLO exports expect; boxes come
// back in the picture's own pixels. Its output layouts are in layout.go.
type DNN struct {
	net    gocv.Net
	opts   DNNOptions
	layout outputLayout
	grid   []anchor // YOLOX: each candidate's cell and stride
	keep   []bool   // by class id
	scaled gocv.Mat
	input  gocv.Mat
}

var _ Detector = (*DNN)(nil)

// NewDNN loads an ONNX model and checks, by running it once at its input
// size, that it runs, that its output is a layout it reads and that it has
// as many classes as opts.Classes names.
func NewDNN(opts DNNOptions) (*DNN, error) {
	if opts.Input == 0 {
		opts.Input = 640
	}
	if opts.Score == 0 {
		opts.Score = 0.5
	}
	if opts.NMS == 0 {
		opts.NMS = 0.45
	}
	if opts.Input < 32 || opts.Input > 4096 {
		return nil, fmt.Errorf("detect: model input %d: must be 32..4096", opts.Input)
	}
	if len(opts.Classes) == 0 {
		return nil, errors.New("detect: the model's class list is empty")
	}
	keep, err := keptClasses(opts.Classes, opts.Only)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(opts.Model); err != nil {
		return nil, fmt.Errorf("detect: model: %w", err)
	}
	dims, err := probeONNX(opts.Model, opts.Input)
	if err != nil {
		return nil, fmt.Errorf("detect: model %s: %w", opts.Model, err)
	}
	layout, err := layoutOf(dims, len(opts.Classes), opts.Input, opts.Layout)
	if err != nil {
		return nil, fmt.Errorf("detect: model %s: %w", opts.Model, err)
	}
	net := gocv.ReadNetFromONNX(opts.Model)
	if net.Empty() {
		_ = net.Close()
		return nil, fmt.Errorf("detect: model %s: OpenCV cannot load it as ONNX", opts.Model)
	}
	d := &DNN{net: net, opts: opts, layout: layout, grid: newAnchorGrid(layout, opts.Input), keep: keep, scaled: gocv.NewMat(), input: gocv.NewMatWithSize(opts.Input, opts.Input, gocv.MatTypeCV8UC3)}
	return d, nil
}

func keptClasses(classes, only []string) ([]bool, error) {
	keep := make([]bool, len(classes))
	index := make(map[string]int, len(classes))
	for i, c := range classes {
		if c == "" {
			return nil, fmt.Errorf("detect: class %d has no name", i)
		}
		index[c] = i
		keep[i] = len(only) == 0
	}
	for _, o := range only {
		i, ok := index[o]
		if !ok {
			return nil, fmt.Errorf("detect: class %q to keep is not in the model's class list", o)
		}
		keep[i] = true
	}
	return keep, nil
}

// Name names the model.
func (d *DNN) Name() string {
	return fmt.Sprintf("onnx %s (%s, input %d, %d classes)", filepath.Base(d.opts.Model), d.layout, d.opts.Input, len(d.opts.Classes))
}

// WorkWidth is the model's input size: a picture is scaled to fit it.
func (d *DNN) WorkWidth() int { return d.opts.Input }

// letterbox scales img to fit the input square, centred on grey, and
// returns the scale and the padding.
func (d *DNN) letterbox(img gocv.Mat) (scale float64, padX, padY int) {
	size := d.opts.Input
	scale = min(float64(size)/float64(img.Cols()), float64(size)/float64(img.Rows()))
	w, h := max(1, int(float64(img.Cols())*scale+0.5)), max(1, int(float64(img.Rows())*scale+0.5))
	gocv.Resize(img, &d.scaled, image.Pt(w, h), 0, 0, gocv.InterpolationLinear)
	padX, padY = (size-w)/2, (size-h)/2
	gocv.CopyMakeBorder(d.scaled, &d.input, padY, size-h-padY, padX, size-w-padX, gocv.BorderConstant, color.RGBA{R: 114, G: 114, B: 114})
	return scale, padX, padY
}

// forward runs the model on a picture already the input's size: RGB scaled
// to 0..1 for Ultralytics' exports, BGR 0..255 for YOLOX's.
func (d *DNN) forward(input gocv.Mat) (gocv.Mat, error) {
	scale, swapRB := 1.0/255, true
	if d.layout == layoutYOLOX {
		scale, swapRB = 1, false
	}
	blob := gocv.BlobFromImage(input, scale, image.Pt(d.opts.Input, d.opts.Input), gocv.NewScalar(0, 0, 0, 0), swapRB, false)
	defer blob.Close()
	d.net.SetInput(blob, "")
	out := d.net.Forward("")
	if out.Empty() {
		out.Close()
		return gocv.Mat{}, errors.New("detect: the model gave no output")
	}
	return out, nil
}

// Detect returns the objects the model finds in img, best first.
func (d *DNN) Detect(img gocv.Mat) ([]Label, error) {
	if img.Empty() {
		return nil, errors.New("detect: empty picture")
	}
	scale, padX, padY := d.letterbox(img)
	out, err := d.forward(d.input)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	data, err := out.DataPtrFloat32()
	if err != nil {
		return nil, fmt.Errorf("detect: model output: %w", err)
	}
	dims := out.Size()
	if len(dims) != 3 || dims[1]*dims[2] > len(data) {
		return nil, fmt.Errorf("detect: model output of shape %v with %d values, not the %s layout it had at start", dims, len(data), d.layout)
	}
	candidates := d.readCandidates(data, dims)
	bounds := image.Rect(0, 0, img.Cols(), img.Rows())
	labels := make([]Label, 0, len(candidates))
	for _, c := range suppress(candidates, d.opts.NMS) {
		box := image.Rect(
			int((float64(c.x1)-float64(padX))/scale+0.5), int((float64(c.y1)-float64(padY))/scale+0.5),
			int((float64(c.x2)-float64(padX))/scale+0.5), int((float64(c.y2)-float64(padY))/scale+0.5),
		).Intersect(bounds)
		if box.Empty() {
			continue
		}
		labels = append(labels, Label{Name: d.opts.Classes[c.class], Score: float64(c.score), Box: box})
	}
	return labels, nil
}

// candidate is a box in input pixels.
type candidate struct {
	class          int
	score          float32
	x1, y1, x2, y2 float32
}

// suppress keeps, in each class, the best of boxes that overlap more than
// threshold (greedy non-maximum suppression), best first.
func suppress(cands []candidate, threshold float64) []candidate {
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].score > cands[j].score })
	var kept []candidate
	for _, c := range cands {
		overlaps := false
		for _, k := range kept {
			if k.class == c.class && iou(k, c) > threshold {
				overlaps = true
				break
			}
		}
		if !overlaps {
			kept = append(kept, c)
		}
	}
	return kept
}

func iou(a, b candidate) float64 {
	iw := min(a.x2, b.x2) - max(a.x1, b.x1)
	ih := min(a.y2, b.y2) - max(a.y1, b.y1)
	if iw <= 0 || ih <= 0 {
		return 0
	}
	inter := float64(iw * ih)
	union := float64((a.x2-a.x1)*(a.y2-a.y1)+(b.x2-b.x1)*(b.y2-b.y1)) - inter
	return inter / union
}

// Close releases the model.
func (d *DNN) Close() error {
	d.scaled.Close()
	d.input.Close()
	return d.net.Close()
}
