package notify

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

func frame(event, id string, phase cefiotv1.EventPhase, index uint32, motion bool, score float64, at time.Time) *cefiotv1.EnrichedFrame {
	return &cefiotv1.EnrichedFrame{Site: "edge", Frame: &cefiotv1.Frame{
		FrameId: id, CameraId: "door", EventId: event, EventPhase: phase, EventFrameIndex: index,
		Motion: motion, MotionScore: score, CaptureTime: timestamppb.New(at),
	}}
}

func TestTrackerStartsAndEndsEvents(t *testing.T) {
	tr := NewTracker("https://cloud.example/v1/frames/{frame_id}/jpeg?site={site}")
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	now := t0
	var got []Event
	got = append(got, tr.Observe(frame("e1", "f0", cefiotv1.EventPhase_EVENT_PHASE_START, 0, false, 0, t0), now)...)
	got = append(got, tr.Observe(frame("e1", "f1", cefiotv1.EventPhase_EVENT_PHASE_UPDATE, 1, true, 0.4, t0.Add(40*time.Millisecond)), now)...)
	got = append(got, tr.Observe(frame("e1", "f2", cefiotv1.EventPhase_EVENT_PHASE_UPDATE, 2, true, 0.2, t0.Add(80*time.Millisecond)), now)...)
	got = append(got, tr.Observe(frame("e1", "f3", cefiotv1.EventPhase_EVENT_PHASE_END, 3, false, 0, t0.Add(120*time.Millisecond)), now)...)
	if len(got) != 2 || got[0].Type != TypeNew || got[1].Type != TypeEnd {
		t.Fatalf("events = %+v, want new then end", got)
	}
	if got[0].StartTime != t0 || got[0].BestFrameID != "f0" || got[0].Frames != 1 || got[0].EndTime != nil {
		t.Errorf("new = %+v", got[0])
	}
	end := got[1]
	if end.BestFrameID != "f1" || end.MotionScore != 0.4 || end.Frames != 4 || end.EndTime == nil || !end.EndTime.Equal(t0.Add(120*time.Millisecond)) {
		t.Errorf("end = %+v", end)
	}
	if end.FirstMotionTime == nil || !end.FirstMotionTime.Equal(t0.Add(40*time.Millisecond)) {
		t.Errorf("first motion = %v, want the first frame with motion", end.FirstMotionTime)
	}
	if end.BestFrameURL != "https://cloud.example/v1/frames/f1/jpeg?site=edge" {
		t.Errorf("best frame URL = %q", end.BestFrameURL)
	}
	if tr.Open() != 0 {
		t.Errorf("%d events still open after their end", tr.Open())
	}
}

func TestTrackerOneFrameEventAndEventsAlreadyStarted(t *testing.T) {
	tr := NewTracker("")
	t0 := time.Now()
	one := tr.Observe(frame("solo", "s0", cefiotv1.EventPhase_EVENT_PHASE_END, 0, true, 0.1, t0), t0)
	if len(one) != 2 || one[0].Type != TypeNew || one[1].Type != TypeEnd {
		t.Fatalf("one-frame event gave %+v, want new and end", one)
	}
	// An event whose start was read before a restart: no second "new".
	if evs := tr.Observe(frame("late", "l5", cefiotv1.EventPhase_EVENT_PHASE_UPDATE, 5, true, 0.3, t0), t0); len(evs) != 0 {
		t.Fatalf("middle of an unknown event gave %+v, want nothing", evs)
	}
	evs := tr.Observe(frame("late", "l6", cefiotv1.EventPhase_EVENT_PHASE_END, 6, false, 0, t0), t0)
	if len(evs) != 1 || evs[0].Type != TypeEnd || evs[0].BestFrameID != "l5" {
		t.Fatalf("end of an event started before a restart = %+v", evs)
	}
	if evs := tr.Observe(&cefiotv1.EnrichedFrame{Frame: &cefiotv1.Frame{FrameId: "x"}}, t0); evs != nil {
		t.Fatalf("frame without event gave %+v", evs)
	}
}

func TestTrackerIsBounded(t *testing.T) {
	tr := NewTracker("")
	tr.maxOpen = 3
	t0 := time.Now()
	for i, id := range []string{"a", "b", "c", "d"} {
		tr.Observe(frame(id, id+"0", cefiotv1.EventPhase_EVENT_PHASE_START, 0, true, 0.1, t0), t0.Add(time.Duration(i)*time.Second))
	}
	if tr.Open() != 3 {
		t.Fatalf("open = %d, want the bound 3", tr.Open())
	}
	if _, ok := tr.open["a"]; ok {
		t.Fatalf("the oldest event was kept")
	}
}

func TestProgressCommitsOnlyFinishedPrefixes(t *testing.T) {
	pt := partition{topic: "frames.enriched", index: 0}
	mqtt, hook := newProgress(), newProgress()
	d10 := mqtt.add(pt, 10, 2)
	mqtt.add(pt, 11, 0) // no events: done at once, but after 10
	d12 := mqtt.add(pt, 12, 1)
	h10 := hook.add(pt, 10, 2)
	hook.add(pt, 11, 0)
	hook.add(pt, 12, 1) // the webhook is down: never done here
	if got := mqtt.position(pt); got != -1 {
		t.Fatalf("position %d before record 10 finished", got)
	}
	d12()
	d10()
	if got := mqtt.position(pt); got != -1 {
		t.Fatalf("position %d with one of record 10's events out", got)
	}
	d10()
	if got := mqtt.position(pt); got != 13 {
		t.Fatalf("position %d, want 13", got)
	}
	names := []string{"mqtt", "hook"}
	if _, ok := checkpointOf(pt, names, []*progress{mqtt, hook}); ok {
		t.Fatal("a checkpoint before every target has a position")
	}
	h10()
	h10()
	cp, ok := checkpointOf(pt, names, []*progress{mqtt, hook})
	if !ok || cp.offset != 12 || cp.positions["mqtt"] != 13 || cp.positions["hook"] != 12 {
		t.Fatalf("checkpoint %+v (ok %v): want offset 12, mqtt at 13, hook at 12", cp, ok)
	}
	meta := cp.metadata()
	back := positionsFrom(&meta)
	if back["mqtt"] != 13 || back["hook"] != 12 {
		t.Fatalf("metadata %q read back as %v", meta, back)
	}
	garbage := "not json"
	if got := positionsFrom(&garbage); len(got) != 0 {
		t.Fatalf("unreadable metadata gave %v", got)
	}
}

func TestTrackerUpdatesWhenANewKindOfObjectComes(t *testing.T) {
	tr := NewTracker("")
	t0 := time.Now()
	person := &cefiotv1.ObjectLabel{Name: "person", Score: 1, Box: &cefiotv1.Box{Width: 10, Height: 20}}
	car := &cefiotv1.ObjectLabel{Name: "car", Score: 0.8}
	withLabels := func(ef *cefiotv1.EnrichedFrame, ls ...*cefiotv1.ObjectLabel) *cefiotv1.EnrichedFrame {
		ef.Labels = ls
		return ef
	}
	var got []Event
	got = append(got, tr.Observe(frame("e", "f0", cefiotv1.EventPhase_EVENT_PHASE_START, 0, false, 0, t0), t0)...)
	got = append(got, tr.Observe(withLabels(frame("e", "f1", cefiotv1.EventPhase_EVENT_PHASE_UPDATE, 1, true, 0.2, t0), person), t0)...)
	got = append(got, tr.Observe(withLabels(frame("e", "f2", cefiotv1.EventPhase_EVENT_PHASE_UPDATE, 2, true, 0.2, t0), person), t0)...)
	got = append(got, tr.Observe(withLabels(frame("e", "f3", cefiotv1.EventPhase_EVENT_PHASE_UPDATE, 3, true, 0.2, t0), car, person), t0)...)
	got = append(got, tr.Observe(frame("e", "f4", cefiotv1.EventPhase_EVENT_PHASE_END, 4, false, 0, t0), t0)...)
	var types []string
	for _, ev := range got {
		types = append(types, ev.Type+fmt.Sprint(ev.Labels))
	}
	want := []string{"new[]", "update[person]", "update[car person]", "end[car person]"}
	if fmt.Sprint(types) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", types, want)
	}
}
