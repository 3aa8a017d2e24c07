package motion

import (
	"image"
	"testing"

	"gocv.io/x/gocv"
)

func TestMaskAndGlobalChange(t *testing.T) {
	cfg := DefaultConfig()
	// Hide the left half of a 640x480 frame.
	cfg.Mask = [][]image.Point{{{0, 0}, {320, 0}, {320, 480}, {0, 480}}}
	cfg.GlobalChange = 0.5
	d, err := NewDetector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	frame := func(rects ...image.Rectangle) gocv.Mat {
		m := gocv.NewMatWithSize(480, 640, gocv.MatTypeCV8UC3)
		for _, r := range rects {
			gocv.Rectangle(&m, r, colorWhite, -1)
		}
		return m
	}
	black := frame()
	defer black.Close()
	left := frame(image.Rect(40, 40, 200, 200))
	defer left.Close()
	right := frame(image.Rect(400, 40, 560, 200))
	defer right.Close()
	lights := frame(image.Rect(320, 0, 640, 480))
	defer lights.Close()
	steps := []struct {
		name           string
		f              gocv.Mat
		motion, global bool
	}{
		{"first", black, false, false},
		{"change in the masked half", left, false, false},
		{"back to black, masked", black, false, false},
		{"change in the open half", right, true, false},
		{"back", black, true, false},
		{"whole open half lights up", lights, false, true},
		{"and goes dark again", black, false, true},
	}
	for _, s := range steps {
		r, err := d.Detect(s.f)
		if err != nil {
			t.Fatal(err)
		}
		if r.Motion != s.motion || r.Global != s.global {
			t.Errorf("%s: motion=%v global=%v score=%.3f, want motion=%v global=%v", s.name, r.Motion, r.Global, r.Score, s.motion, s.global)
		}
		for _, b := range r.Boxes {
			if b.Min.X < 320 {
				t.Errorf("%s: box %v reaches into the mask", s.name, b)
			}
		}
	}
	bad := DefaultConfig()
	bad.Mask = [][]image.Point{{{0, 0}, {1, 1}}}
	if _, err := NewDetector(bad); err == nil {
		t.Error("a two-point mask polygon was accepted")
	}
	bad = DefaultConfig()
	bad.GlobalChange = 1.5
	if _, err := NewDetector(bad); err == nil {
		t.Error("GlobalChange 1.5 accepted")
	}
}
