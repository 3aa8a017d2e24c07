// Package localenv finds what the local programs (the stack, the
// benchmarks) run against on a developer's machine or in CI: the
// repository, the Kafka jars fetched into it and the built service
// binaries.
package localenv

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/cefiot/cefiot/libs/harness/kafkalocal"
)

// Env is where things are, as absolute paths.
type Env struct {
	Root      string // the repository
	KafkaLibs string // Kafka's jars (kafkalocal.FindLibs)
	BinDir    string // the built service binaries
}

// Find looks for the repository from the working directory up, for its
// Kafka jars, and makes binDir absolute.
func Find(binDir string) (Env, error) {
	wd, err := os.Getwd()
	if err != nil {
		return Env{}, fmt.Errorf("working directory: %w", err)
	}
	root, err := kafkalocal.FindRepoRoot(wd)
	if err != nil {
		return Env{}, err
	}
	libs, err := kafkalocal.FindLibs(root)
	if err != nil {
		return Env{}, fmt.Errorf("%w (run make kafka)", err)
	}
	bins, err := filepath.Abs(binDir)
	if err != nil {
		return Env{}, fmt.Errorf("-bin-dir %q: %w", binDir, err)
	}
	return Env{Root: root, KafkaLibs: libs, BinDir: bins}, nil
}

// ScratchDir makes a temporary directory named after prefix; remove
// deletes it and all it holds.
func ScratchDir(prefix string) (dir string, remove func(), err error) {
	dir, err = os.MkdirTemp("", prefix+"-")
	if err != nil {
		return "", nil, fmt.Errorf("scratch directory: %w", err)
	}
	return dir, func() { _ = os.RemoveAll(dir) }, nil
}
