package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/cefiot/cefiot/libs/config"
)

// enrichDetectArgs are the flags that give every enrich process the
// detector the operator chose; a missing model or class list stops
// cefiot-local here, naming the flag, rather than every enrich at start.
func enrichDetectArgs(detector, model, classes string) ([]string, error) {
	switch detector {
	case "off", "hog":
		if model != "" || classes != "" {
			return nil, config.Invalid("detect-model", model, "only with -detector onnx")
		}
		return []string{"-detector", detector}, nil
	case "onnx":
	default:
		return nil, config.Invalid("detector", detector, "want off, hog or onnx")
	}
	args := []string{"-detector", detector}
	for _, f := range []struct{ key, path string }{{"detect-model", model}, {"detect-classes", classes}} {
		if f.path == "" {
			return nil, config.Invalid(f.key, f.path, "required with -detector onnx")
		}
		abs, err := filepath.Abs(f.path)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			return nil, config.Invalid(f.key, f.path, fmt.Sprint(err))
		}
		args = append(args, "-"+f.key, abs)
	}
	return args, nil
}
