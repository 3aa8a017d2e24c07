package store

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"
)

func init() {
	contract = append(contract, []struct {
		name string
		run  func(*testing.T, backend)
	}{
		{"RebuildFromObjects", testRebuildFromObjects},
	}...)
}

// searchAnswers are the answers of a store to a fixed set of searches.
type searchAnswers struct {
	All, PerCamera, HighScore, OfEvent []FrameMeta
	Events, EventsNewestFirst          []Event
	Frames, Bytes, EventCount          uint64
	Thumbs                             map[string]int
}

func answers(t *testing.T, s *Store) searchAnswers {
	t.Helper()
	ctx := context.Background()
	all := func(q Query) []FrameMeta {
		var out []FrameMeta
		q.Limit = 7 // several pages
		for {
			page, next, err := s.List(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, page...)
			if next == "" {
				return out
			}
			q.PageToken = next
		}
	}
	events := func(q EventQuery) []Event {
		out, _, err := s.ListEvents(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a := searchAnswers{
		All:               all(Query{}),
		PerCamera:         all(Query{CameraID: "cam-1", Start: base.Add(15 * time.Second), End: base.Add(50 * time.Second)}),
		HighScore:         all(Query{CameraID: "cam-2", MinScore: 0.4}),
		OfEvent:           all(Query{EventID: "cam-0-ev-1"}),
		Events:            events(EventQuery{Limit: 100}),
		EventsNewestFirst: events(EventQuery{CameraID: "cam-0", NewestFirst: true, Limit: 100}),
		Frames:            st.Frames, Bytes: st.Bytes, EventCount: st.Events,
		Thumbs: map[string]int{},
	}
	for _, m := range a.All {
		if th, err := s.GetThumbnail(ctx, m.FrameID); err == nil {
			a.Thumbs[m.FrameID] = len(th)
		}
	}
	return a
}

// testRebuildFromObjects: a store's index is lost; a new, empty index is
// rebuilt from the objects alone, and every search answers as before
// (what retention deleted stays deleted). A second rebuild changes
// nothing; a JPEG without its meta object is counted, not indexed.
func testRebuildFromObjects(t *testing.T, b backend) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, b, dir)
	for i := range 60 {
		cam := fmt.Sprintf("cam-%d", i%3)
		m := newFrame(cam, uint64(i), base.Add(time.Duration(i)*time.Second))
		m.EventID = fmt.Sprintf("%s-ev-%d", cam, i/30)
		m.EventPhase = PhaseUpdate
		if i >= 57 {
			m.EventPhase = PhaseEnd
		}
		m.MotionScore = float64(i%7) / 10
		var thumb []byte
		if i%2 == 0 {
			thumb = fakeJPEG("thumb-"+m.FrameID, 50+i)
		}
		if _, err := s.PutFrame(ctx, m, fakeJPEG(m.FrameID, 200+i), thumb); err != nil {
			t.Fatal(err)
		}
	}
	res, err := s.ApplyRetention(ctx, Retention{Default: RetentionPolicy{MaxAge: time.Minute}}, base.Add(70*time.Second))
	if err != nil || res.Frames != 10 {
		t.Fatalf("retention deleted %d frames, %v; want the 10 oldest", res.Frames, err)
	}
	want := answers(t, s)
	if len(want.All) != 50 || len(want.Events) == 0 || len(want.Thumbs) == 0 {
		t.Fatalf("before: %d frames, %d events, %d thumbnails", len(want.All), len(want.Events), len(want.Thumbs))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	fresh := b.openFresh(ctx, t, dir)
	rep, err := fresh.Rebuild(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.MetaObjects != 50 || rep.Indexed != 50 || rep.AlreadyIndexed != 0 || len(rep.NoPicture)+len(rep.Unreadable) != 0 || rep.WithoutMeta != 0 {
		t.Fatalf("rebuild = %+v; want 50 meta objects, 50 indexed", rep)
	}
	if got := answers(t, fresh); !reflect.DeepEqual(got, want) {
		t.Fatalf("answers after the rebuild differ:\n got %+v\nwant %+v", got, want)
	}
	if rep, err := fresh.Rebuild(ctx); err != nil || rep.Indexed != 0 || rep.AlreadyIndexed != 50 {
		t.Fatalf("second rebuild = %+v, %v; want nothing new", rep, err)
	}
	orphan := newFrame("cam-9", 1, base)
	if err := fresh.Objects().Put(ctx, relPath(orphan), fakeJPEG(orphan.FrameID, 10)); err != nil {
		t.Fatal(err)
	}
	if rep, err := fresh.Rebuild(ctx); err != nil || rep.WithoutMeta != 1 || rep.Indexed != 0 {
		t.Fatalf("rebuild with a JPEG without meta = %+v, %v; want it counted, not indexed", rep, err)
	}
}
