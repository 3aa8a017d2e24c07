package kafkalocal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// DefaultVersion is the Kafka version that scripts/fetch-kafka.sh fetches
// unless KAFKA_VERSION says otherwise.
const DefaultVersion = "4.1.1"

// Environment variables read by [FindLibs].
const (
	// EnvLibs names a directory of Kafka jars to use instead of the
	// repository cache.
	EnvLibs = "CEFIOT_KAFKA_LIBS"
	// EnvVersion selects the cached Kafka version (default [DefaultVersion]);
	// scripts/fetch-kafka.sh reads the same variable.
	EnvVersion = "KAFKA_VERSION"
)

// ErrLibsNotFound is returned (wrapped) by [FindLibs] when the Kafka jars have
// not been fetched.
var ErrLibsNotFound = errors.New("kafka jars not found")

// FindLibs returns the directory holding the Kafka broker jars: the directory
// named by CEFIOT_KAFKA_LIBS when that is set, else
// <repoRoot>/.cache/kafka/<version>/libs with version from KAFKA_VERSION or
// [DefaultVersion]. The error wraps [ErrLibsNotFound] and tells how to fetch
// the jars when the directory has no Kafka broker jar.
func FindLibs(repoRoot string) (string, error) {
	if dir := os.Getenv(EnvLibs); dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", fmt.Errorf("kafkalocal: %s=%q: %w", EnvLibs, dir, err)
		}
		if err := checkLibs(abs); err != nil {
			return "", fmt.Errorf("kafkalocal: %s=%q: %w", EnvLibs, dir, err)
		}
		return abs, nil
	}
	version := os.Getenv(EnvVersion)
	if version == "" {
		version = DefaultVersion
	}
	if repoRoot == "" {
		return "", fmt.Errorf("kafkalocal: find kafka libs: empty repository root")
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		return "", fmt.Errorf("kafkalocal: find kafka libs: %w", err)
	}
	dir := filepath.Join(root, ".cache", "kafka", version, "libs")
	if err := checkLibs(dir); err != nil {
		return "", fmt.Errorf("kafkalocal: %w; fetch Kafka %s with scripts/fetch-kafka.sh (or make kafka) from the repository root, or set %s",
			err, version, EnvLibs)
	}
	return dir, nil
}

// checkLibs reports whether dir holds a Kafka broker jar.
func checkLibs(dir string) error {
	matches, err := filepath.Glob(filepath.Join(dir, "kafka_2.13-*.jar"))
	if err != nil {
		return fmt.Errorf("scan %s: %w", dir, err)
	}
	if len(matches) == 0 {
		return fmt.Errorf("%w in %s", ErrLibsNotFound, dir)
	}
	return nil
}

// FindRepoRoot walks up from dir to the directory containing go.work, the
// root of the cefiot repository.
func FindRepoRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("kafkalocal: find repository root: %w", err)
	}
	for d := abs; ; {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("kafkalocal: no go.work in %s or any parent directory", abs)
		}
		d = parent
	}
}
