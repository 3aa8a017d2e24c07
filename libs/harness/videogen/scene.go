package videogen

import (
	"testing"

	"gocv.io/x/gocv"
)

// Scene renders every picture of spec (released when the test ends), so
// that a test can tell which one a decoded picture shows (Nearest).
func Scene(tb testing.TB, spec Spec) []gocv.Mat {
	tb.Helper()
	r, err := NewRenderer(spec)
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	pics := make([]gocv.Mat, spec.Frames)
	for i := range pics {
		pics[i] = gocv.NewMat()
		if err := r.Frame(i, &pics[i]); err != nil {
			tb.Fatal(err)
		}
	}
	tb.Cleanup(func() {
		for _, m := range pics {
			m.Close()
		}
	})
	return pics
}

// Nearest is the index of the picture of scene that img differs least
// from (the sum of absolute differences), -1 for an empty scene.
func Nearest(scene []gocv.Mat, img gocv.Mat) int {
	diff := gocv.NewMat()
	defer diff.Close()
	best, bestSum := -1, 0.0
	for i, r := range scene {
		gocv.AbsDiff(img, r, &diff)
		s := diff.Sum()
		if sum := s.Val1 + s.Val2 + s.Val3; best < 0 || sum < bestSum {
			best, bestSum = i, sum
		}
	}
	return best
}
