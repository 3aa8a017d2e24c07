package motion

import (
	"image"
	"testing"

	"gocv.io/x/gocv"
)

func BenchmarkSteps(b *testing.B) {
	path, _ := sampleVideo(b)
	frames := decodeAll(b, path)
	f := frames[100]
	small, grey, blur, fullGrey := gocv.NewMat(), gocv.NewMat(), gocv.NewMat(), gocv.NewMat()
	det := image.Pt(320, 240)
	run := func(name string, fn func()) {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				fn()
			}
		})
	}
	k := image.Pt(5, 5)
	run("A-resizeLinear-cvt-blur", func() {
		gocv.Resize(f, &small, det, 0, 0, gocv.InterpolationLinear)
		gocv.CvtColor(small, &grey, gocv.ColorBGRToGray)
		gocv.GaussianBlur(grey, &blur, k, 0, 0, gocv.BorderDefault)
	})
	run("B-cvt-resizeLinear-blur", func() {
		gocv.CvtColor(f, &fullGrey, gocv.ColorBGRToGray)
		gocv.Resize(fullGrey, &grey, det, 0, 0, gocv.InterpolationLinear)
		gocv.GaussianBlur(grey, &blur, k, 0, 0, gocv.BorderDefault)
	})
	run("C-resizeNearest-cvt-blur", func() {
		gocv.Resize(f, &small, det, 0, 0, gocv.InterpolationNearestNeighbor)
		gocv.CvtColor(small, &grey, gocv.ColorBGRToGray)
		gocv.GaussianBlur(grey, &blur, k, 0, 0, gocv.BorderDefault)
	})
	run("D-cvt-resizeNearest-blur", func() {
		gocv.CvtColor(f, &fullGrey, gocv.ColorBGRToGray)
		gocv.Resize(fullGrey, &grey, det, 0, 0, gocv.InterpolationNearestNeighbor)
		gocv.GaussianBlur(grey, &blur, k, 0, 0, gocv.BorderDefault)
	})
}
