// Package notify tells the world outside the pipeline about motion events:
// it reads the enriched frames, finds where each event starts and ends,
// and delivers an event record to an MQTT broker (Home Assistant's
// conventions) and to webhooks, with retries, a bound, and a dead-letter
// topic for what cannot be delivered. It never holds the pipeline up: it
// is its own consumer group, and a receiver that stays down costs only its
// own queue.
package notify

import (
	"net/url"
	"slices"
	"strings"
	"time"

	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// Event types, as Frigate and Home Assistant automations expect them.
const (
	TypeNew = "new"
	// TypeUpdate: the event saw a kind of object it had not seen before.
	TypeUpdate = "update"
	TypeEnd    = "end"
)

// Event is one motion event's start or end, as delivered (JSON).
type Event struct {
	Type    string `json:"type"`
	EventID string `json:"event_id"`
	Site    string `json:"site"`
	Camera  string `json:"camera"`
	// StartTime is the capture time of the event's first frame.
	StartTime time.Time `json:"start_time"`
	// EndTime is the capture time of its last frame (end only).
	EndTime *time.Time `json:"end_time,omitempty"`
	// Labels are the kinds of object seen in the event's frames so far,
	// sorted (an "update" record says a new kind came).
	Labels []string `json:"labels"`
	// BestFrameID is the frame with the highest motion score so far;
	// BestFrameURL is where a person finds it (from -notify-frame-url).
	BestFrameID  string  `json:"best_frame_id"`
	BestFrameURL string  `json:"best_frame_url,omitempty"`
	MotionScore  float64 `json:"motion_score"`
	// Frames is how many frames of the event were seen so far.
	Frames uint32 `json:"frames"`
	// FirstMotionTime is the capture time of the event's first frame
	// with motion (its first frames may be context before the motion).
	FirstMotionTime *time.Time `json:"first_motion_time,omitempty"`
}

// FrameURL builds a frame's address from a template whose {site},
// {camera} and {frame_id} are replaced (path-escaped); an empty template
// gives an empty address.
type FrameURL string

// For returns the address of one frame.
func (t FrameURL) For(site, camera, frameID string) string {
	if t == "" {
		return ""
	}
	return strings.NewReplacer(
		"{site}", url.PathEscape(site),
		"{camera}", url.PathEscape(camera),
		"{frame_id}", url.PathEscape(frameID),
	).Replace(string(t))
}

// open is what the tracker keeps of an event between its start and end.
type open struct {
	ev       Event
	lastSeen time.Time
}

// Tracker turns a stream of enriched frames into event starts and ends.
// Frames of one camera arrive in order (one partition per camera), so an
// event's START comes before its other frames and END last. A frame of an
// event the tracker never saw start (it began before a restart, and its
// start was delivered then) is followed silently until its end.
type Tracker struct {
	frameURL FrameURL
	open     map[string]*open
	// maxOpen bounds the events followed at once; the oldest is dropped
	// (its end is then not sent) when a capture died mid-event many
	// times over.
	maxOpen int
}

// NewTracker returns a tracker building frame addresses from frameURL.
func NewTracker(frameURL FrameURL) *Tracker {
	return &Tracker{frameURL: frameURL, open: map[string]*open{}, maxOpen: 10000}
}

// Open is how many events are followed now.
func (t *Tracker) Open() int { return len(t.open) }

// Observe takes one frame and returns the events it starts or ends (a
// one-frame event gives both).
func (t *Tracker) Observe(ef *cefiotv1.EnrichedFrame, now time.Time) []Event {
	f := ef.GetFrame()
	if f.GetEventId() == "" {
		return nil
	}
	captured := f.GetCaptureTime().AsTime()
	o, known := t.open[f.GetEventId()]
	var out []Event
	phase := f.GetEventPhase()
	if !known {
		o = &open{ev: Event{EventID: f.GetEventId(), Site: ef.GetSite(), Camera: f.GetCameraId(), StartTime: captured, Labels: []string{}}}
		t.evictIfFull()
		t.open[f.GetEventId()] = o
	}
	o.lastSeen = now
	o.ev.Frames++
	if f.GetMotion() && o.ev.FirstMotionTime == nil {
		tm := captured
		o.ev.FirstMotionTime = &tm
	}
	grew := addLabels(&o.ev, ef.GetLabels())
	if o.ev.BestFrameID == "" || f.GetMotionScore() > o.ev.MotionScore {
		o.ev.BestFrameID = f.GetFrameId()
		o.ev.MotionScore = f.GetMotionScore()
		o.ev.BestFrameURL = t.frameURL.For(o.ev.Site, o.ev.Camera, o.ev.BestFrameID)
	}
	isNew := phase == cefiotv1.EventPhase_EVENT_PHASE_START || (!known && phase == cefiotv1.EventPhase_EVENT_PHASE_END && f.GetEventFrameIndex() == 0)
	if isNew {
		ev := o.ev
		ev.Type = TypeNew
		out = append(out, ev)
	} else if grew && phase != cefiotv1.EventPhase_EVENT_PHASE_END {
		ev := o.ev
		ev.Type = TypeUpdate
		out = append(out, ev)
	}
	if phase == cefiotv1.EventPhase_EVENT_PHASE_END {
		ev := o.ev
		ev.Type = TypeEnd
		end := captured
		ev.EndTime = &end
		out = append(out, ev)
		delete(t.open, f.GetEventId())
	}
	return out
}

// addLabels adds the names of labels to ev's, sorted, and reports whether
// a new one came.
func addLabels(ev *Event, labels []*cefiotv1.ObjectLabel) bool {
	grew := false
	for _, l := range labels {
		if !slices.Contains(ev.Labels, l.GetName()) {
			ev.Labels = append(ev.Labels, l.GetName())
			grew = true
		}
	}
	if grew {
		ev.Labels = slices.Clone(ev.Labels)
		slices.Sort(ev.Labels)
	}
	return grew
}

func (t *Tracker) evictIfFull() {
	if len(t.open) < t.maxOpen {
		return
	}
	var oldest string
	var at time.Time
	for id, o := range t.open {
		if oldest == "" || o.lastSeen.Before(at) {
			oldest, at = id, o.lastSeen
		}
	}
	delete(t.open, oldest)
}
