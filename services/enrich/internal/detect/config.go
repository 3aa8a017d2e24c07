package detect

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/cefiot/cefiot/libs/config"
)

// Detector kinds, as -detector takes them.
const (
	KindOff  = "off"
	KindHOG  = "hog"
	KindONNX = "onnx"
)

// Config chooses and tunes the detector (the -detector and -detect-* flags).
type Config struct {
	Kind  string
	Every int
	// HOG.
	Width        int
	HitThreshold float64
	// ONNX.
	Model       string
	ClassesFile string
	Only        string // comma-separated classes to keep
	Input       int
	Score       float64
	NMS         float64
	Layout      string

	classes []string // read from ClassesFile by Validate
}

// Register adds the detector's flags to fs.
func (c *Config) Register(fs *flag.FlagSet) {
	fs.StringVar(&c.Kind, "detector", KindOff, "object detector labelling motion frames: off; hog (OpenCV's built-in HOG person detector, no model to download); or onnx (an ONNX detection model in a YOLO export's layout, run by OpenCV DNN: -detect-model and -detect-classes)")
	fs.IntVar(&c.Every, "detect-every", 5, "look at the first motion frame of each event and one in this many after it (1: every motion frame)")
	fs.IntVar(&c.Width, "detect-width", 640, "hog: width the detector works at, 128..4096 (wider frames are scaled down; people under about 128 pixels tall at this width are missed)")
	fs.Float64Var(&c.HitThreshold, "detect-hit-threshold", 0.5, "hog: SVM distance a window must exceed to count as a person (higher misses more, errs less)")
	fs.StringVar(&c.Model, "detect-model", "", "onnx: path of the ONNX detection model ([1, 4+classes, N] as YOLOv8/v9/v11 export it, or [1, N, 5+classes] as YOLOv5/v7 do)")
	fs.StringVar(&c.ClassesFile, "detect-classes", "", "onnx: file naming the model's classes, one a line in class id order (as coco.names; blank lines and # comments are skipped)")
	fs.StringVar(&c.Only, "detect-only", "", "onnx: comma-separated classes to report (empty: all), e.g. person,car,dog")
	fs.IntVar(&c.Input, "detect-input", 640, "onnx: the model's square input size, 32..4096 (pictures are letterboxed into it)")
	fs.Float64Var(&c.Score, "detect-score", 0.5, "onnx: lowest score reported, 0.01..1")
	fs.StringVar(&c.Layout, "detect-layout", "", "onnx: the model's output layout, yolov8, yolov5 or yolox (empty: told from the output's shape)")
	fs.Float64Var(&c.NMS, "detect-nms", 0.45, "onnx: overlap (IoU) above which the lower scored of two boxes of one class is dropped, 0.01..1")
}

// Validate checks the flags, and for onnx reads the class list.
func (c *Config) Validate(ch *config.Checker) {
	ch.Check(c.Kind == KindOff || c.Kind == KindHOG || c.Kind == KindONNX, "detector", c.Kind, "must be off, hog or onnx")
	ch.Check(c.Every >= 1 && c.Every <= 1000, "detect-every", strconv.Itoa(c.Every), "must be 1..1000")
	ch.Check(c.Width >= 128 && c.Width <= 4096, "detect-width", strconv.Itoa(c.Width), "must be 128..4096")
	ch.Check(c.HitThreshold >= -10 && c.HitThreshold <= 10, "detect-hit-threshold", formatFloat(c.HitThreshold), "must be -10..10")
	ch.Check(c.Input >= 32 && c.Input <= 4096, "detect-input", strconv.Itoa(c.Input), "must be 32..4096")
	ch.Check(c.Score >= 0.01 && c.Score <= 1, "detect-score", formatFloat(c.Score), "must be 0.01..1")
	ch.Check(c.NMS >= 0.01 && c.NMS <= 1, "detect-nms", formatFloat(c.NMS), "must be 0.01..1")
	ch.Check(c.Layout == "" || c.Layout == "yolov8" || c.Layout == "yolov5" || c.Layout == "yolox", "detect-layout", c.Layout, "must be empty, yolov8, yolov5 or yolox")
	if c.Kind != KindONNX {
		return
	}
	ch.NotEmpty("detect-model", c.Model)
	if c.Model != "" {
		if _, err := os.Stat(c.Model); err != nil {
			ch.Add(config.Invalid("detect-model", c.Model, err.Error()))
		}
	}
	ch.NotEmpty("detect-classes", c.ClassesFile)
	if c.ClassesFile == "" {
		return
	}
	classes, err := readClasses(c.ClassesFile)
	if err != nil {
		ch.Add(config.Invalid("detect-classes", c.ClassesFile, err.Error()))
		return
	}
	c.classes = classes
	if _, err := keptClasses(classes, config.List(c.Only)); err != nil {
		ch.Add(config.Invalid("detect-only", c.Only, err.Error()))
	}
}

// readClasses reads a class list: a name a line, blank lines and lines
// starting with # skipped, names unique.
func readClasses(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var classes []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		name := strings.TrimSpace(sc.Text())
		if name == "" || strings.HasPrefix(name, "#") {
			continue
		}
		if seen[name] {
			return nil, fmt.Errorf("line %d: class %q named twice", line, name)
		}
		seen[name] = true
		classes = append(classes, name)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(classes) == 0 {
		return nil, fmt.Errorf("no class names in the file")
	}
	return classes, nil
}

// New makes the configured detector, or nil when detection is off. A model
// OpenCV cannot load or run, or whose output does not fit the class list,
// is an error naming -detect-model.
func (c Config) New() (Detector, error) {
	switch c.Kind {
	case KindHOG:
		return NewHOG(HOGOptions{Width: c.Width, HitThreshold: c.HitThreshold})
	case KindONNX:
		d, err := NewDNN(DNNOptions{Model: c.Model, Classes: c.classes, Only: config.List(c.Only), Input: c.Input, Score: c.Score, NMS: c.NMS, Layout: c.Layout})
		if err != nil {
			return nil, config.Invalid("detect-model", c.Model, err.Error())
		}
		return d, nil
	}
	return nil, nil
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
