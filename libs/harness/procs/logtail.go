package procs

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// LogTail returns at most maxLines last lines of the file at path, reading
// from offset from on and no more than 64 KiB. A log it cannot read gives a
// line that says why, so that it can go into an error message as it is.
func LogTail(path string, from int64, maxLines int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(log: %v)", err)
	}
	from = max(from, st.Size()-64<<10)
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return fmt.Sprintf("(log: %v)", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(log: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// WithLogTail appends the tail of the log at path to err.
func WithLogTail(err error, path, tail string) error {
	return fmt.Errorf("%w\n--- tail of %s ---\n%s\n---", err, path, tail)
}
