package detect

import (
	"strconv"
	"testing"

	"gocv.io/x/gocv"

	"github.com/cefiot/cefiot/libs/harness/videogen"
)

// TestHOGFindsThePeopleInRealFootage: on frames spread over the pedestrian
// sample, where several people walk at every moment, HOG finds people in
// most frames, with boxes inside the picture and of a person's shape.
func TestHOGFindsThePeopleInRealFootage(t *testing.T) {
	pics := videogen.FootageFrames(t, 20)
	h, err := NewHOG(HOGOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = h.Close() }()
	withPeople, people, perFrame := peopleInFootage(t, h, pics, 0)
	t.Logf("%d of %d frames with people, %d people in all, %v a frame (%dx%d)", withPeople, len(pics), people, perFrame, pics[0].Cols(), pics[0].Rows())
	if withPeople < len(pics)*3/4 {
		t.Fatalf("people found in %d of %d frames of footage full of people", withPeople, len(pics))
	}
}

// TestHOGFindsNobodyInAnEmptyScene: a plain picture has no people.
func TestHOGFindsNobodyInAnEmptyScene(t *testing.T) {
	h, err := NewHOG(HOGOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = h.Close() }()
	m := gocv.NewMatWithSize(576, 768, gocv.MatTypeCV8UC3)
	defer m.Close()
	m.SetTo(gocv.NewScalar(90, 120, 150, 0))
	labels, err := h.Detect(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(labels) != 0 {
		t.Fatalf("found %+v in a plain picture", labels)
	}
	if _, err := NewHOG(HOGOptions{Width: 64}); err == nil {
		t.Fatal("a working width below HOG's window was taken")
	}
}

func BenchmarkHOG(b *testing.B) {
	pics := videogen.FootageFrames(b, 10)
	for _, width := range []int{768, 640, 480} {
		b.Run(fmtWidth(width), func(b *testing.B) {
			h, err := NewHOG(HOGOptions{Width: width})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = h.Close() }()
			benchmarkFootage(b, h, pics)
		})
	}
}

func fmtWidth(w int) string { return "width=" + strconv.Itoa(w) }
