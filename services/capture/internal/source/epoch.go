package source

import (
	"encoding/binary"
	"fmt"
	"hash"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Sizes of the windows SessionEpoch hashes.
const (
	epochFileWindow  = 1 << 20  // head and tail of a video file
	epochImageWindow = 64 << 10 // head and tail of each image in a folder
)

// SessionEpoch returns a stable session epoch for a file source, so that
// reading the same media again yields the same frame ids
// ("<camera>_<epoch>_<sequence>").
//
// The epoch is a content fingerprint, not a clock: FNV-1a 64 over a version
// tag, the file size, its first MiB and its last MiB. It therefore does not
// change when the file is renamed, copied or touched (a copy is the same
// footage and must not produce new ids), and it does change when the
// content is replaced or appended to. Hashing only two MiB keeps it cheap
// for long recordings; two different recordings of equal size sharing both
// their first and last MiB would collide, which real footage does not do.
//
// For a directory (an image-folder source) the fingerprint covers, in
// lexical order, the name and size of every file the folder source reads
// plus the first and last 64 KiB of each.
//
// The top bit is cleared so the epoch fits a signed 64-bit column, and 0
// is never returned, so that 0 can mean "no epoch".
func SessionEpoch(path string) (uint64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("source: session epoch: %w", err)
	}
	h := fnv.New64a()
	if fi.IsDir() {
		io.WriteString(h, "cefiot/source/epoch/dir/v1\x00")
		if err := hashDir(h, path); err != nil {
			return 0, fmt.Errorf("source: session epoch of %s: %w", path, err)
		}
	} else {
		io.WriteString(h, "cefiot/source/epoch/file/v1\x00")
		if err := hashFile(h, path, epochFileWindow); err != nil {
			return 0, fmt.Errorf("source: session epoch of %s: %w", path, err)
		}
	}
	e := h.Sum64() &^ (1 << 63)
	if e == 0 {
		e = 1
	}
	return e, nil
}

// hashDir feeds the files an ImageDir would consider into h.
func hashDir(h hash.Hash64, dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		io.WriteString(h, e.Name())
		h.Write([]byte{0})
		if err := hashFile(h, filepath.Join(dir, e.Name()), epochImageWindow); err != nil {
			return err
		}
	}
	return nil
}

// hashFile feeds the size, the first window bytes and the last window
// bytes of the file into h (the whole file if it is at most 2*window).
func hashFile(h hash.Hash64, path string, window int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(size))
	h.Write(b[:])
	if size <= 2*window {
		if _, err := io.CopyN(h, f, size); err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		return nil
	}
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, window)); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if _, err := io.Copy(h, io.NewSectionReader(f, size-window, window)); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// WatchEpoch is the session epoch of a watched image folder: derived from
// its absolute path, since its content grows. Re-reading the folder after a
// restart reads its files in the same name order, so the same images get
// the same frame ids as long as no file is removed from it.
func WatchEpoch(path string) (uint64, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return 0, fmt.Errorf("source: watch epoch: %w", err)
	}
	h := fnv.New64a()
	io.WriteString(h, "cefiot/source/epoch/watch/v1\x00")
	io.WriteString(h, abs)
	e := h.Sum64() &^ (1 << 63)
	if e == 0 {
		e = 1
	}
	return e, nil
}
