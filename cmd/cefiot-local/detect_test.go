package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestEnrichDetectArgsNameTheFlag(t *testing.T) {
	dir := t.TempDir()
	model, classes := filepath.Join(dir, "m.onnx"), filepath.Join(dir, "names.txt")
	for _, f := range []string{model, classes} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args, err := enrichDetectArgs("onnx", model, classes)
	if err != nil || !slices.Equal(args, []string{"-detector", "onnx", "-detect-model", model, "-detect-classes", classes}) {
		t.Fatalf("onnx: %v, %v", args, err)
	}
	if args, err := enrichDetectArgs("off", "", ""); err != nil || !slices.Equal(args, []string{"-detector", "off"}) {
		t.Fatalf("off: %v, %v", args, err)
	}
	for _, tc := range []struct {
		detector, model, classes, key string
	}{
		{"yolo", "", "", `"detector"`},
		{"onnx", "", classes, `"detect-model"`},
		{"onnx", model, filepath.Join(dir, "missing.txt"), `"detect-classes"`},
		{"hog", model, "", `"detect-model"`},
	} {
		if _, err := enrichDetectArgs(tc.detector, tc.model, tc.classes); err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%+v: %v, want an error naming %s", tc, err, tc.key)
		}
	}
}
