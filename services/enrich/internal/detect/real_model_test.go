package detect

import (
	"flag"
	"testing"

	"gocv.io/x/gocv"

	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/harness/videogen"
)

// yoloxNano configures the real COCO detector in testdata (see its
// README) the way an operator would, through the flags.
func yoloxNano(tb testing.TB, extra ...string) Config {
	tb.Helper()
	var c Config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.Register(fs)
	args := append([]string{"-detector", "onnx", "-detect-model", "testdata/yolox_nano.onnx", "-detect-classes", "testdata/coco.names", "-detect-input", "416"}, extra...)
	if err := fs.Parse(args); err != nil {
		tb.Fatal(err)
	}
	var ch config.Checker
	c.Validate(&ch)
	if err := ch.Err(); err != nil {
		tb.Fatal(err)
	}
	return c
}

// TestRealCOCOModelFindsThePeopleInRealFootage: a real, trained ONNX
// detector (YOLOX-Nano, COCO), given by path with its class list, finds
// people in most frames spread over the pedestrian footage, with boxes of a
// person's shape inside the picture; with -detect-only person it reports
// nothing else; in a plain picture it finds nothing.
func TestRealCOCOModelFindsThePeopleInRealFootage(t *testing.T) {
	pics := videogen.FootageFrames(t, 20)
	d, err := yoloxNano(t, "-detect-only", "person").New()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Close() }()
	withPeople, people, perFrame := peopleInFootage(t, d, pics, 0.5)
	t.Logf("%s: %d of %d frames with people, %d people in all, %v a frame (%dx%d)", d.Name(), withPeople, len(pics), people, perFrame, pics[0].Cols(), pics[0].Rows())
	if withPeople < len(pics)*3/4 || people < 2*len(pics) {
		t.Fatalf("people found in %d of %d frames (%d in all) of footage full of them", withPeople, len(pics), people)
	}
	plain := pics[0].Clone()
	defer plain.Close()
	plain.SetTo(gocv.NewScalar(90, 120, 150, 0))
	if labels, err := d.Detect(plain); err != nil || len(labels) != 0 {
		t.Fatalf("a plain picture: %+v, %v", labels, err)
	}
}

// BenchmarkONNX is the cost of a real ONNX detector (YOLOX-Nano at its
// 416 input, COCO's 80 classes) per frame of the 768x576 footage:
// letterbox, blob, forward and decode.
func BenchmarkONNX(b *testing.B) {
	pics := videogen.FootageFrames(b, 10)
	d, err := yoloxNano(b).New()
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = d.Close() }()
	benchmarkFootage(b, d, pics)
}
