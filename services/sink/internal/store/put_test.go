package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func testPutRejectsInvalidFrames(t *testing.T, b backend) {
	s := openStore(t, b, t.TempDir())
	ok := newFrame("cam-1", 1, base)
	data := fakeJPEG(ok.FrameID, 100)
	mod := func(f func(*FrameMeta)) FrameMeta { m := ok; f(&m); return m }
	tests := []struct {
		name string
		meta FrameMeta
		data []byte
		want error
	}{
		{"no capture time", mod(func(m *FrameMeta) { m.CaptureTime = time.Time{} }), data, ErrInvalidFrame},
		{"capture time out of range", mod(func(m *FrameMeta) { m.CaptureTime = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) }), data, ErrInvalidFrame},
		{"empty jpeg", ok, nil, ErrInvalidFrame},
		{"wrong sha", mod(func(m *FrameMeta) { m.ContentSHA256 = strings.Repeat("0", 64) }), data, ErrInvalidFrame},
		{"wrong size", mod(func(m *FrameMeta) { m.SizeBytes = 5 }), data, ErrInvalidFrame},
		{"bad camera", mod(func(m *FrameMeta) { m.CameraID = "../cam" }), data, ErrInvalidID},
		{"empty camera", mod(func(m *FrameMeta) { m.CameraID = "" }), data, ErrInvalidID},
		{"bad site", mod(func(m *FrameMeta) { m.Site = ".." }), data, ErrInvalidID},
		{"site with slash", mod(func(m *FrameMeta) { m.Site = "a/b" }), data, ErrInvalidID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stored, err := s.Put(context.Background(), tc.meta, tc.data)
			if !errors.Is(err, tc.want) || stored {
				t.Fatalf("Put = %v, %v; want false, %v", stored, err, tc.want)
			}
		})
	}
	// Matching sha (any case) and size are accepted.
	m := mod(func(m *FrameMeta) { m.ContentSHA256 = strings.ToUpper(sha(data)); m.SizeBytes = int64(len(data)) })
	if !mustPut(t, s, m, data) {
		t.Fatal("valid frame not stored")
	}
	assertNoFilesExcept(t, s, 1)
}

func testInvalidIDsRejected(t *testing.T, b backend) {
	s := openStore(t, b, t.TempDir())
	ids := []struct{ name, id string }{
		{"traversal", "../x"},
		{"deep traversal", "../../etc/passwd"},
		{"dotdot", ".."},
		{"dot", "."},
		{"hidden", ".hidden"},
		{"temp-like", ".tmp-x"},
		{"slash", "a/b"},
		{"backslash", `a\b`},
		{"absolute", "/x"},
		{"empty", ""},
		{"nul", "a\x00b"},
		{"space", "a b"},
		{"non-ascii", "cam-é_1_00000001"},
		{"too long", strings.Repeat("a", MaxIDLength+1)},
	}
	for _, tc := range ids {
		t.Run(tc.name, func(t *testing.T) {
			m := newFrame("cam-1", 1, base)
			m.FrameID = tc.id
			stored, err := s.Put(context.Background(), m, []byte{1, 2, 3})
			if !errors.Is(err, ErrInvalidID) || stored {
				t.Fatalf("Put(%q) = %v, %v; want ErrInvalidID", tc.id, stored, err)
			}
			if _, _, err := s.Get(context.Background(), tc.id); !errors.Is(err, ErrInvalidID) {
				t.Fatalf("Get(%q) err = %v; want ErrInvalidID", tc.id, err)
			}
		})
	}
	// The longest valid id is accepted.
	m := newFrame("cam-1", 1, base)
	m.FrameID = strings.Repeat("a", MaxIDLength)
	if !mustPut(t, s, m, []byte{1}) {
		t.Fatal("id of max length not stored")
	}
	// Nothing escaped the store directory.
	if fo, ok := s.Objects().(*FSObjects); ok {
		if _, err := os.Stat(filepath.Join(filepath.Dir(fo.Root()), "x.jpg")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("file written outside the store: %v", err)
		}
	}
	assertNoFilesExcept(t, s, 1)
}

func testIdempotentReplay(t *testing.T, b backend) {
	s := openStore(t, b, t.TempDir())
	m := newFrame("cam-1", 50, base)
	data := fakeJPEG(m.FrameID, 2048)
	if !mustPut(t, s, m, data) {
		t.Fatal("first Put returned stored=false")
	}
	meta1, _, err := s.Get(context.Background(), m.FrameID)
	if err != nil {
		t.Fatal(err)
	}
	var p string
	var fi1 os.FileInfo
	if b.fs {
		p = filepath.Join(s.Objects().(*FSObjects).Root(), "frames/site-a/cam-1/2024-11-26", m.FrameID+".jpg")
		if fi1, err = os.Stat(p); err != nil {
			t.Fatal(err)
		}
	}
	st1, _ := s.Stats(context.Background())

	replays := []struct {
		name string
		meta FrameMeta
		data []byte
	}{
		{"identical", m, data},
		{"different bytes", m, fakeJPEG("other", 10)},
		{"different metadata", func() FrameMeta {
			r := m
			r.CaptureTime = base.Add(48 * time.Hour) // would be another day dir
			r.CameraID = "cam-9"
			r.MotionScore = 0.99
			return r
		}(), data},
	}
	for _, tc := range replays {
		t.Run(tc.name, func(t *testing.T) {
			time.Sleep(10 * time.Millisecond) // a rewrite would change the mtime
			stored, err := s.Put(context.Background(), tc.meta, tc.data)
			if err != nil || stored {
				t.Fatalf("replay Put = %v, %v; want false, nil", stored, err)
			}
			meta2, data2, err := s.Get(context.Background(), m.FrameID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(meta1, meta2) {
				t.Fatalf("index changed:\n got %+v\nwant %+v", meta2, meta1)
			}
			if !bytes.Equal(data2, data) {
				t.Fatal("file bytes changed")
			}
			if b.fs {
				fi2, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if !fi2.ModTime().Equal(fi1.ModTime()) || !os.SameFile(fi1, fi2) {
					t.Fatal("file was rewritten")
				}
			}
			st2, _ := s.Stats(context.Background())
			if st2.Frames != st1.Frames || st2.Bytes != st1.Bytes {
				t.Fatalf("stats changed: %+v -> %+v", st1, st2)
			}
			all, _, err := s.List(context.Background(), Query{})
			if err != nil || len(all) != 1 {
				t.Fatalf("List = %d frames, %v; want 1", len(all), err)
			}
		})
	}
	assertNoFilesExcept(t, s, 1)
}

func testConcurrentPutSameID(t *testing.T, b backend) {
	dir := t.TempDir()
	s := openStore(t, b, dir)
	// On a shared index, half the writers are a second replica: only the
	// index's idempotent insert keeps them from storing the frame twice.
	replicas := []*Store{s}
	if b.shared {
		replicas = append(replicas, openStore(t, b, dir))
	}
	m := newFrame("cam-1", 50, base)
	data := fakeJPEG(m.FrameID, 4096)
	const n = 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		stored  int
		errs    []error
		startCh = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-startCh
			ok, err := replicas[i%len(replicas)].Put(context.Background(), m, data)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if ok {
				stored++
			}
		})
	}
	close(startCh)
	wg.Wait()
	if len(errs) > 0 || stored != 1 {
		t.Fatalf("stored %d times, errors %v; want exactly once", stored, errs)
	}
	if n, _ := s.Count(context.Background()); n != 1 {
		t.Fatalf("Count = %d", n)
	}
	assertNoFilesExcept(t, s, 1)
}

func testConcurrentPutsDistinctIDs(t *testing.T, b backend) {
	s := openStore(t, b, t.TempDir())
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				// Every goroutine also replays the ids of goroutine g-1.
				for _, gg := range []int{g, (g + 7) % 8} {
					m := newFrame(fmt.Sprintf("cam-%d", gg), uint64(i), base.Add(time.Duration(i)*time.Second))
					if _, err := s.Put(context.Background(), m, fakeJPEG(m.FrameID, 64)); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	assertNoFilesExcept(t, s, 160)
	if got, _ := listAll(t, s, Query{Limit: 50}); len(got) != 160 {
		t.Fatalf("List: %d frames", len(got))
	}
}
