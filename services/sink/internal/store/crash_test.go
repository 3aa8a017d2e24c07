package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
)

func testCrashFileWrittenIndexMissing(t *testing.T, b backend) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openStore(t, b, dir)
	ok := newFrame("cam-1", 1, base)
	mustPut(t, s, ok, fakeJPEG(ok.FrameID, 10))

	// Simulate crashes between the file write and the index commit: the
	// frame file exists (written atomically), the index has no entry.
	same := newFrame("cam-1", 2, base.Add(time.Second))
	sameData := fakeJPEG(same.FrameID, 500)
	samePath := relPath(same)
	other := newFrame("cam-2", 3, base.Add(2*time.Second))
	otherData := fakeJPEG(other.FrameID, 300)
	otherPath := relPath(other)
	objs := s.Objects()
	for _, f := range []struct {
		rel  string
		data []byte
	}{
		{samePath, sameData},
		{otherPath, []byte("stale bytes of an earlier attempt")},
		// An interrupted atomic write leaves a temp file, and someone
		// left a stray file.
		{"frames/site-a/cam-1/2024-11-26/" + tempPrefix + "x.jpg-123", []byte("partial")},
		{"frames/notes.txt", []byte("hi")},
	} {
		if err := objs.Put(ctx, f.rel, f.data); err != nil {
			t.Fatal(err)
		}
	}

	// Restart: Open does not rescan; Verify reports.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, b, dir)
	rep, err := s.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := VerifyReport{
		IndexedFrames:  1,
		FilesScanned:   5,
		MetaScanned:    1, // the indexed frame's
		UnindexedFiles: []string{samePath, otherPath},
		TempFiles:      []string{"frames/site-a/cam-1/2024-11-26/" + tempPrefix + "x.jpg-123"},
		StrayFiles:     []string{"frames/notes.txt"},
	}
	slices.Sort(want.UnindexedFiles)
	if !reflect.DeepEqual(rep, want) {
		t.Fatalf("Verify:\n got %+v\nwant %+v", rep, want)
	}
	if _, _, err := s.Get(ctx, same.FrameID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unindexed frame visible to Get: %v", err)
	}

	// Put re-indexes: the identical file is kept, the stale one replaced.
	sameFI, _ := os.Stat(filepath.Join(dir, samePath)) // filesystem only
	if !mustPut(t, s, same, sameData) {
		t.Fatal("re-index Put returned stored=false")
	}
	if !mustPut(t, s, other, otherData) {
		t.Fatal("re-index Put returned stored=false")
	}
	if fi, _ := os.Stat(filepath.Join(dir, samePath)); b.fs && !os.SameFile(fi, sameFI) {
		t.Fatal("identical unindexed file was rewritten")
	}
	for _, c := range []struct {
		m    FrameMeta
		data []byte
	}{{same, sameData}, {other, otherData}} {
		_, data, err := s.Get(ctx, c.m.FrameID)
		if err != nil || !bytes.Equal(data, c.data) {
			t.Fatalf("Get(%s) after re-index: %v", c.m.FrameID, err)
		}
		if stored, err := s.Put(ctx, c.m, c.data); stored || err != nil {
			t.Fatalf("replay after re-index = %v, %v", stored, err)
		}
	}
	if n, _ := s.Count(ctx); n != 3 {
		t.Fatalf("Count = %d, want 3", n)
	}
	rep, err = s.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.UnindexedFiles) != 0 || len(rep.MissingFiles) != 0 || len(rep.IndexErrors) != 0 || rep.IndexedFrames != 3 {
		t.Fatalf("Verify after re-index: %+v", rep)
	}
}

func testIndexEntryWithoutFile(t *testing.T, b backend) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openStore(t, b, dir)
	a := newFrame("cam-1", 1, base)
	b2 := newFrame("cam-1", 2, base)
	mustPut(t, s, a, fakeJPEG(a.FrameID, 10))
	mustPut(t, s, b2, fakeJPEG(b2.FrameID, 10))
	if err := s.Objects().Delete(ctx, relPath(a)); err != nil {
		t.Fatal(err)
	}
	if err := s.Objects().Put(ctx, relPath(b2), []byte("truncated")); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || !slices.Equal(rep.MissingFiles, []string{a.FrameID}) || !slices.Equal(rep.SizeMismatches, []string{b2.FrameID}) ||
		len(rep.UnindexedFiles) != 0 || len(rep.IndexErrors) != 0 {
		t.Fatalf("Verify = %+v", rep)
	}
	if _, _, err := s.Get(ctx, a.FrameID); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of frame without file: err = %v, want ErrCorrupt", err)
	}
	if _, _, err := s.Get(ctx, b2.FrameID); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of changed file: err = %v, want ErrCorrupt", err)
	}
	// A replay does not resurrect or rewrite anything.
	if stored, err := s.Put(ctx, a, fakeJPEG(a.FrameID, 10)); stored || err != nil {
		t.Fatalf("replay = %v, %v", stored, err)
	}
}
