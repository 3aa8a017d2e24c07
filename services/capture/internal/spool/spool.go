// Package spool is an on-disk FIFO of records bounded in bytes, for
// records that must survive a crash while they wait to be sent.
//
// Records live in segment files (<id>.seg, oldest first) framed as length,
// CRC-32C, payload. Append returns only once the record is on disk and
// fsync'd. A write a crash cut short is found when the spool is opened
// again and cut off (Recovery.TornBytes), not a failure. Records leave the
// spool from the front, by Remove once they are delivered, or, when an
// append would exceed the byte bound, by dropping the oldest: Append
// returns what it dropped so the loss can be reported. A head file
// remembers where the oldest record starts, so removed records are not
// read again after a restart.
//
// The bound counts the framed bytes of queued records; the disk holds at
// most one segment (a sixteenth of the bound) more, already removed
// records that share a segment with queued ones. One process at a time may
// open a directory (an exclusive lock on its lock file).
package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"syscall"
)

// MinBytes is the smallest bound a spool accepts.
const MinBytes = 4 << 10

// ErrTooLarge is returned by Append for a record bigger than the bound.
var ErrTooLarge = errors.New("record larger than the spool")

// ErrEmpty is returned by Append for an empty record.
var ErrEmpty = errors.New("empty record")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("spool closed")

// Record is one queued record. Seq increases with every record of this
// Spool value (it is not stored: a reopened spool numbers from 1 again).
type Record struct {
	Seq  uint64
	Data []byte
}

// Recovery is what Open found.
type Recovery struct {
	// Records is how many records were queued.
	Records int
	// TornBytes were cut from the end of segments: a write a crash
	// interrupted (or a damaged file, from the damage on).
	TornBytes int64
	// Dropped are the oldest records dropped because the queue was over
	// the bound (the bound was lowered since they were written).
	Dropped []Record
}

type segment struct {
	id   uint64
	f    *os.File
	size int64
}

type entry struct {
	seg  *segment
	off  int64
	size int64 // framed
	seq  uint64
}

// Spool is an open spool directory. Its methods are safe for concurrent
// use.
type Spool struct {
	dir    string
	max    int64
	segMax int64
	lock   *os.File

	mu      sync.Mutex
	segs    []*segment // oldest first; the last is appended to
	q       []entry    // queued records, oldest first
	bytes   int64      // framed bytes of q
	nextSeq uint64
	closed  bool
}

var segName = regexp.MustCompile(`^([0-9]{20})\.seg$`)

func segPath(dir string, id uint64) string { return filepath.Join(dir, fmt.Sprintf("%020d.seg", id)) }

// Open opens (creating it if needed) the spool in dir, bounded to
// maxBytes of queued records.
func Open(dir string, maxBytes int64) (_ *Spool, rec Recovery, err error) {
	if maxBytes < MinBytes {
		return nil, rec, fmt.Errorf("spool %s: bound %d bytes: must be at least %d", dir, maxBytes, MinBytes)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, rec, fmt.Errorf("spool: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, rec, fmt.Errorf("spool: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = lock.Close()
		return nil, rec, fmt.Errorf("spool %s is in use by another process: %w", dir, err)
	}
	s := &Spool{dir: dir, max: maxBytes, segMax: min(max(maxBytes/16, MinBytes), 64<<20), lock: lock, nextSeq: 1}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	head, _, err := readHead(dir)
	if err != nil {
		return nil, rec, err
	}
	_ = os.Remove(filepath.Join(dir, headFile+".tmp"))
	ids, err := listSegments(dir)
	if err != nil {
		return nil, rec, err
	}
	for _, id := range ids {
		if id < head.seg {
			if err := os.Remove(segPath(dir, id)); err != nil {
				return nil, rec, fmt.Errorf("spool: remove delivered segment: %w", err)
			}
			continue
		}
		start := int64(0)
		if id == head.seg {
			start = head.off
		}
		torn, err := s.load(id, start)
		if err != nil {
			return nil, rec, err
		}
		rec.TornBytes += torn
	}
	if len(s.segs) == 0 {
		if err := s.roll(head.seg + 1); err != nil {
			return nil, rec, err
		}
	}
	if s.bytes > s.max {
		if rec.Dropped, err = s.dropLocked(0); err != nil {
			return nil, rec, err
		}
	}
	rec.Records = len(s.q)
	return s, rec, nil
}

func listSegments(dir string) ([]uint64, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var ids []uint64
	for _, de := range des {
		if m := segName.FindStringSubmatch(de.Name()); m != nil && de.Type().IsRegular() {
			id, err := strconv.ParseUint(m[1], 10, 64)
			if err == nil {
				ids = append(ids, id)
			}
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// load queues the records of segment id from start on, cutting off a torn
// tail. It returns the bytes cut.
func (s *Spool) load(id uint64, start int64) (int64, error) {
	f, err := os.OpenFile(segPath(s.dir, id), os.O_RDWR, 0o600)
	if err != nil {
		return 0, fmt.Errorf("spool: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return 0, fmt.Errorf("spool: %w", err)
	}
	seg := &segment{id: id, f: f, size: st.Size()}
	s.segs = append(s.segs, seg)
	off := min(start, seg.size)
	for off < seg.size {
		_, n, err := readFrame(f, off)
		if errors.Is(err, errTorn) {
			torn := seg.size - off
			if err := f.Truncate(off); err != nil {
				return 0, fmt.Errorf("spool: cut torn tail of %s: %w", f.Name(), err)
			}
			if err := f.Sync(); err != nil {
				return 0, fmt.Errorf("spool: %w", err)
			}
			seg.size = off
			return torn, nil
		}
		if err != nil {
			return 0, fmt.Errorf("spool %s: %w", f.Name(), err)
		}
		s.push(seg, off, n)
		off += n
	}
	return 0, nil
}

func (s *Spool) push(seg *segment, off, size int64) {
	s.q = append(s.q, entry{seg: seg, off: off, size: size, seq: s.nextSeq})
	s.nextSeq++
	s.bytes += size
}

// roll starts segment id and appends to it from now on.
func (s *Spool) roll(id uint64) error {
	f, err := os.OpenFile(segPath(s.dir, id), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("spool: new segment: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		_ = f.Close()
		return fmt.Errorf("spool: new segment: %w", err)
	}
	s.segs = append(s.segs, &segment{id: id, f: f})
	return nil
}

// Append writes data as the newest record and returns once it is on disk.
// If the queue would then exceed the bound, the oldest records are dropped
// first and returned (with their data when it could still be read).
func (s *Spool) Append(data []byte) ([]Record, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("spool: %w", ErrEmpty)
	}
	size := framedSize(len(data))
	if len(data) > MaxRecordBytes || size > s.max {
		return nil, fmt.Errorf("spool: %d bytes: %w of %d bytes", len(data), ErrTooLarge, s.max)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	dropped, err := s.dropLocked(size)
	if err != nil {
		return dropped, err
	}
	tail := s.segs[len(s.segs)-1]
	if tail.size >= s.segMax {
		if err := s.roll(tail.id + 1); err != nil {
			return dropped, err
		}
		if len(s.q) == 0 || s.q[len(s.q)-1].seg != tail {
			s.forget(tail) // it holds removed records only
		}
		tail = s.segs[len(s.segs)-1]
	}
	buf := appendFrame(make([]byte, 0, size), data)
	_, err = tail.f.WriteAt(buf, tail.size)
	if err == nil {
		err = tail.f.Sync()
	}
	if err != nil {
		// Cut what may have been written, so the next record starts on
		// a frame boundary; a crash before that is a torn tail.
		_ = tail.f.Truncate(tail.size)
		return dropped, fmt.Errorf("spool: write: %w", err)
	}
	s.push(tail, tail.size, size)
	tail.size += size
	return dropped, nil
}

// dropLocked drops the oldest records until room more bytes fit.
func (s *Spool) dropLocked(room int64) ([]Record, error) {
	var dropped []Record
	k := 0
	for ; k < len(s.q) && s.bytes+room > s.max; k++ {
		e := s.q[k]
		data, _, err := readFrame(e.seg.f, e.off)
		if err != nil {
			data = nil // dropped all the same; counted, without its data
		}
		dropped = append(dropped, Record{Seq: e.seq, Data: data})
		s.bytes -= e.size
	}
	if k == 0 {
		return nil, nil
	}
	return dropped, s.advance(k)
}

// advance removes the first k queued records: the head file moves past
// them and segments left without queued records are deleted.
func (s *Spool) advance(k int) error {
	if k == 0 {
		return nil
	}
	s.q = s.q[k:]
	if len(s.q) == 0 {
		s.q = nil
	}
	tail := s.segs[len(s.segs)-1]
	head := position{seg: tail.id, off: tail.size}
	if len(s.q) > 0 {
		head = position{seg: s.q[0].seg.id, off: s.q[0].off}
	}
	if err := writeHead(s.dir, head); err != nil {
		return err
	}
	for len(s.segs) > 1 && s.segs[0].id < head.seg {
		s.forget(s.segs[0])
	}
	return nil
}

// forget closes and deletes a segment without queued records.
func (s *Spool) forget(seg *segment) {
	for i, g := range s.segs {
		if g == seg {
			s.segs = append(s.segs[:i], s.segs[i+1:]...)
			break
		}
	}
	_ = seg.f.Close()
	_ = os.Remove(segPath(s.dir, seg.id))
}

// Peek returns up to n of the oldest records without removing them. A
// record that can no longer be read (the file was damaged since Open) has
// nil Data: the caller reports it lost and removes it like the others.
func (s *Spool) Peek(n int) ([]Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	n = min(n, len(s.q))
	out := make([]Record, 0, n)
	for _, e := range s.q[:n] {
		data, _, err := readFrame(e.seg.f, e.off)
		if err != nil {
			data = nil
		}
		out = append(out, Record{Seq: e.seq, Data: data})
	}
	return out, nil
}

// Remove removes every queued record up to and including seq (delivered).
// Records already dropped are skipped.
func (s *Spool) Remove(seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	k := 0
	for k < len(s.q) && s.q[k].seq <= seq {
		s.bytes -= s.q[k].size
		k++
	}
	return s.advance(k)
}

// Len is the number of queued records.
func (s *Spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.q)
}

// Bytes is the framed size of the queued records.
func (s *Spool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// Close closes the files and releases the directory; the records stay
// for the next Open.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for _, seg := range s.segs {
		errs = append(errs, seg.f.Close())
	}
	s.segs, s.q = nil, nil
	errs = append(errs, s.lock.Close()) // releases the lock
	return errors.Join(errs...)
}
