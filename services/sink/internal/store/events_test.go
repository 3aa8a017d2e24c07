package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cefiot/cefiot/services/sink/internal/store/s3test"
)

func init() {
	contract = append(contract, []struct {
		name string
		run  func(*testing.T, backend)
	}{
		{"ObjectsContract", testObjectsContract},
		{"Events", testEvents},
		{"ListMinScoreAndEventFrames", testListMinScoreAndEventFrames},
		{"StatsPerCamera", testStatsPerCamera},
		{"RetentionByAgeAndSize", testRetentionByAgeAndSize},
		{"Thumbnail", testThumbnail},
	}...)
}

// testObjectsContract checks the Objects contract directly.
func testObjectsContract(t *testing.T, b backend) {
	ctx := context.Background()
	o := b.objects(t, t.TempDir())
	if _, err := o.Get(ctx, "frames/a/b/2024-01-01/x.jpg"); !errors.Is(err, ErrObjectNotFound) {
		t.Fatalf("Get missing: %v, want ErrObjectNotFound", err)
	}
	if err := o.Delete(ctx, "frames/a/b/2024-01-01/x.jpg"); err != nil {
		t.Fatalf("Delete missing: %v", err)
	}
	keys := []string{"frames/a/b/2024-01-01/x.jpg", "frames/a/c/2024-01-02/y.jpg", "thumbs/a/b/2024-01-01/x.jpg"}
	for i, k := range keys {
		if err := o.Put(ctx, k, bytes.Repeat([]byte{byte(i)}, 10+i)); err != nil {
			t.Fatalf("Put %s: %v", k, err)
		}
	}
	// Overwrite is whole.
	if err := o.Put(ctx, keys[0], []byte("new")); err != nil {
		t.Fatal(err)
	}
	if got, err := o.Get(ctx, keys[0]); err != nil || string(got) != "new" {
		t.Fatalf("Get after overwrite = %q, %v", got, err)
	}
	var listed []string
	sizes := map[string]int64{}
	if err := o.List(ctx, "frames/", func(oi ObjectInfo) error {
		listed = append(listed, oi.Key)
		sizes[oi.Key] = oi.Size
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(listed)
	if !slices.Equal(listed, keys[:2]) || sizes[keys[0]] != 3 || sizes[keys[1]] != 11 {
		t.Fatalf("List frames/ = %v %v", listed, sizes)
	}
	if err := o.Delete(ctx, keys[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Get(ctx, keys[0]); !errors.Is(err, ErrObjectNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	if o.Kind() == "" || o.Describe() == "" {
		t.Fatal("no Kind or Describe")
	}
}

// eventFrames stores an event of n frames of camera cam starting at at,
// scores rising to a peak at frame peak, the last frame marked END when
// ended.
func eventFrames(t *testing.T, s *Store, cam, event string, first uint64, n, peak int, at time.Time, ended bool) []FrameMeta {
	t.Helper()
	var out []FrameMeta
	for i := 0; i < n; i++ {
		m := newFrame(cam, first+uint64(i), at.Add(time.Duration(i)*40*time.Millisecond))
		m.EventID, m.EventFrameIndex, m.Motion = event, uint32(i), true
		m.MotionScore = 0.01 * float64(i+1)
		if i == peak {
			m.MotionScore = 0.9
		}
		m.Boxes = []Box{{X: int32(10 * i), Y: 5, Width: 20, Height: 30}}
		switch {
		case i == n-1 && ended:
			m.EventPhase = PhaseEnd
		case i == 0:
			m.EventPhase = PhaseStart
		default:
			m.EventPhase = PhaseUpdate
		}
		mustPut(t, s, m, fakeJPEG(m.FrameID, 100))
		out = append(out, m)
	}
	return out
}

func testEvents(t *testing.T, b backend) {
	s := openStore(t, b, t.TempDir())
	ctx := context.Background()
	e1 := eventFrames(t, s, "cam-1", "cam-1_7_e00000010", 10, 5, 2, base, true)
	eventFrames(t, s, "cam-2", "cam-2_7_e00000001", 1, 3, 0, base.Add(time.Second), false)
	eventFrames(t, s, "cam-1", "cam-1_7_e00000100", 100, 2, 1, base.Add(2*time.Second), true)

	ev, err := s.GetEvent(ctx, "cam-1_7_e00000010")
	if err != nil {
		t.Fatal(err)
	}
	want := Event{
		EventID: "cam-1_7_e00000010", Site: "site-a", CameraID: "cam-1",
		Start: e1[0].CaptureTime, End: e1[4].CaptureTime, Ended: true, Frames: 5, SizeBytes: 500,
		PeakScore: 0.9, BestFrameID: e1[2].FrameID, Boxes: []Box{{X: 20, Y: 5, Width: 20, Height: 30}},
		Region: Box{X: 0, Y: 5, Width: 60, Height: 30},
	}
	if fmt.Sprint(ev) != fmt.Sprint(want) {
		t.Fatalf("GetEvent:\n got %+v\nwant %+v", ev, want)
	}
	if ev, _ := s.GetEvent(ctx, "cam-2_7_e00000001"); ev.Ended || ev.Frames != 3 {
		t.Fatalf("open event: %+v", ev)
	}
	if _, err := s.GetEvent(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetEvent missing: %v", err)
	}
	if _, err := s.GetEvent(ctx, "../x"); !errors.Is(err, ErrInvalidID) {
		t.Fatalf("GetEvent bad id: %v", err)
	}
	// A replayed frame does not count twice.
	if stored, _ := s.Put(ctx, e1[1], fakeJPEG(e1[1].FrameID, 100)); stored {
		t.Fatal("replay stored")
	}
	evIDs := func(q EventQuery) []string {
		var all []string
		for {
			page, next, err := s.ListEvents(ctx, q)
			if err != nil {
				t.Fatalf("ListEvents(%+v): %v", q, err)
			}
			for _, e := range page {
				all = append(all, e.EventID)
			}
			if next == "" {
				return all
			}
			q.PageToken = next
		}
	}
	for _, tc := range []struct {
		q    EventQuery
		want []string
	}{
		{EventQuery{}, []string{"cam-1_7_e00000010", "cam-2_7_e00000001", "cam-1_7_e00000100"}},
		{EventQuery{Limit: 1}, []string{"cam-1_7_e00000010", "cam-2_7_e00000001", "cam-1_7_e00000100"}},
		{EventQuery{CameraID: "cam-1", Limit: 1}, []string{"cam-1_7_e00000010", "cam-1_7_e00000100"}},
		{EventQuery{MinScore: 0.5, Limit: 1}, []string{"cam-1_7_e00000010", "cam-2_7_e00000001", "cam-1_7_e00000100"}},
		{EventQuery{MinScore: 0.95}, nil},
		{EventQuery{Start: base.Add(500 * time.Millisecond), End: base.Add(1500 * time.Millisecond)}, []string{"cam-2_7_e00000001"}},
	} {
		if got := evIDs(tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("ListEvents(%+v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	_, tok, _ := s.ListEvents(ctx, EventQuery{CameraID: "cam-1", Limit: 1})
	if _, _, err := s.ListEvents(ctx, EventQuery{CameraID: "cam-2", PageToken: tok}); !errors.Is(err, ErrInvalidPageToken) {
		t.Fatalf("token of another camera: %v", err)
	}
	if _, _, err := s.List(ctx, Query{PageToken: tok}); !errors.Is(err, ErrInvalidPageToken) {
		t.Fatalf("event token for frames: %v", err)
	}
	// Reopen: events survive.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func testListMinScoreAndEventFrames(t *testing.T, b backend) {
	s := openStore(t, b, t.TempDir())
	e := eventFrames(t, s, "cam-1", "cam-1_7_e00000010", 10, 6, 3, base, true)
	eventFrames(t, s, "cam-1", "cam-1_7_e00000100", 100, 2, 0, base.Add(time.Second), true)
	got, _ := listAll(t, s, Query{EventID: "cam-1_7_e00000010", Limit: 4})
	if !slices.Equal(got, ids(e)) {
		t.Fatalf("frames of event = %v, want %v", got, ids(e))
	}
	got, _ = listAll(t, s, Query{CameraID: "cam-1", MinScore: 0.05, Limit: 2})
	want := []string{e[3].FrameID, e[4].FrameID, e[5].FrameID, "cam-1_1732650000_00000100"}
	if !slices.Equal(got, want) {
		t.Fatalf("min score list = %v, want %v", got, want)
	}
	if got, _ := listAll(t, s, Query{EventID: "cam-1_7_e00000010", CameraID: "cam-2", Limit: 10}); len(got) != 0 {
		t.Fatalf("event frames of another camera = %v", got)
	}
}

func testStatsPerCamera(t *testing.T, b backend) {
	dir := t.TempDir()
	s := openStore(t, b, dir)
	ctx := context.Background()
	eventFrames(t, s, "cam-1", "cam-1_7_e00000010", 10, 4, 0, base, true)
	eventFrames(t, s, "cam-2", "cam-2_7_e00000001", 1, 2, 0, base.Add(time.Hour), true)
	m := newFrame("cam-2", 50, base.Add(2*time.Hour)) // no event
	mustPut(t, s, m, fakeJPEG(m.FrameID, 50))
	check := func(s *Store) {
		st, err := s.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Frames != 7 || st.Bytes != 650 || st.Events != 2 || st.Backend != b.objects(t, dir).Kind() || len(st.Cameras) != 2 {
			t.Fatalf("Stats = %+v", st)
		}
		c1, c2 := st.Cameras[0], st.Cameras[1]
		if c1.CameraID != "cam-1" || c1.Frames != 4 || c1.Bytes != 400 || c1.Events != 1 ||
			!c1.Oldest.Equal(base) || !c1.Newest.Equal(base.Add(120*time.Millisecond)) {
			t.Fatalf("cam-1 stats %+v", c1)
		}
		if c2.CameraID != "cam-2" || c2.Frames != 3 || c2.Bytes != 250 || c2.Events != 1 ||
			!c2.Oldest.Equal(base.Add(time.Hour)) || !c2.Newest.Equal(base.Add(2*time.Hour)) {
			t.Fatalf("cam-2 stats %+v", c2)
		}
		one, err := s.StatsOf(ctx, "cam-2")
		if err != nil || len(one.Cameras) != 1 || one.Cameras[0].CameraID != "cam-2" {
			t.Fatalf("StatsOf(cam-2) = %+v, %v", one, err)
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check(openStore(t, b, dir))
}

func testRetentionByAgeAndSize(t *testing.T, b backend) {
	dir := t.TempDir()
	s := openStore(t, b, dir)
	ctx := context.Background()
	// cam-1: 10 frames of 100 bytes, one per hour from base, two events.
	var c1 []FrameMeta
	for i := range 10 {
		m := newFrame("cam-1", uint64(i), base.Add(time.Duration(i)*time.Hour))
		m.EventID, m.MotionScore = fmt.Sprintf("cam-1_7_e%08d", i/5*5), float64(i)/10
		c1 = append(c1, m)
		mustPut(t, s, m, fakeJPEG(m.FrameID, 100))
	}
	// cam-2: 10 frames of 100 bytes in the same hours.
	var c2 []FrameMeta
	for i := range 10 {
		m := newFrame("cam-2", uint64(i), base.Add(time.Duration(i)*time.Hour))
		c2 = append(c2, m)
		if _, err := s.PutFrame(ctx, m, fakeJPEG(m.FrameID, 100), []byte("thumb")); err != nil {
			t.Fatal(err)
		}
	}
	now := base.Add(10 * time.Hour)
	r := Retention{
		Default: RetentionPolicy{MaxBytes: 450},                                           // cam-2: keep the newest 4
		Cameras: map[string]RetentionPolicy{"cam-1": {MaxAge: 3*time.Hour + time.Minute}}, // cam-1: keep hours 7..9
	}
	res, err := s.ApplyRetention(ctx, r, now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Frames != 13 || res.Bytes != 1300 || res.ObjectErrors != 0 {
		t.Fatalf("ApplyRetention = %+v, want 13 frames", res)
	}
	got, _ := listAll(t, s, Query{CameraID: "cam-1", Limit: 100})
	if !slices.Equal(got, ids(c1[7:])) {
		t.Fatalf("cam-1 kept %v", got)
	}
	got, _ = listAll(t, s, Query{CameraID: "cam-2", Limit: 100})
	if !slices.Equal(got, ids(c2[6:])) {
		t.Fatalf("cam-2 kept %v", got)
	}
	// The first event is gone, the second shrank and starts later.
	if _, err := s.GetEvent(ctx, "cam-1_7_e00000000"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("emptied event: %v", err)
	}
	ev, err := s.GetEvent(ctx, "cam-1_7_e00000005")
	if err != nil || ev.Frames != 3 || !ev.Start.Equal(c1[7].CaptureTime) || ev.BestFrameID != c1[9].FrameID {
		t.Fatalf("shrunk event = %+v, %v", ev, err)
	}
	if evs, _, _ := s.ListEvents(ctx, EventQuery{}); len(evs) != 1 {
		t.Fatalf("ListEvents after retention = %+v", evs)
	}
	st, _ := s.Stats(ctx)
	if st.Frames != 7 || st.Bytes != 700 || st.Expired != 13 || st.Events != 1 {
		t.Fatalf("Stats after retention = %+v", st)
	}
	// Deleted frames are gone from the objects too, and a replay does not
	// bring them back.
	if _, _, err := s.Get(ctx, c1[0].FrameID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get deleted: %v", err)
	}
	if _, err := s.Objects().Get(ctx, relPath(c2[0])); !errors.Is(err, ErrObjectNotFound) {
		t.Fatalf("deleted object still there: %v", err)
	}
	if _, err := s.Objects().Get(ctx, thumbPath(c2[0])); !errors.Is(err, ErrObjectNotFound) {
		t.Fatalf("deleted thumbnail still there: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, b, dir)
	if stored, err := s.Put(ctx, c1[0], fakeJPEG(c1[0].FrameID, 100)); stored || err != nil {
		t.Fatalf("replay of a deleted frame after restart = %v, %v; want not stored", stored, err)
	}
	// Nothing more is due.
	if res, err := s.ApplyRetention(ctx, r, now); err != nil || res.Frames != 0 {
		t.Fatalf("second ApplyRetention = %+v, %v", res, err)
	}
	assertNoFilesExceptObjects(t, s, 7+4)
}

// assertNoFilesExceptObjects is assertNoFilesExcept counting thumbnails.
func assertNoFilesExceptObjects(t *testing.T, s *Store, objects int) {
	t.Helper()
	rep, err := s.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.FilesScanned != objects {
		t.Fatalf("Verify = %+v; want OK with %d objects", rep, objects)
	}
}

func testThumbnail(t *testing.T, b backend) {
	s := openStore(t, b, t.TempDir())
	ctx := context.Background()
	m := newFrame("cam-1", 1, base)
	if _, err := s.PutFrame(ctx, m, fakeJPEG(m.FrameID, 100), []byte("small")); err != nil {
		t.Fatal(err)
	}
	th, err := s.GetThumbnail(ctx, m.FrameID)
	if err != nil || string(th) != "small" {
		t.Fatalf("GetThumbnail = %q, %v", th, err)
	}
	meta, _ := s.GetMeta(ctx, m.FrameID)
	if meta.ThumbnailBytes != 5 {
		t.Fatalf("ThumbnailBytes = %d", meta.ThumbnailBytes)
	}
	n := newFrame("cam-1", 2, base)
	mustPut(t, s, n, fakeJPEG(n.FrameID, 100))
	if _, err := s.GetThumbnail(ctx, n.FrameID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetThumbnail without one: %v", err)
	}
	assertNoFilesExceptObjects(t, s, 3)
}

// TestS3RefusesWrites: a bucket that refuses writes fails Put with a clear
// error, stores nothing, loses nothing already stored, and the store
// works again once writes are accepted.
func TestS3RefusesWrites(t *testing.T) {
	srv := startS3(t)
	proxy := srv.NewProxy()
	defer proxy.Close()
	ctx := context.Background()
	objs, err := NewS3Objects(ctx, s3Config(proxy.Endpoint, "refuse"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenWith(ctx, t.TempDir(), objs, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	a := newFrame("cam-1", 1, base)
	mustPut(t, s, a, fakeJPEG(a.FrameID, 100))
	proxy.Refuse(true)
	b := newFrame("cam-1", 2, base)
	stored, err := s.Put(ctx, b, fakeJPEG(b.FrameID, 100))
	if err == nil || stored || !bytes.Contains([]byte(err.Error()), []byte("Access Denied")) {
		t.Fatalf("Put to a refusing bucket = %v, %v; want an Access Denied error", stored, err)
	}
	if _, _, err := s.Get(ctx, b.FrameID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused frame is visible: %v", err)
	}
	if _, data, err := s.Get(ctx, a.FrameID); err != nil || len(data) != 100 {
		t.Fatalf("stored frame lost while writes are refused: %v", err)
	}
	proxy.Refuse(false)
	if !mustPut(t, s, b, fakeJPEG(b.FrameID, 100)) {
		t.Fatal("Put after writes are accepted again: not stored")
	}
	// An unreachable endpoint is reported at open, naming it.
	if _, err := NewS3Objects(ctx, S3Config{Endpoint: "127.0.0.1:1", Bucket: "x", AccessKey: s3test.AccessKey, SecretKey: s3test.SecretKey}); err == nil ||
		!bytes.Contains([]byte(err.Error()), []byte("127.0.0.1:1")) {
		t.Fatalf("unreachable endpoint: %v", err)
	}
}
