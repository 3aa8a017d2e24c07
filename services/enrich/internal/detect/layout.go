package detect

import (
	"fmt"
	"math"
)

// outputLayout is how a model lays out its candidates.
type outputLayout int

const (
	// layoutYOLOv8: [1, 4+classes, candidates], boxes as centre and size
	// in input pixels (Ultralytics' YOLOv8, v9, v11 exports).
	layoutYOLOv8 outputLayout = iota
	// layoutYOLOv8T: the same, transposed: [1, candidates, 4+classes].
	layoutYOLOv8T
	// layoutYOLOv5: [1, candidates, 5+classes], an objectness before the
	// class scores (YOLOv5 and v7 exports).
	layoutYOLOv5
	// layoutYOLOX: [1, candidates, 5+classes] like YOLOv5, but raw: the
	// centre is an offset in its grid cell and the size a log, in units
	// of the cell's stride (8, 16 and 32 pixels, the finest grid first),
	// as Megvii's YOLOX exports it without decode_in_inference.
	layoutYOLOX
)

var layoutNames = [...]string{"yolov8", "yolov8-transposed", "yolov5", "yolox"}

func (l outputLayout) String() string { return layoutNames[l] }

// yoloxStrides are YOLOX's grid strides, finest first.
var yoloxStrides = []int{8, 16, 32}

// yoloxCandidates is how many candidates YOLOX gives at an input size.
func yoloxCandidates(input int) int {
	n := 0
	for _, s := range yoloxStrides {
		n += (input / s) * (input / s)
	}
	return n
}

// layoutOf reads the output's shape; named is the layout asked for ("":
// any that fits). An output of [1, N, 5+classes] is YOLOX's when N is the
// number of its grid cells at the input size, YOLOv5's otherwise.
func layoutOf(dims []int, classes, input int, named string) (outputLayout, error) {
	fits := map[outputLayout]bool{}
	if len(dims) == 3 && dims[0] == 1 {
		fits[layoutYOLOv8] = dims[1] == 4+classes
		fits[layoutYOLOv8T] = dims[2] == 4+classes
		fits[layoutYOLOv5] = dims[2] == 5+classes
		fits[layoutYOLOX] = dims[2] == 5+classes && dims[1] == yoloxCandidates(input)
	}
	if named != "" {
		for l, name := range layoutNames {
			if name == named && fits[outputLayout(l)] {
				return outputLayout(l), nil
			}
			if name == named {
				return 0, fmt.Errorf("output shape %v is not the %s layout with %d classes in the class list at input %d", dims, named, classes, input)
			}
		}
		return 0, fmt.Errorf("layout %q is none of %v", named, layoutNames)
	}
	for _, l := range []outputLayout{layoutYOLOv8, layoutYOLOX, layoutYOLOv5, layoutYOLOv8T} {
		if fits[l] {
			return l, nil
		}
	}
	return 0, fmt.Errorf("output shape %v is none of [1, 4+classes, N] (YOLOv8), [1, N, 5+classes] (YOLOv5, YOLOX) or [1, N, 4+classes], with %d classes in the class list", dims, classes)
}

// anchor is a YOLOX candidate's grid cell and stride.
type anchor struct{ x, y, stride float32 }

// newAnchorGrid lists YOLOX's cells in its output's order (nil for other
// layouts).
func newAnchorGrid(l outputLayout, input int) []anchor {
	if l != layoutYOLOX {
		return nil
	}
	grid := make([]anchor, 0, yoloxCandidates(input))
	for _, s := range yoloxStrides {
		cells := input / s
		for y := 0; y < cells; y++ {
			for x := 0; x < cells; x++ {
				grid = append(grid, anchor{x: float32(x), y: float32(y), stride: float32(s)})
			}
		}
	}
	return grid
}

// readCandidates reads the boxes scoring at least the threshold in a
// kept class, in input pixels.
func (d *DNN) readCandidates(data []float32, dims []int) []candidate {
	classes := len(d.opts.Classes)
	fields, n := dims[2], dims[1]
	if d.layout == layoutYOLOv8 {
		fields, n = dims[1], dims[2]
	}
	at := func(i, f int) float32 {
		if d.layout == layoutYOLOv8 {
			return data[f*n+i]
		}
		return data[i*fields+f]
	}
	first, objectness := 4, d.layout == layoutYOLOv5 || d.layout == layoutYOLOX
	if objectness {
		first = 5
	}
	threshold := float32(d.opts.Score)
	var out []candidate
	for i := 0; i < n; i++ {
		obj := float32(1)
		if objectness {
			if obj = at(i, 4); obj < threshold {
				continue
			}
		}
		best, score := -1, threshold
		for c := 0; c < classes; c++ {
			if s := obj * at(i, first+c); s >= score && d.keep[c] {
				best, score = c, s
			}
		}
		if best < 0 {
			continue
		}
		cx, cy, w, h := at(i, 0), at(i, 1), at(i, 2), at(i, 3)
		if d.layout == layoutYOLOX && i < len(d.grid) {
			a := d.grid[i]
			cx, cy = (cx+a.x)*a.stride, (cy+a.y)*a.stride
			w, h = float32(math.Exp(float64(w)))*a.stride, float32(math.Exp(float64(h)))*a.stride
		}
		out = append(out, candidate{class: best, score: score, x1: cx - w/2, y1: cy - h/2, x2: cx + w/2, y2: cy + h/2})
	}
	return out
}
