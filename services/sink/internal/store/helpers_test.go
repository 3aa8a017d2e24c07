package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

var base = time.Date(2024, 11, 26, 23, 59, 50, 0, time.UTC)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func openStore(t testing.TB, b backend, dir string) *Store {
	t.Helper()
	s, err := b.open(context.Background(), t, dir, testLogger(t))
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func frameID(camera string, epoch, seq uint64) string {
	return fmt.Sprintf("%s_%d_%08d", camera, epoch, seq)
}

func newFrame(camera string, seq uint64, capture time.Time) FrameMeta {
	const epoch = 1732650000
	return FrameMeta{
		FrameID:         frameID(camera, epoch, seq),
		Site:            "site-a",
		CameraID:        camera,
		SessionEpoch:    epoch,
		Sequence:        seq,
		CaptureTime:     capture,
		MotionScore:     0.42,
		Boxes:           []Box{{X: 1, Y: 2, Width: 30, Height: 40}},
		Width:           1280,
		Height:          720,
		CaptureNode:     "edge-1",
		EnrichNode:      "enrich-0",
		SourceTopic:     "frames.enriched",
		SourcePartition: 3,
		SourceOffset:    int64(seq) * 10,
	}
}

func fakeJPEG(id string, n int) []byte {
	b := make([]byte, n)
	b[0], b[1] = 0xFF, 0xD8
	copy(b[2:], id)
	if n >= 4 {
		b[n-2], b[n-1] = 0xFF, 0xD9
	}
	return b
}

func mustPut(t testing.TB, s *Store, m FrameMeta, data []byte) bool {
	t.Helper()
	stored, err := s.Put(context.Background(), m, data)
	if err != nil {
		t.Fatalf("Put(%s): %v", m.FrameID, err)
	}
	return stored
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// assertNoFilesExcept checks that frames/ holds exactly n frame files and
// no temporary or stray files, and that Verify is clean.
func assertNoFilesExcept(t *testing.T, s *Store, n int) {
	t.Helper()
	rep, err := s.Verify(context.Background())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !rep.OK() || rep.FilesScanned != n || rep.IndexedFrames != n {
		t.Fatalf("Verify = %+v; want OK with %d files and frames", rep, n)
	}
}

func ids(ms []FrameMeta) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.FrameID
	}
	return out
}

// listAll pages through q and returns all ids, failing on an empty page
// with a next token.
func listAll(t *testing.T, s *Store, q Query) (all []string, pages int) {
	t.Helper()
	for {
		page, next, err := s.List(context.Background(), q)
		if err != nil {
			t.Fatalf("List page %d: %v", pages, err)
		}
		pages++
		if len(page) > q.Limit {
			t.Fatalf("page of %d > limit %d", len(page), q.Limit)
		}
		if next != "" && len(page) == 0 {
			t.Fatal("empty page with a next token")
		}
		all = append(all, ids(page)...)
		if next == "" {
			return all, pages
		}
		q.PageToken = next
	}
}
