package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
)

// The head file records where the oldest queued record starts (segment id
// and offset), so records already removed are not read again after a
// restart. It is replaced atomically (write, fsync, rename, fsync dir).
const headFile = "head"

type position struct {
	seg uint64
	off int64
}

func writeHead(dir string, p position) error {
	var b [20]byte
	binary.BigEndian.PutUint64(b[0:8], p.seg)
	binary.BigEndian.PutUint64(b[8:16], uint64(p.off))
	binary.BigEndian.PutUint32(b[16:20], crc32.Checksum(b[:16], crcTable))
	tmp := filepath.Join(dir, headFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("spool head: %w", err)
	}
	_, err = f.Write(b[:])
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, headFile))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("spool head: %w", err)
	}
	return nil
}

// readHead returns the recorded head, or the zero position (read every
// segment from its start) when there is none or it is unreadable: that
// may send records again, never loses one.
func readHead(dir string) (position, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, headFile))
	if errors.Is(err, os.ErrNotExist) {
		return position{}, true, nil
	}
	if err != nil {
		return position{}, false, fmt.Errorf("spool head: %w", err)
	}
	if len(b) != 20 || crc32.Checksum(b[:16], crcTable) != binary.BigEndian.Uint32(b[16:20]) {
		return position{}, false, nil
	}
	p := position{seg: binary.BigEndian.Uint64(b[0:8]), off: int64(binary.BigEndian.Uint64(b[8:16]))}
	if p.off < 0 {
		return position{}, false, nil
	}
	return p, true, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
