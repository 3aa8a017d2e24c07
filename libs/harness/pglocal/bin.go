package pglocal

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
)

// EnvBin names a directory holding initdb and postgres; it overrides the
// search of [FindBin].
const EnvBin = "CEFIOT_PG_BIN"

// debianBins is where Debian's PostgreSQL server packages put their
// binaries, one directory per major version.
const debianBins = "/usr/lib/postgresql/*/bin"

// ErrNotFound says that no PostgreSQL server binaries were found.
var ErrNotFound = errors.New("PostgreSQL server binaries not found")

// FindBin returns the directory of the PostgreSQL server binaries (initdb
// and postgres): $CEFIOT_PG_BIN when set, else the directory of initdb on
// PATH (symlinks resolved), else the highest major version's
// /usr/lib/postgresql/<major>/bin. An error wraps [ErrNotFound] when there
// is none (a $CEFIOT_PG_BIN without them is another error).
func FindBin() (string, error) {
	if dir := os.Getenv(EnvBin); dir != "" {
		if err := hasServer(dir); err != nil {
			// Not ErrNotFound: a wrong setting is a mistake, not a machine
			// without PostgreSQL.
			return "", fmt.Errorf("%s=%s: %v", EnvBin, dir, err)
		}
		return dir, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		// A link to Debian's binaries names their real directory.
		if real, err := filepath.EvalSymlinks(p); err == nil && hasServer(filepath.Dir(real)) == nil {
			return filepath.Dir(real), nil
		}
		if dir := filepath.Dir(p); hasServer(dir) == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob(debianBins) // the pattern is valid
	type cand struct {
		dir   string
		major float64
	}
	var cands []cand
	for _, d := range dirs {
		major, err := strconv.ParseFloat(filepath.Base(filepath.Dir(d)), 64)
		if err != nil || hasServer(d) != nil {
			continue
		}
		cands = append(cands, cand{d, major})
	}
	if len(cands) == 0 {
		return "", fmt.Errorf("%w: set %s, put initdb on PATH, or install Debian's postgresql package (binaries in %s)",
			ErrNotFound, EnvBin, debianBins)
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].major > cands[j].major })
	return cands[0].dir, nil
}

// hasServer checks that dir holds executable initdb and postgres.
func hasServer(dir string) error {
	for _, name := range []string{"initdb", "postgres"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("%w: %v", ErrNotFound, err)
		}
		if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
			return fmt.Errorf("%w: %s is not executable", ErrNotFound, filepath.Join(dir, name))
		}
	}
	return nil
}
