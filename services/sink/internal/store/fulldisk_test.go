package store

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/harness/smallfs"
)

// TestFullDiskRefusesThenResumes fills a real 4 MiB filesystem under a
// store: the put that does not fit fails with ENOSPC (so the sink can say
// the disk is full and commit nothing), what was stored stays readable and
// consistent, no temporary file is left behind, and once the filesystem
// grows the same put succeeds and the store goes on.
func TestFullDiskRefusesThenResumes(t *testing.T) {
	dir := t.TempDir()
	smallfs.Mount(t, dir, 4<<20)
	s := openStore(t, fsBackend(), dir)
	ctx := context.Background()
	start := time.Unix(1732650000, 0)
	var stored []FrameMeta
	var failed FrameMeta
	var failedJPEG []byte
	for seq := uint64(1); ; seq++ {
		m := newFrame("cam-1", seq, start.Add(time.Duration(seq)*time.Second))
		data := fakeJPEG(m.FrameID, 64<<10)
		_, err := s.Put(ctx, m, data)
		if err == nil {
			stored = append(stored, m)
			continue
		}
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("put %d on a full disk: %v, want an error that is ENOSPC", seq, err)
		}
		failed, failedJPEG = m, data
		break
	}
	if len(stored) < 10 {
		t.Fatalf("only %d frames fitted 4 MiB", len(stored))
	}
	t.Logf("%d frames of 64 KiB stored before the disk was full", len(stored))
	for _, m := range stored {
		if _, _, err := s.Get(ctx, m.FrameID); err != nil {
			t.Fatalf("frame %s stored before the disk filled: %v", m.FrameID, err)
		}
	}
	assertNoFilesExcept(t, s, len(stored))

	smallfs.Grow(t, dir, 64<<20)
	if stored, err := s.Put(ctx, failed, failedJPEG); err != nil || !stored {
		t.Fatalf("the refused put once there is space: stored %v, %v", stored, err)
	}
	assertNoFilesExcept(t, s, len(stored)+1)
}
