package detect

import (
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/cefiot/cefiot/libs/harness/onnxgen"
)

// gridModel writes a grid detector (see onnxgen) in layout and returns its
// path.
func gridModel(t testing.TB, layout onnxgen.Layout) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "grid.onnx")
	if err := (onnxgen.GridDetector{Input: 320, Grid: 8, Layout: layout}).Write(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// scene is a dark 1280x720 picture with a white square and a red one, of
// the size of the grid's cells once letterboxed into the model's input
// (1280 -> 320: a cell of 40 input pixels is 160 picture pixels; the
// picture is padded by 70 input pixels above and below).
func scene(t testing.TB) (gocv.Mat, image.Rectangle, image.Rectangle) {
	t.Helper()
	m := gocv.NewMatWithSize(720, 1280, gocv.MatTypeCV8UC3)
	m.SetTo(gocv.NewScalar(20, 20, 20, 0))
	// Cell (2, 3) of the input: x 80..120, y 120..160, so picture x
	// 320..480, y (120-70)*4 = 200..360.
	white := image.Rect(320, 200, 480, 360)
	// Cell (5, 4): x 200..240, y 160..200 -> picture x 800..960, y 360..520.
	red := image.Rect(800, 360, 960, 520)
	paint := func(r image.Rectangle, c gocv.Scalar) {
		roi := m.Region(r)
		defer roi.Close()
		roi.SetTo(c)
	}
	paint(white, gocv.NewScalar(255, 255, 255, 0))
	paint(red, gocv.NewScalar(0, 0, 255, 0)) // BGR
	return m, white, red
}

// TestONNXModelLabelsAndPlacesObjects: a real ONNX graph, run by OpenCV's
// DNN module in both YOLO layouts, labels the white and the red square
// with their class names and boxes in the picture's own pixels (the
// letterbox undone), and nothing else.
func TestONNXModelLabelsAndPlacesObjects(t *testing.T) {
	for _, layout := range []onnxgen.Layout{onnxgen.YOLOv8, onnxgen.YOLOv5} {
		d, err := NewDNN(DNNOptions{Model: gridModel(t, layout), Classes: onnxgen.Classes, Input: 320})
		if err != nil {
			t.Fatal(err)
		}
		img, white, red := scene(t)
		labels, err := d.Detect(img)
		img.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %+v", d.Name(), labels)
		want := map[string]image.Rectangle{"white": white, "red": red}
		if len(labels) != 2 {
			t.Fatalf("%s: %d labels, want the white and the red square: %+v", d.Name(), len(labels), labels)
		}
		for _, l := range labels {
			w, ok := want[l.Name]
			if !ok || !near(l.Box, w, 2) || l.Score < 0.9 {
				t.Errorf("%s: label %+v, want %s at %v with a score near 1", d.Name(), l, l.Name, w)
			}
			delete(want, l.Name)
		}
		_ = d.Close()
	}
}

// TestONNXModelKeepsOnlyTheClassesAsked: with Only, other classes are not
// reported; a dark picture has nothing.
func TestONNXModelKeepsOnlyTheClassesAsked(t *testing.T) {
	d, err := NewDNN(DNNOptions{Model: gridModel(t, onnxgen.YOLOv8), Classes: onnxgen.Classes, Only: []string{"red"}, Input: 320})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Close() }()
	img, _, red := scene(t)
	defer img.Close()
	labels, err := d.Detect(img)
	if err != nil {
		t.Fatal(err)
	}
	if len(labels) != 1 || labels[0].Name != "red" || !near(labels[0].Box, red, 2) {
		t.Fatalf("labels %+v, want only the red square at %v", labels, red)
	}
	dark := gocv.NewMatWithSize(480, 640, gocv.MatTypeCV8UC3)
	defer dark.Close()
	if labels, err := d.Detect(dark); err != nil || len(labels) != 0 {
		t.Fatalf("a black picture: %+v, %v", labels, err)
	}
}

// TestONNXModelRefusedAtStart: a missing file, a file that is not ONNX, an
// input size the model does not take, a class list that does not match the
// model's output, and a class to keep that the list does not have are
// refused when the detector is made, each saying why (never an abort).
func TestONNXModelRefusedAtStart(t *testing.T) {
	model := gridModel(t, onnxgen.YOLOv8)
	junk := filepath.Join(t.TempDir(), "junk.onnx")
	if err := os.WriteFile(junk, []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		opts DNNOptions
		want string
	}{
		{"missing file", DNNOptions{Model: filepath.Join(t.TempDir(), "none.onnx"), Classes: onnxgen.Classes}, "no such file"},
		{"not ONNX", DNNOptions{Model: junk, Classes: onnxgen.Classes, Input: 320}, "cannot load or run it as ONNX"},
		{"wrong input size", DNNOptions{Model: model, Classes: onnxgen.Classes, Input: 640}, "cannot load or run it as ONNX"},
		{"class list too long", DNNOptions{Model: model, Classes: []string{"white", "red", "blue"}, Input: 320}, "with 3 classes in the class list"},
		{"unknown class kept", DNNOptions{Model: model, Classes: onnxgen.Classes, Only: []string{"person"}, Input: 320}, `"person" to keep`},
		{"no classes", DNNOptions{Model: model, Input: 320}, "class list is empty"},
		{"layout that does not fit", DNNOptions{Model: model, Classes: onnxgen.Classes, Input: 320, Layout: "yolox"}, "not the yolox layout"},
	} {
		d, err := NewDNN(c.opts)
		if err == nil {
			_ = d.Close()
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want it to say %q", c.name, err, c.want)
		}
	}
}

func near(a, b image.Rectangle, tolerance int) bool {
	abs := func(v int) int { return max(v, -v) }
	return abs(a.Min.X-b.Min.X) <= tolerance && abs(a.Min.Y-b.Min.Y) <= tolerance && abs(a.Max.X-b.Max.X) <= tolerance && abs(a.Max.Y-b.Max.Y) <= tolerance
}
