package spool

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func payload(i int) []byte { return []byte(fmt.Sprintf("record-%06d", i)) }

func mustOpen(t *testing.T, dir string, max int64) (*Spool, Recovery) {
	t.Helper()
	s, rec, err := Open(dir, max)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, rec
}

func appendAll(t *testing.T, s *Spool, from, to int) []Record {
	t.Helper()
	var dropped []Record
	for i := from; i < to; i++ {
		d, err := s.Append(payload(i))
		if err != nil {
			t.Fatal(err)
		}
		dropped = append(dropped, d...)
	}
	return dropped
}

// expect checks the queue holds exactly records from..to-1, in order.
func expect(t *testing.T, s *Spool, from, to int) {
	t.Helper()
	recs, err := s.Peek(to - from + 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != to-from || s.Len() != to-from {
		t.Fatalf("%d records queued (Len %d), want %d", len(recs), s.Len(), to-from)
	}
	for i, r := range recs {
		if !bytes.Equal(r.Data, payload(from+i)) {
			t.Fatalf("record %d is %q, want %q", i, r.Data, payload(from+i))
		}
	}
}

func TestFraming(t *testing.T) {
	if _, _, err := readFrame(bytes.NewReader(appendFrame(nil, nil)), 0); !errors.Is(err, errTorn) {
		t.Fatalf("empty record: %v, want torn (zeros are not records)", err)
	}
	for _, p := range [][]byte{[]byte("x"), bytes.Repeat([]byte{0xff}, 70_000)} {
		b := appendFrame(nil, p)
		got, n, err := readFrame(bytes.NewReader(b), 0)
		if err != nil || !bytes.Equal(got, p) || n != int64(len(b)) {
			t.Fatalf("%d bytes: read %d bytes, size %d, %v", len(p), len(got), n, err)
		}
		for cut := 0; cut < len(b) && cut < 20; cut++ {
			if _, _, err := readFrame(bytes.NewReader(b[:cut]), 0); !errors.Is(err, errTorn) {
				t.Fatalf("cut to %d bytes: %v, want torn", cut, err)
			}
		}
		bad := bytes.Clone(b)
		bad[len(bad)-1] ^= 1
		if _, _, err := readFrame(bytes.NewReader(bad), 0); !errors.Is(err, errTorn) {
			t.Fatalf("flipped bit: %v, want torn", err)
		}
	}
	huge := appendFrame(nil, nil)
	huge[0] = 0xff // claims 4 GB
	if _, _, err := readFrame(bytes.NewReader(huge), 0); !errors.Is(err, errTorn) {
		t.Fatalf("impossible length: %v, want torn", err)
	}
}

func TestFIFOAndReopen(t *testing.T) {
	dir := t.TempDir()
	s, _ := mustOpen(t, dir, 1<<20)
	if d := appendAll(t, s, 0, 500); len(d) != 0 {
		t.Fatalf("dropped %d under the bound", len(d))
	}
	recs, err := s.Peek(100)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(recs[99].Seq); err != nil {
		t.Fatal(err)
	}
	expect(t, s, 100, 500)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopened: the removed records stay removed, the rest in order.
	s, rec := mustOpen(t, dir, 1<<20)
	if rec.Records != 400 || rec.TornBytes != 0 || len(rec.Dropped) != 0 {
		t.Fatalf("recovery %+v, want 400 records, nothing torn or dropped", rec)
	}
	expect(t, s, 100, 500)
	appendAll(t, s, 500, 600)
	all, _ := s.Peek(1000)
	if err := s.Remove(all[len(all)-1].Seq); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 0 || s.Bytes() != 0 {
		t.Fatalf("after removing all: %d records, %d bytes", s.Len(), s.Bytes())
	}
	_ = s.Close()
	s, rec = mustOpen(t, dir, 1<<20)
	if rec.Records != 0 {
		t.Fatalf("reopened empty spool has %d records", rec.Records)
	}
	appendAll(t, s, 600, 610)
	expect(t, s, 600, 610)
	segs, _ := listSegments(dir)
	if len(segs) > 2 {
		t.Errorf("%d segment files left for 10 records: delivered segments are not deleted", len(segs))
	}
}

// TestTornTail: a crash in the middle of a write leaves part of a record;
// reopening cuts it off and keeps every whole record.
func TestTornTail(t *testing.T) {
	for _, damage := range []struct {
		name string
		f    func(b []byte) []byte
	}{
		{"half a header", func(b []byte) []byte { return append(b, 0, 0, 0) }},
		{"half a payload", func(b []byte) []byte { return append(b, appendFrame(nil, payload(99))[:15]...) }},
		{"bad checksum", func(b []byte) []byte {
			f := appendFrame(nil, payload(99))
			f[len(f)-1] ^= 0x40
			return append(b, f...)
		}},
		{"zeros", func(b []byte) []byte { return append(b, make([]byte, 4096)...) }},
		{"garbage", func(b []byte) []byte { return append(b, []byte("\xff\xff\xff\xffhostile garbage")...) }},
	} {
		t.Run(damage.name, func(t *testing.T) {
			dir := t.TempDir()
			s, _ := mustOpen(t, dir, 1<<20)
			appendAll(t, s, 0, 20)
			_ = s.Close()
			segs, _ := listSegments(dir)
			last := segPath(dir, segs[len(segs)-1])
			b, err := os.ReadFile(last)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(last, damage.f(b), 0o600); err != nil {
				t.Fatal(err)
			}
			s, rec := mustOpen(t, dir, 1<<20)
			if rec.TornBytes == 0 || rec.Records != 20 {
				t.Fatalf("recovery %+v, want 20 records and a torn tail", rec)
			}
			expect(t, s, 0, 20)
			appendAll(t, s, 20, 25) // appends after the cut, not after the garbage
			_ = s.Close()
			s, rec = mustOpen(t, dir, 1<<20)
			if rec.TornBytes != 0 {
				t.Fatalf("second reopen cut %d bytes more", rec.TornBytes)
			}
			expect(t, s, 0, 25)
		})
	}
}

// TestFullDropsOldest: a full spool drops exactly the oldest records, says
// which, keeps the rest in order and stays within its bound, on disk too.
func TestFullDropsOldest(t *testing.T) {
	dir := t.TempDir()
	size := framedSize(len(payload(0)))
	const fits = 400
	max := fits * size
	s, _ := mustOpen(t, dir, max)
	if d := appendAll(t, s, 0, fits); len(d) != 0 {
		t.Fatalf("dropped %d while it fits", len(d))
	}
	dropped := appendAll(t, s, fits, fits+250)
	if len(dropped) != 250 {
		t.Fatalf("dropped %d records, want 250", len(dropped))
	}
	for i, d := range dropped {
		if !bytes.Equal(d.Data, payload(i)) {
			t.Fatalf("dropped record %d is %q, want %q (the oldest)", i, d.Data, payload(i))
		}
	}
	expect(t, s, 250, fits+250)
	if s.Bytes() > max {
		t.Fatalf("%d bytes queued over a bound of %d", s.Bytes(), max)
	}
	var disk int64
	segs, _ := listSegments(dir)
	for _, id := range segs {
		st, err := os.Stat(segPath(dir, id))
		if err != nil {
			t.Fatal(err)
		}
		disk += st.Size()
	}
	if limit := max + s.segMax; disk > limit {
		t.Fatalf("%d bytes of segments on disk, want at most %d", disk, limit)
	}
	// Dropped records stay dropped after a restart.
	_ = s.Close()
	s, rec := mustOpen(t, dir, max)
	if len(rec.Dropped) != 0 || rec.Records != fits {
		t.Fatalf("recovery %+v", rec)
	}
	expect(t, s, 250, fits+250)
	_ = s.Close()
	// A lower bound drops the oldest at open and says so.
	s, rec = mustOpen(t, dir, max/2)
	if len(rec.Dropped) != fits/2 || !bytes.Equal(rec.Dropped[0].Data, payload(250)) {
		t.Fatalf("reopened with half the bound: dropped %d, want %d from record 250", len(rec.Dropped), fits/2)
	}
	expect(t, s, 250+fits/2, fits+250)
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := Open(dir, MinBytes-1); err == nil {
		t.Fatal("a bound below MinBytes was accepted")
	}
	s, _ := mustOpen(t, dir, MinBytes)
	if _, err := s.Append(nil); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty record: %v, want ErrEmpty", err)
	}
	if _, err := s.Append(make([]byte, MinBytes)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("record bigger than the spool: %v, want ErrTooLarge", err)
	}
	if _, _, err := Open(dir, MinBytes); err == nil {
		t.Fatal("a second Open of a directory in use succeeded")
	}
	_ = s.Close()
	if _, err := s.Append(payload(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	// A garbage head file and foreign files are not fatal.
	if err := os.WriteFile(filepath.Join(dir, headFile), []byte("not a head"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, _ = mustOpen(t, dir, MinBytes)
	appendAll(t, s, 0, 3)
	expect(t, s, 0, 3)
}
