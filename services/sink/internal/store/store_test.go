package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// contract is the store test suite every object backend must pass.
var contract = []struct {
	name string
	run  func(*testing.T, backend)
}{
	{"PutGetRoundTrip", testPutGetRoundTrip},
	{"GetNotFound", testGetNotFound},
	{"PutRejectsInvalidFrames", testPutRejectsInvalidFrames},
	{"InvalidIDsRejected", testInvalidIDsRejected},
	{"IdempotentReplay", testIdempotentReplay},
	{"PersistenceAcrossReopen", testPersistenceAcrossReopen},
	{"OpenTwiceIsLocked", testOpenTwiceIsLocked},
	{"ListFilterAndRange", testListFilterAndRange},
	{"ListPagination", testListPagination},
	{"ListPaginationWithConcurrentInserts", testListPaginationWithConcurrentInserts},
	{"MalformedPageToken", testMalformedPageToken},
	{"ConcurrentPutSameID", testConcurrentPutSameID},
	{"ConcurrentPutsDistinctIDs", testConcurrentPutsDistinctIDs},
	{"CrashFileWrittenIndexMissing", testCrashFileWrittenIndexMissing},
	{"IndexEntryWithoutFile", testIndexEntryWithoutFile},
	{"Stats", testStats},
	{"CancelledContext", testCancelledContext},
}

func testPersistenceAcrossReopen(t *testing.T, b backend) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := b.open(ctx, t, dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	var frames []FrameMeta
	for i := range 20 {
		m := newFrame(fmt.Sprintf("cam-%d", i%3), uint64(i), base.Add(time.Duration(i)*time.Second))
		frames = append(frames, m)
		mustPut(t, s, m, fakeJPEG(m.FrameID, 100+i))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Put(ctx, frames[0], []byte{1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: err = %v, want ErrClosed", err)
	}

	s2 := openStore(t, b, dir)
	if n, err := s2.Count(ctx); err != nil || n != 20 {
		t.Fatalf("Count after reopen = %d, %v", n, err)
	}
	for i, m := range frames {
		got, data, err := s2.Get(ctx, m.FrameID)
		if err != nil {
			t.Fatalf("Get after reopen: %v", err)
		}
		if !bytes.Equal(data, fakeJPEG(m.FrameID, 100+i)) || got.CameraID != m.CameraID || !got.CaptureTime.Equal(m.CaptureTime) {
			t.Fatalf("frame %s differs after reopen", m.FrameID)
		}
		// A replay after the restart changes nothing.
		if stored, err := s2.Put(ctx, m, []byte("different")); err != nil || stored {
			t.Fatalf("replay after reopen = %v, %v", stored, err)
		}
	}
	list, _, err := s2.List(ctx, Query{CameraID: "cam-1"})
	if err != nil || len(list) != 7 {
		t.Fatalf("List cam-1 after reopen = %d, %v; want 7", len(list), err)
	}
	assertNoFilesExcept(t, s2, 20)
}

func testOpenTwiceIsLocked(t *testing.T, b backend) {
	dir := t.TempDir()
	first := openStore(t, b, dir)
	if b.shared {
		testOpenTwiceShares(t, b, dir, first)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if s, err := b.open(ctx, t, dir, nil); err == nil {
		_ = s.Close()
		t.Fatal("second Open of the same dir succeeded")
	}
}

// testOpenTwiceShares: two stores on one shared index (two replicas) see
// each other's frames, and a frame one stored is not stored again by the
// other.
func testOpenTwiceShares(t *testing.T, b backend, dir string, first *Store) {
	ctx := context.Background()
	second := openStore(t, b, dir)
	m := newFrame("cam-1", 1, base)
	mustPut(t, first, m, fakeJPEG(m.FrameID, 100))
	if stored, err := second.Put(ctx, m, fakeJPEG(m.FrameID, 100)); err != nil || stored {
		t.Fatalf("the second replica's Put of a stored frame = %v, %v; want false, nil", stored, err)
	}
	if _, _, err := second.Get(ctx, m.FrameID); err != nil {
		t.Fatalf("the second replica's Get: %v", err)
	}
	if n, err := second.Count(ctx); err != nil || n != 1 {
		t.Fatalf("the second replica's Count = %d, %v; want 1", n, err)
	}
}

func testCancelledContext(t *testing.T, b backend) {
	s := openStore(t, b, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := newFrame("cam-1", 1, base)
	if _, err := s.Put(ctx, m, []byte{1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put: %v", err)
	}
	if _, _, err := s.List(ctx, Query{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("List: %v", err)
	}
	if _, err := s.Verify(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify: %v", err)
	}
	if _, err := Open(ctx, t.TempDir(), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Open: %v", err)
	}
	assertNoFilesExcept(t, s, 0)
}
