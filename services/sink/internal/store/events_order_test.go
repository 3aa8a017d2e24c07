package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// orderFixture stores events of cameras whose names prefix each other
// (cam-1, cam-10) and a camera sorting after both (cam-2), with start-time
// ties between cameras and within one camera, so that both the time and the
// event id order, and the camera prefix bounds, are exercised.
func orderFixture(t *testing.T) *Store {
	t.Helper()
	s := openStore(t, fsBackend(), t.TempDir())
	seq := uint64(1)
	for i := 0; i < 7; i++ {
		at := base.Add(time.Duration(i) * time.Second)
		for _, cam := range []string{"cam-1", "cam-10", "cam-2"} {
			eventFrames(t, s, cam, fmt.Sprintf("%s_7_e%08d", cam, seq), seq, 2, 0, at, true)
			seq += 2
		}
		// A second event of cam-1 starting at the same time.
		eventFrames(t, s, "cam-1", fmt.Sprintf("cam-1_8_e%08d", seq), seq, 2, 1, at, i%2 == 0)
		seq += 2
	}
	return s
}

// listAllEvents pages through q, checking that no page exceeds q.Limit.
func listAllEvents(t *testing.T, s *Store, q EventQuery) (ids []string, pages int) {
	t.Helper()
	for {
		page, next, err := s.ListEvents(context.Background(), q)
		if err != nil {
			t.Fatalf("ListEvents(%+v): %v", q, err)
		}
		if pages++; pages > 1000 {
			t.Fatalf("ListEvents(%+v): more than 1000 pages; the token does not advance", q)
		}
		if q.Limit > 0 && len(page) > q.Limit {
			t.Fatalf("ListEvents(%+v) returned %d events, limit %d", q, len(page), q.Limit)
		}
		for _, e := range page {
			ids = append(ids, e.EventID)
		}
		if next == "" {
			return ids, pages
		}
		q.PageToken = next
	}
}

func TestListEventsNewestFirstIsReverseOfOldestFirst(t *testing.T) {
	s := orderFixture(t)
	for _, q := range []EventQuery{
		{},
		{Limit: 3},
		{Limit: 1},
		{CameraID: "cam-1", Limit: 3},
		{CameraID: "cam-10", Limit: 2},
		{CameraID: "cam-2", Limit: 4},
		{Start: base.Add(2 * time.Second), Limit: 5},
		{End: base.Add(4 * time.Second), Limit: 5},
		{Start: base.Add(2 * time.Second), End: base.Add(5 * time.Second), Limit: 2},
		{CameraID: "cam-1", Start: base.Add(1 * time.Second), End: base.Add(3 * time.Second), Limit: 1},
		{CameraID: "cam-1", Start: base.Add(1500 * time.Millisecond), End: base.Add(6500 * time.Millisecond), Limit: 2},
		{MinScore: 0.5, Limit: 3}, // every event peaks at 0.9
		{CameraID: "cam-1", Start: base.Add(3 * time.Second), End: base.Add(3 * time.Second)},
		{Start: base.Add(time.Hour)},
		{End: base.Add(-time.Hour)},
		{CameraID: "cam-3"},
	} {
		t.Run(fmt.Sprintf("%+v", q), func(t *testing.T) {
			asc, _ := listAllEvents(t, s, q)
			q.NewestFirst = true
			desc, pages := listAllEvents(t, s, q)
			slices.Reverse(desc)
			if !slices.Equal(desc, asc) {
				t.Fatalf("newest first, reversed:\n %v\noldest first:\n %v", desc, asc)
			}
			if q.Limit > 0 && len(asc) > q.Limit && pages < 2 {
				t.Fatalf("%d events in %d page(s) of %d", len(asc), pages, q.Limit)
			}
		})
	}
}

func TestListEventsNewestFirstOrderAndBounds(t *testing.T) {
	s := orderFixture(t)
	// cam-1 between 2 s (inclusive) and 4 s (exclusive): starts at 3 s
	// then 2 s, ties by descending event id.
	got, pages := listAllEvents(t, s, EventQuery{
		CameraID: "cam-1", Start: base.Add(2 * time.Second), End: base.Add(4 * time.Second), Limit: 1, NewestFirst: true,
	})
	evs := func(ids ...string) []string { return ids }
	want := evs("cam-1_8_e00000031", "cam-1_7_e00000025", "cam-1_8_e00000023", "cam-1_7_e00000017")
	if !slices.Equal(got, want) || pages != 4 {
		t.Fatalf("cam-1 [2s, 4s) newest first = %v in %d pages, want %v in 4", got, pages, want)
	}
	// Every camera at the newest instant, by descending event id ("cam-1_"
	// sorts after "cam-10"); a page boundary inside the tie.
	got, _ = listAllEvents(t, s, EventQuery{Start: base.Add(6 * time.Second), Limit: 3, NewestFirst: true})
	want = evs("cam-2_7_e00000053", "cam-1_8_e00000055", "cam-1_7_e00000049", "cam-10_7_e00000051")
	if !slices.Equal(got, want) {
		t.Fatalf("all cameras from 6 s newest first = %v, want %v", got, want)
	}
	// Start times are descending page after page.
	ctx := context.Background()
	q := EventQuery{Limit: 5, NewestFirst: true}
	var last time.Time
	for n := 0; n < 1000; n++ {
		page, next, err := s.ListEvents(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			if !last.IsZero() && e.Start.After(last) {
				t.Fatalf("page %d: %s starts at %s, after the previous event's %s", n, e.EventID, e.Start, last)
			}
			last = e.Start
		}
		if next == "" {
			break
		}
		q.PageToken = next
	}
}

func TestListEventsPageTokenOfOtherOrderRefused(t *testing.T) {
	s := orderFixture(t)
	ctx := context.Background()
	for _, cam := range []string{"", "cam-1"} {
		_, asc, err := s.ListEvents(ctx, EventQuery{CameraID: cam, Limit: 2})
		if err != nil || asc == "" {
			t.Fatalf("oldest first camera=%q: token %q, %v", cam, asc, err)
		}
		_, desc, err := s.ListEvents(ctx, EventQuery{CameraID: cam, Limit: 2, NewestFirst: true})
		if err != nil || desc == "" {
			t.Fatalf("newest first camera=%q: token %q, %v", cam, desc, err)
		}
		if _, _, err := s.ListEvents(ctx, EventQuery{CameraID: cam, PageToken: asc, NewestFirst: true}); !errors.Is(err, ErrInvalidPageToken) {
			t.Errorf("camera=%q: oldest-first token used newest first: %v, want ErrInvalidPageToken", cam, err)
		}
		if _, _, err := s.ListEvents(ctx, EventQuery{CameraID: cam, PageToken: desc}); !errors.Is(err, ErrInvalidPageToken) {
			t.Errorf("camera=%q: newest-first token used oldest first: %v, want ErrInvalidPageToken", cam, err)
		}
		if _, _, err := s.List(ctx, Query{CameraID: cam, PageToken: desc}); !errors.Is(err, ErrInvalidPageToken) {
			t.Errorf("camera=%q: newest-first event token used for frames: %v, want ErrInvalidPageToken", cam, err)
		}
	}
	// A newest-first token of one camera is refused for another.
	_, desc, _ := s.ListEvents(ctx, EventQuery{CameraID: "cam-1", Limit: 1, NewestFirst: true})
	if _, _, err := s.ListEvents(ctx, EventQuery{CameraID: "cam-10", PageToken: desc, NewestFirst: true}); !errors.Is(err, ErrInvalidPageToken) {
		t.Errorf("cam-1 token for cam-10: %v, want ErrInvalidPageToken", err)
	}
}

func TestPrefixEnd(t *testing.T) {
	for _, tc := range []struct{ in, want []byte }{
		{nil, nil},
		{[]byte{0xff, 0xff}, nil},
		{[]byte("cam\x00"), []byte("cam\x01")},
		{[]byte{'a', 0xff}, []byte{'b'}},
	} {
		if got := prefixEnd(tc.in); string(got) != string(tc.want) || (got == nil) != (tc.want == nil) {
			t.Errorf("prefixEnd(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
