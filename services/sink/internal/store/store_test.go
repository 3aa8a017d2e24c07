package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
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

func testPutGetRoundTrip(t *testing.T, b backend) {
	s := openStore(t, b, t.TempDir())
	fixed := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	s.now = func() time.Time { return fixed }

	full := newFrame("cam-1", 50, base.Add(123456789*time.Nanosecond))
	minimal := FrameMeta{FrameID: "x", Site: "s", CameraID: "c", CaptureTime: time.Unix(0, 1)}
	local := newFrame("cam.2", 7, time.Date(2024, 11, 27, 1, 0, 0, 0, time.FixedZone("UTC+3", 3*3600)))
	withStored := newFrame("cam-3", 8, base)
	withStored.StoredTime = base.Add(time.Second)
	pre1970 := newFrame("cam-4", 9, time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC))

	tests := []struct {
		name     string
		meta     FrameMeta
		size     int
		wantPath string
		wantStor time.Time
	}{
		{"full", full, 1000, "frames/site-a/cam-1/2024-11-26/cam-1_1732650000_00000050.jpg", fixed},
		{"minimal", minimal, 3, "frames/s/c/1970-01-01/x.jpg", fixed},
		{"non-UTC capture time uses UTC date", local, 10, "frames/site-a/cam.2/2024-11-26/cam.2_1732650000_00000007.jpg", fixed},
		{"given stored time kept", withStored, 10, "frames/site-a/cam-3/2024-11-26/cam-3_1732650000_00000008.jpg", withStored.StoredTime},
		{"before 1970", pre1970, 10, "frames/site-a/cam-4/1969-07-20/cam-4_1732650000_00000009.jpg", fixed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := fakeJPEG(tc.meta.FrameID, tc.size)
			if !mustPut(t, s, tc.meta, data) {
				t.Fatal("first Put returned stored=false")
			}
			got, gotData, err := s.Get(context.Background(), tc.meta.FrameID)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if !bytes.Equal(gotData, data) {
				t.Fatal("Get returned different bytes")
			}
			want := tc.meta
			want.CaptureTime = want.CaptureTime.UTC()
			want.StoredTime = tc.wantStor
			want.ContentSHA256 = sha(data)
			want.SizeBytes = int64(len(data))
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Get meta:\n got %+v\nwant %+v", got, want)
			}
			onDisk, err := s.Objects().Get(context.Background(), tc.wantPath)
			if err != nil {
				t.Fatalf("object not at %s: %v", tc.wantPath, err)
			}
			if !bytes.Equal(onDisk, data) {
				t.Fatal("file content differs")
			}
		})
	}
	if n, err := s.Count(context.Background()); err != nil || n != uint64(len(tests)) {
		t.Fatalf("Count = %d, %v; want %d", n, err, len(tests))
	}
}

func testGetNotFound(t *testing.T, b backend) {
	s := openStore(t, b, t.TempDir())
	_, _, err := s.Get(context.Background(), "cam-1_1_00000001")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get missing: err = %v, want ErrNotFound", err)
	}
}

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
	if _, err := os.Stat(filepath.Join(filepath.Dir(s.Dir()), "x.jpg")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("file written outside the store: %v", err)
	}
	assertNoFilesExcept(t, s, 1)
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
	p := filepath.Join(s.Dir(), "frames/site-a/cam-1/2024-11-26", m.FrameID+".jpg")
	var fi1 os.FileInfo
	if b.fs {
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
	openStore(t, b, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if s, err := b.open(ctx, t, dir, nil); err == nil {
		_ = s.Close()
		t.Fatal("second Open of the same dir succeeded")
	}
}

func ids(ms []FrameMeta) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.FrameID
	}
	return out
}

func testListFilterAndRange(t *testing.T, b backend) {
	s := openStore(t, b, t.TempDir())
	ctx := context.Background()
	// cam-1: seq 0..4 at base+0s..4s; cam-10 (prefix of nothing, but
	// cam-1 is its prefix): seq 0..2 at base+0s..2s; cam-2: one at base+2s.
	put := func(cam string, seq uint64, at time.Duration) string {
		m := newFrame(cam, seq, base.Add(at))
		mustPut(t, s, m, fakeJPEG(m.FrameID, 10))
		return m.FrameID
	}
	var c1, c10 []string
	for i := range 5 {
		c1 = append(c1, put("cam-1", uint64(i), time.Duration(i)*time.Second))
	}
	for i := range 3 {
		c10 = append(c10, put("cam-10", uint64(i), time.Duration(i)*time.Second))
	}
	c2 := put("cam-2", 0, 2*time.Second)
	at := func(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }

	tests := []struct {
		name string
		q    Query
		want []string
	}{
		{"camera, unbounded", Query{CameraID: "cam-1"}, c1},
		{"camera prefix not confused", Query{CameraID: "cam-10"}, c10},
		{"unknown camera", Query{CameraID: "cam-3"}, nil},
		{"start inclusive", Query{CameraID: "cam-1", Start: at(2)}, c1[2:]},
		{"end exclusive", Query{CameraID: "cam-1", End: at(2)}, c1[:2]},
		{"start and end", Query{CameraID: "cam-1", Start: at(1), End: at(3)}, c1[1:3]},
		{"one nanosecond window", Query{CameraID: "cam-1", Start: at(3), End: at(3).Add(time.Nanosecond)}, c1[3:4]},
		{"just after frame", Query{CameraID: "cam-1", Start: at(3).Add(time.Nanosecond), End: at(4)}, nil},
		{"empty window start==end", Query{CameraID: "cam-1", Start: at(2), End: at(2)}, nil},
		{"end after all", Query{CameraID: "cam-1", Start: at(4), End: at(100)}, c1[4:]},
		{"start before 1678", Query{CameraID: "cam-1", Start: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), End: at(1)}, c1[:1]},
		{"end after 2262", Query{CameraID: "cam-1", Start: at(4), End: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}, c1[4:]},
		{"non-UTC bounds", Query{CameraID: "cam-1", Start: at(1).In(time.FixedZone("x", -5*3600)), End: at(2).In(time.FixedZone("y", 7*3600))}, c1[1:2]},
		// Ties in capture time are ordered by frame id bytes: "cam-10_..."
		// sorts before "cam-1_..." because '0' < '_'.
		{"all cameras window", Query{Start: at(2), End: at(3)}, []string{c10[2], c1[2], c2}},
		{"all cameras", Query{}, []string{c10[0], c1[0], c10[1], c1[1], c10[2], c1[2], c2, c1[3], c1[4]}},
		{"limit", Query{CameraID: "cam-1", Limit: 2}, c1[:2]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := s.List(ctx, tc.q)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if !slices.Equal(ids(got), tc.want) {
				t.Fatalf("List ids:\n got %v\nwant %v", ids(got), tc.want)
			}
			for _, m := range got {
				if tc.q.CameraID != "" && m.CameraID != tc.q.CameraID {
					t.Fatalf("frame of camera %s in list of %s", m.CameraID, tc.q.CameraID)
				}
			}
		})
	}

	if _, _, err := s.List(ctx, Query{Start: at(2), End: at(1)}); !errors.Is(err, ErrInvalidQuery) {
		t.Fatalf("end before start: err = %v, want ErrInvalidQuery", err)
	}
	if _, _, err := s.List(ctx, Query{CameraID: "../cam"}); !errors.Is(err, ErrInvalidID) {
		t.Fatalf("bad camera: err = %v, want ErrInvalidID", err)
	}
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

func testListPagination(t *testing.T, b backend) {
	s := openStore(t, b, t.TempDir())
	cams := []string{"cam-a", "cam-b", "cam-c", "cam-1"}
	type fr struct {
		id  string
		cam string
		at  time.Time
	}
	var frames []fr
	for i := range 250 {
		cam := cams[i%len(cams)]
		// Groups of frames share a capture time (across and within
		// cameras) so that ties are broken by frame id across page ends.
		at := base.Add(time.Duration(i/5) * time.Second)
		m := newFrame(cam, uint64(1000-i), at) // sequence runs against time
		frames = append(frames, fr{m.FrameID, cam, at})
		mustPut(t, s, m, fakeJPEG(m.FrameID, 20))
	}
	sortFr := func(f []fr) []string {
		slices.SortFunc(f, func(a, b fr) int {
			if c := a.at.Compare(b.at); c != 0 {
				return c
			}
			return strings.Compare(a.id, b.id)
		})
		out := make([]string, len(f))
		for i := range f {
			out[i] = f[i].id
		}
		return out
	}
	filter := func(keep func(fr) bool) []string {
		var out []fr
		for _, f := range frames {
			if keep(f) {
				out = append(out, f)
			}
		}
		return sortFr(out)
	}
	start, end := base.Add(7*time.Second), base.Add(40*time.Second)
	tests := []struct {
		name string
		q    Query
		want []string
	}{
		{"all cameras", Query{}, filter(func(fr) bool { return true })},
		{"one camera", Query{CameraID: "cam-b"}, filter(func(f fr) bool { return f.cam == "cam-b" })},
		{"all cameras in range", Query{Start: start, End: end},
			filter(func(f fr) bool { return !f.at.Before(start) && f.at.Before(end) })},
		{"one camera in range", Query{CameraID: "cam-1", Start: start, End: end},
			filter(func(f fr) bool { return f.cam == "cam-1" && !f.at.Before(start) && f.at.Before(end) })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.Limit = 7
			got, pages := listAll(t, s, tc.q)
			seen := map[string]bool{}
			for _, id := range got {
				if seen[id] {
					t.Fatalf("duplicate %s", id)
				}
				seen[id] = true
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("paged ids (%d) != expected (%d):\n got %v\nwant %v", len(got), len(tc.want), got, tc.want)
			}
			if wantPages := max(1, (len(tc.want)+6)/7); pages != wantPages {
				t.Fatalf("pages = %d, want %d", pages, wantPages)
			}
		})
	}
	if got, _ := listAll(t, s, Query{Limit: 7}); len(got) != 250 {
		t.Fatalf("all cameras: %d frames, want 250", len(got))
	}
}

func testListPaginationWithConcurrentInserts(t *testing.T, b backend) {
	s := openStore(t, b, t.TempDir())
	ctx := context.Background()
	for i := range 10 {
		m := newFrame("cam-1", uint64(i), base.Add(time.Duration(i)*time.Second))
		mustPut(t, s, m, fakeJPEG(m.FrameID, 10))
	}
	page, next, err := s.List(ctx, Query{Limit: 4})
	if err != nil || len(page) != 4 || next == "" {
		t.Fatalf("first page = %d, %q, %v", len(page), next, err)
	}
	// Insert one frame before the cursor and one after it.
	before := newFrame("cam-2", 1, base.Add(500*time.Millisecond))
	after := newFrame("cam-2", 2, base.Add(8500*time.Millisecond))
	mustPut(t, s, before, fakeJPEG(before.FrameID, 10))
	mustPut(t, s, after, fakeJPEG(after.FrameID, 10))
	rest, _ := listAll(t, s, Query{Limit: 4, PageToken: next})
	if len(rest) != 7 || slices.Contains(rest, before.FrameID) || !slices.Contains(rest, after.FrameID) {
		t.Fatalf("rest = %v", rest)
	}
	for _, id := range ids(page) {
		if slices.Contains(rest, id) {
			t.Fatalf("%s repeated", id)
		}
	}
}

func testMalformedPageToken(t *testing.T, b backend) {
	s := openStore(t, b, t.TempDir())
	ctx := context.Background()
	for i := range 5 {
		for _, cam := range []string{"cam-1", "cam-2"} {
			m := newFrame(cam, uint64(i), base.Add(time.Duration(i)*time.Second))
			mustPut(t, s, m, fakeJPEG(m.FrameID, 10))
		}
	}
	_, camToken, err := s.List(ctx, Query{CameraID: "cam-1", Limit: 1})
	if err != nil || camToken == "" {
		t.Fatalf("List: %q, %v", camToken, err)
	}
	_, allToken, err := s.List(ctx, Query{Limit: 1})
	if err != nil || allToken == "" {
		t.Fatalf("List: %q, %v", allToken, err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	tests := []struct {
		name  string
		q     Query
		token string
	}{
		{"not base64", Query{}, "!!!not-base64!!!"},
		{"padded std base64 chars", Query{}, "ab+/=="},
		{"empty payload kind only", Query{}, b64([]byte{'a'})},
		{"unknown kind", Query{}, b64(append([]byte{'z'}, make([]byte, 12)...))},
		{"short key", Query{}, b64([]byte("a1234"))},
		{"no separator", Query{}, b64([]byte("a12345678Xid"))},
		{"bad id in key", Query{}, b64(append(append([]byte{'a'}, make([]byte, 8)...), append([]byte{0}, "../x"...)...))},
		{"camera token for all query", Query{}, camToken},
		{"all token for camera query", Query{CameraID: "cam-1"}, allToken},
		{"token of other camera", Query{CameraID: "cam-2"}, camToken},
		{"random bytes", Query{CameraID: "cam-1"}, b64([]byte("c\x01\x02garbage"))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.PageToken = tc.token
			_, _, err := s.List(ctx, tc.q)
			if !errors.Is(err, ErrInvalidPageToken) {
				t.Fatalf("List with token %q: err = %v, want ErrInvalidPageToken", tc.token, err)
			}
		})
	}
	// Valid tokens still work with their own query.
	if got, _ := listAll(t, s, Query{CameraID: "cam-1", Limit: 1, PageToken: camToken}); len(got) != 4 {
		t.Fatalf("rest of cam-1 = %v", got)
	}
	if got, _ := listAll(t, s, Query{Limit: 3, PageToken: allToken}); len(got) != 9 {
		t.Fatalf("rest of all = %v", got)
	}
}

func testConcurrentPutSameID(t *testing.T, b backend) {
	s := openStore(t, b, t.TempDir())
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
	for range n {
		wg.Go(func() {
			<-startCh
			ok, err := s.Put(context.Background(), m, data)
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

func testStats(t *testing.T, b backend) {
	s := openStore(t, b, t.TempDir())
	ctx := context.Background()
	var total uint64
	for i := range 5 {
		m := newFrame("cam-1", uint64(i), base)
		mustPut(t, s, m, fakeJPEG(m.FrameID, 100*(i+1)))
		total += uint64(100 * (i + 1))
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Frames != 5 || st.Bytes != total || st.IndexFileBytes <= 0 {
		t.Fatalf("Stats = %+v, want 5 frames, %d bytes", st, total)
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

func TestTimeKeyOrder(t *testing.T) {
	times := []time.Time{
		minTime,
		time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(0, -1),
		time.Unix(0, 0),
		time.Unix(0, 1),
		base,
		maxTime,
	}
	for i := 1; i < len(times); i++ {
		a, b := encodeTime(times[i-1]), encodeTime(times[i])
		if bytes.Compare(a[:], b[:]) >= 0 {
			t.Fatalf("encodeTime(%s) >= encodeTime(%s)", times[i-1], times[i])
		}
		if got := decodeTime(b[:]); !got.Equal(times[i]) {
			t.Fatalf("decodeTime = %s, want %s", got, times[i])
		}
	}
}

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
