package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// tempPrefix starts the names of files being written. Valid names never
// start with '.', so a temporary file cannot collide with a frame file.
const tempPrefix = ".tmp-"

const (
	dirPerm  = 0o755
	filePerm = 0o644
)

// syncDir fsyncs a directory so that entries created, renamed or removed in
// it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s for fsync: %w", dir, err)
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	if err := d.Close(); err != nil {
		return fmt.Errorf("close dir %s: %w", dir, err)
	}
	return nil
}

// ensureDir creates dir and any missing parents below root (which must
// exist), fsyncing the parent of every directory it creates so the new
// entries survive a crash.
func ensureDir(root, dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s exists and is not a directory", dir)
		}
		return nil
	}
	rel, err := filepath.Rel(root, dir)
	if err != nil || !filepath.IsLocal(rel) {
		return fmt.Errorf("directory %s is not below %s", dir, root)
	}
	cur := root
	for _, seg := range splitPath(rel) {
		next := filepath.Join(cur, seg)
		err := os.Mkdir(next, dirPerm)
		switch {
		case err == nil:
			if err := syncDir(cur); err != nil {
				return err
			}
		case errors.Is(err, fs.ErrExist):
			if fi, serr := os.Stat(next); serr != nil || !fi.IsDir() {
				return fmt.Errorf("%s exists and is not a directory", next)
			}
			// It may have been created concurrently by a Put that has not
			// yet fsynced the parent; do it here so this Put never commits
			// an index entry for a file whose directory entry is not
			// durable. (Only reached when dir was missing at the start.)
			if err := syncDir(cur); err != nil {
				return err
			}
		default:
			return fmt.Errorf("mkdir %s: %w", next, err)
		}
		cur = next
	}
	return nil
}

func splitPath(rel string) []string {
	var segs []string
	for rel != "" && rel != "." {
		dir, file := filepath.Split(rel)
		segs = append([]string{file}, segs...)
		rel = filepath.Clean(dir)
		if rel == string(filepath.Separator) {
			break
		}
	}
	return segs
}

// writeFileAtomic writes data to path so that path holds either its old
// content or all of data, even across a crash: a temporary file in the same
// directory is written and fsynced, renamed over path, and the directory is
// fsynced.
func writeFileAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	dir = filepath.Clean(dir)
	f, err := os.CreateTemp(dir, tempPrefix+base+"-*")
	if err != nil {
		return fmt.Errorf("create temp file for %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err = f.Chmod(filePerm); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, path, err)
	}
	return syncDir(dir)
}
