package detect

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/harness/onnxgen"
)

func parseConfig(t *testing.T, args ...string) (Config, error) {
	t.Helper()
	var c Config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.Register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	var ch config.Checker
	c.Validate(&ch)
	return c, ch.Err()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfigNamesTheKeyOfEachMistake: every detector setting that cannot
// work is refused at start, naming its key; a good ONNX configuration
// makes a detector that labels with the class file's names.
func TestConfigNamesTheKeyOfEachMistake(t *testing.T) {
	model := gridModel(t, onnxgen.YOLOv8)
	classes := writeFile(t, "grid.names", "# the grid detector's classes\nwhite\n\nred\n")
	c, err := parseConfig(t, "-detector", "onnx", "-detect-model", model, "-detect-classes", classes, "-detect-input", "320", "-detect-only", "red")
	if err != nil {
		t.Fatalf("good config: %v", err)
	}
	d, err := c.New()
	if err != nil {
		t.Fatalf("good config: %v", err)
	}
	if !strings.Contains(d.Name(), "2 classes") {
		t.Errorf("detector %s: want the class file's 2 classes", d.Name())
	}
	_ = d.Close()

	for _, tc := range []struct {
		args []string
		key  string
	}{
		{[]string{"-detector", "yolo"}, "detector"},
		{[]string{"-detector", "onnx", "-detect-classes", classes}, "detect-model"},
		{[]string{"-detector", "onnx", "-detect-model", model + ".missing", "-detect-classes", classes}, "detect-model"},
		{[]string{"-detector", "onnx", "-detect-model", model}, "detect-classes"},
		{[]string{"-detector", "onnx", "-detect-model", model, "-detect-classes", writeFile(t, "twice.names", "red\nred\n")}, "detect-classes"},
		{[]string{"-detector", "onnx", "-detect-model", model, "-detect-classes", writeFile(t, "empty.names", "# none\n")}, "detect-classes"},
		{[]string{"-detector", "onnx", "-detect-model", model, "-detect-classes", classes, "-detect-only", "person"}, "detect-only"},
		{[]string{"-detect-input", "16"}, "detect-input"},
		{[]string{"-detect-score", "0"}, "detect-score"},
		{[]string{"-detect-nms", "2"}, "detect-nms"},
		{[]string{"-detect-every", "0"}, "detect-every"},
		{[]string{"-detect-layout", "ssd"}, "detect-layout"},
	} {
		if _, err := parseConfig(t, tc.args...); err == nil || !strings.Contains(err.Error(), `"`+tc.key+`"`) {
			t.Errorf("%v: err %v, want one naming %s", tc.args, err, tc.key)
		}
	}
	// A model whose output does not fit the class list passes the flags'
	// checks and is refused when the detector is made, naming the model.
	c, err = parseConfig(t, "-detector", "onnx", "-detect-model", model, "-detect-classes", writeFile(t, "three.names", "a\nb\nc\n"), "-detect-input", "320")
	if err != nil {
		t.Fatal(err)
	}
	if d, err := c.New(); err == nil || !strings.Contains(err.Error(), `"detect-model"`) || !strings.Contains(err.Error(), "3 classes") {
		if d != nil {
			_ = d.Close()
		}
		t.Fatalf("a 2-class model with 3 class names: %v", err)
	}
}

// TestSuppressKeepsTheBestOfOverlappingBoxesPerClass: two boxes of one
// class that overlap are one object; the same box of another class is not
// suppressed.
func TestSuppressKeepsTheBestOfOverlappingBoxesPerClass(t *testing.T) {
	got := suppress([]candidate{
		{class: 0, score: 0.6, x1: 0, y1: 0, x2: 100, y2: 100},
		{class: 0, score: 0.9, x1: 10, y1: 10, x2: 110, y2: 110},
		{class: 1, score: 0.7, x1: 0, y1: 0, x2: 100, y2: 100},
		{class: 0, score: 0.8, x1: 200, y1: 200, x2: 300, y2: 300},
	}, 0.45)
	if len(got) != 3 || got[0].score != 0.9 || got[1].score != 0.8 || got[2].class != 1 {
		t.Fatalf("kept %+v", got)
	}
}
