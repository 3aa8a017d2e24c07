package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func init() {
	contract = append(contract, struct {
		name string
		run  func(*testing.T, backend)
	}{"EventLabels", testEventLabels})
}

// testEventLabels: the labels of an event's frames make the event's
// labels (sorted, once each), kept on the frames, and events are found by
// label, alone or with a camera, in both orders.
func testEventLabels(t *testing.T, b backend) {
	s := openStore(t, b, t.TempDir())
	ctx := context.Background()
	person := Label{Name: "person", Score: 1, Box: Box{X: 1, Y: 2, Width: 30, Height: 60}}
	car := Label{Name: "car", Score: 0.7, Box: Box{X: 100, Y: 50, Width: 80, Height: 40}}
	put := func(cam, event string, seq uint64, at time.Time, labels ...Label) FrameMeta {
		m := newFrame(cam, seq, at)
		m.EventID, m.Motion, m.MotionScore, m.EventPhase = event, true, 0.1, PhaseUpdate
		m.Labels = labels
		mustPut(t, s, m, fakeJPEG(m.FrameID, 100))
		return m
	}
	f := put("cam-1", "cam-1_7_e00000001", 1, base, person)
	put("cam-1", "cam-1_7_e00000001", 2, base.Add(40*time.Millisecond))
	put("cam-1", "cam-1_7_e00000001", 3, base.Add(80*time.Millisecond), car, person)
	put("cam-2", "cam-2_7_e00000001", 1, base.Add(time.Second), person)
	put("cam-1", "cam-1_7_e00000010", 10, base.Add(2*time.Second), car)
	put("cam-1", "cam-1_7_e00000020", 20, base.Add(3*time.Second))

	ev, err := s.GetEvent(ctx, "cam-1_7_e00000001")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ev.Labels) != "[car person]" {
		t.Fatalf("event labels %v, want [car person]", ev.Labels)
	}
	if ev, _ := s.GetEvent(ctx, "cam-1_7_e00000020"); ev.Labels != nil {
		t.Fatalf("event without labels has %v", ev.Labels)
	}
	got, _, err := s.Get(ctx, f.FrameID)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got.Labels) != fmt.Sprint([]Label{person}) {
		t.Fatalf("frame labels %+v, want %+v", got.Labels, []Label{person})
	}
	for _, tc := range []struct {
		q    EventQuery
		want string
	}{
		{EventQuery{Label: "person"}, "[cam-1_7_e00000001 cam-2_7_e00000001]"},
		{EventQuery{Label: "person", NewestFirst: true}, "[cam-2_7_e00000001 cam-1_7_e00000001]"},
		{EventQuery{Label: "car", CameraID: "cam-1"}, "[cam-1_7_e00000001 cam-1_7_e00000010]"},
		{EventQuery{Label: "person", CameraID: "cam-1", Start: base.Add(time.Second)}, "[]"},
		{EventQuery{Label: "dog"}, "[]"},
	} {
		evs, _, err := s.ListEvents(ctx, tc.q)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range evs {
			ids = append(ids, e.EventID)
		}
		if fmt.Sprint(ids) != tc.want && !(tc.want == "[]" && len(ids) == 0) {
			t.Errorf("ListEvents(%+v) = %v, want %s", tc.q, ids, tc.want)
		}
	}
}
