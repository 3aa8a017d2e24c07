package detect

import (
	"testing"
	"time"

	"gocv.io/x/gocv"
)

// peopleInFootage runs d over pictures of the pedestrian footage and
// checks each label: a person, scored at least minScore, with a box of a
// person's shape inside the picture. It returns the frames with people,
// the people in all, and the time a frame took.
func peopleInFootage(t *testing.T, d Detector, pics []gocv.Mat, minScore float64) (withPeople, people int, perFrame time.Duration) {
	t.Helper()
	start := time.Now()
	for _, p := range pics {
		labels, err := d.Detect(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(labels) > 0 {
			withPeople++
		}
		for _, l := range labels {
			people++
			b := l.Box
			if l.Name != "person" || l.Score < minScore || b.Min.X < 0 || b.Min.Y < 0 || b.Max.X > p.Cols() || b.Max.Y > p.Rows() || b.Dy() < b.Dx() {
				t.Errorf("label %+v in a %dx%d picture", l, p.Cols(), p.Rows())
			}
		}
	}
	return withPeople, people, time.Since(start) / time.Duration(len(pics))
}

// benchmarkFootage times d per picture of the footage.
func benchmarkFootage(b *testing.B, d Detector, pics []gocv.Mat) {
	b.Helper()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := d.Detect(pics[i%len(pics)]); err != nil {
			b.Fatal(err)
		}
	}
}
