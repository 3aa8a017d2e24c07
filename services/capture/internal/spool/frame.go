package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// A record on disk is an 8-byte header (payload length, then the CRC-32C
// of the payload, both big-endian uint32) followed by the payload.
const headerSize = 8

// MaxRecordBytes is the largest payload a record may hold. A record is
// never empty: a run of zeros (what some file systems leave after a crash)
// would otherwise read as valid empty records.
const MaxRecordBytes = 64 << 20

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errTorn marks a record that is cut short or whose checksum is wrong: the
// tail of a write that a crash interrupted.
var errTorn = errors.New("torn or corrupt record")

// appendFrame appends the framed payload to dst.
func appendFrame(dst, payload []byte) []byte {
	var h [headerSize]byte
	binary.BigEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.BigEndian.PutUint32(h[4:8], crc32.Checksum(payload, crcTable))
	return append(append(dst, h[:]...), payload...)
}

// framedSize is the bytes a payload of n bytes takes on disk.
func framedSize(n int) int64 { return int64(headerSize + n) }

// readFrame reads the record at off of r: its payload and framed size.
// A record that ends early, claims an impossible length or fails its
// checksum is errTorn; other read errors are returned as they are.
func readFrame(r io.ReaderAt, off int64) ([]byte, int64, error) {
	var h [headerSize]byte
	if _, err := r.ReadAt(h[:], off); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, 0, fmt.Errorf("header at %d: %w", off, errTorn)
		}
		return nil, 0, fmt.Errorf("header at %d: %w", off, err)
	}
	n := binary.BigEndian.Uint32(h[0:4])
	if n == 0 || n > MaxRecordBytes {
		return nil, 0, fmt.Errorf("record at %d claims %d bytes: %w", off, n, errTorn)
	}
	payload := make([]byte, n)
	if _, err := r.ReadAt(payload, off+headerSize); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, 0, fmt.Errorf("record at %d: %w", off, errTorn)
		}
		return nil, 0, fmt.Errorf("record at %d: %w", off, err)
	}
	if crc32.Checksum(payload, crcTable) != binary.BigEndian.Uint32(h[4:8]) {
		return nil, 0, fmt.Errorf("record at %d: checksum: %w", off, errTorn)
	}
	return payload, framedSize(int(n)), nil
}
