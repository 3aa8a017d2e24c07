package enrich

import (
	"image"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"gocv.io/x/gocv"
	"google.golang.org/protobuf/proto"

	"github.com/cefiot/cefiot/libs/harness/onnxgen"
	"github.com/cefiot/cefiot/libs/harness/videogen"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
	"github.com/cefiot/cefiot/services/enrich/internal/detect"
)

// TestLabelerLabelsMotionFramesAtItsRate: enrich, with the HOG detector
// and one frame in three, labels the people in frames of real footage:
// the first motion frame of an event and every third after it, not the
// frames between or those without motion; a JPEG that does not decode is
// a bad record.
func TestLabelerLabelsMotionFramesAtItsRate(t *testing.T) {
	pics := videogen.FootageFrames(t, 6)
	h, err := detect.NewHOG(detect.HOGOptions{HitThreshold: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = h.Close() }()
	tr := Transformer{Site: "edge", Labeler: NewLabeler(h, 3, prometheus.NewRegistry())}
	var looked, people int
	for i, p := range pics {
		buf, err := gocv.IMEncode(gocv.JPEGFileExt, p)
		if err != nil {
			t.Fatal(err)
		}
		f := &cefiotv1.Frame{FrameId: "f" + string(rune('a'+i)), CameraId: "hall", Jpeg: append([]byte(nil), buf.GetBytes()...),
			Width: int32(p.Cols()), Height: int32(p.Rows()), EventId: "hall_1_e00000001", Motion: i != 1}
		buf.Close()
		value, err := proto.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		_, ef, err := tr.Enrich(value)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		// Motion frames are 0, 2, 3, 4, 5: looked at are the 1st and
		// the 4th of them (frames 0 and 4).
		want := i == 0 || i == 4
		if got := ef.GetDetector() != ""; got != want {
			t.Errorf("frame %d: looked at %v, want %v (labels %v)", i, got, want, ef.GetLabels())
		}
		if ef.GetDetector() != "" {
			looked++
		}
		for _, l := range ef.GetLabels() {
			people++
			if l.GetName() != "person" || l.GetBox().GetWidth() <= 0 || l.GetBox().GetX()+l.GetBox().GetWidth() > int32(p.Cols()) {
				t.Errorf("frame %d: label %v", i, l)
			}
		}
	}
	if looked != 2 || people == 0 {
		t.Fatalf("looked at %d frames and found %d people in footage full of them", looked, people)
	}
	bad := &cefiotv1.Frame{FrameId: "bad", CameraId: "hall", Jpeg: []byte{0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0xff, 0xd9},
		EventId: "hall_1_e00000002", Motion: true}
	value, _ := proto.Marshal(bad)
	if _, _, err := tr.Enrich(value); err == nil {
		t.Fatal("a JPEG without a picture was labelled")
	}
}

// TestLabelerWithAnONNXModel: enrich with an ONNX model run by OpenCV DNN
// labels a 1280x720 motion frame's red square with the model's class name
// and a box in the frame's own pixels (the JPEG decoded at a quarter of
// its size for the model's 320 input, the letterbox undone).
func TestLabelerWithAnONNXModel(t *testing.T) {
	model := filepath.Join(t.TempDir(), "grid.onnx")
	if err := (onnxgen.GridDetector{Input: 320, Grid: 8, Layout: onnxgen.YOLOv8}).Write(model); err != nil {
		t.Fatal(err)
	}
	d, err := detect.NewDNN(detect.DNNOptions{Model: model, Classes: onnxgen.Classes, Input: 320})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Close() }()
	tr := Transformer{Site: "edge", Labeler: NewLabeler(d, 1, prometheus.NewRegistry())}
	pic := gocv.NewMatWithSize(720, 1280, gocv.MatTypeCV8UC3)
	defer pic.Close()
	pic.SetTo(gocv.NewScalar(30, 30, 30, 0))
	red := image.Rect(800, 360, 960, 520) // one cell of the model's grid
	roi := pic.Region(red)
	roi.SetTo(gocv.NewScalar(0, 0, 255, 0))
	roi.Close()
	buf, err := gocv.IMEncode(gocv.JPEGFileExt, pic)
	if err != nil {
		t.Fatal(err)
	}
	f := &cefiotv1.Frame{FrameId: "f1", CameraId: "yard", Jpeg: append([]byte(nil), buf.GetBytes()...), Width: 1280, Height: 720, EventId: "yard_1_e00000001", Motion: true}
	buf.Close()
	value, err := proto.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	_, ef, err := tr.Enrich(value)
	if err != nil {
		t.Fatal(err)
	}
	labels := ef.GetLabels()
	if len(labels) != 1 || labels[0].GetName() != "red" || !strings.HasPrefix(ef.GetDetector(), "onnx grid.onnx") {
		t.Fatalf("detector %q labels %v, want one red square", ef.GetDetector(), labels)
	}
	b := labels[0].GetBox()
	got := image.Rect(int(b.GetX()), int(b.GetY()), int(b.GetX()+b.GetWidth()), int(b.GetY()+b.GetHeight()))
	if d := got.Union(red).Size().Sub(got.Intersect(red).Size()); d.X > 8 || d.Y > 8 {
		t.Fatalf("box %v, want about %v", got, red)
	}
}
