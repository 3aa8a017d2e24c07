package store

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

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
