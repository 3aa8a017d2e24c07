// Package event groups the frames of one camera into motion events, as
// Motion and Frigate do: an event starts after MinMotionFrames consecutive
// motion frames, includes up to PreCapture frames from before the motion
// and PostCapture frames after it, and ends when PostCapture frames passed
// without motion. After an event ends, no new event starts for Cooldown
// (motion then is ignored).
//
// The tracker holds the latest frame of an event back until the next frame
// tells whether it was the last, so every published frame carries its
// final phase (START, UPDATE or END) and the consumer never waits for an
// end marker.
package event

import (
	"fmt"
	"image"
	"time"
)

// Phases of a frame in its event (the values of cefiot.v1.EventPhase).
const (
	PhaseStart  = 1
	PhaseUpdate = 2
	PhaseEnd    = 3
)

// Config tunes a Tracker.
type Config struct {
	PreCapture      int           // 0..1000
	PostCapture     int           // 0..1000
	MinMotionFrames int           // 1..1000
	Cooldown        time.Duration // >= 0
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.PreCapture < 0 || c.PreCapture > 1000:
		return fmt.Errorf("pre_capture: must be 0..1000, got %d", c.PreCapture)
	case c.PostCapture < 0 || c.PostCapture > 1000:
		return fmt.Errorf("post_capture: must be 0..1000, got %d", c.PostCapture)
	case c.MinMotionFrames < 1 || c.MinMotionFrames > 1000:
		return fmt.Errorf("min_motion_frames: must be 1..1000, got %d", c.MinMotionFrames)
	case c.Cooldown < 0:
		return fmt.Errorf("cooldown: must not be negative, got %v", c.Cooldown)
	}
	return nil
}

// Frame is what the tracker knows about one frame; P is the caller's
// payload (a copy of the image), made only for frames the tracker keeps.
type Frame[P any] struct {
	Index  uint64
	At     time.Duration // position on the session's timeline
	Motion bool
	Score  float64
	Boxes  []image.Rectangle
	P      P
}

// Out is a frame to publish.
type Out[P any] struct {
	Frame[P]
	EventStart uint64 // index of the event's first frame (names the event)
	Phase      int
	FrameIndex uint32 // position in the event
}

// Tracker groups frames into events. Not safe for concurrent use.
type Tracker[P any] struct {
	cfg     Config
	release func(P) // frees a payload that will not be published

	pre       []Frame[P] // idle: the last PreCapture frames
	candidate []Frame[P] // idle: consecutive motion frames, not yet enough
	inEvent   bool
	start     uint64
	count     uint32
	postLeft  int
	pending   *Out[P]
	coolUntil time.Duration
	cooling   bool
	ignored   int64
}

// New returns a tracker; release (may be nil) is called for every frame
// the tracker drops without publishing it, with the zero payload when none
// was made (Needs was false).
func New[P any](cfg Config, release func(P)) (*Tracker[P], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Tracker[P]{cfg: cfg, release: release}, nil
}

// SetConfig changes the settings; an open event continues under them.
func (t *Tracker[P]) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	t.cfg = cfg
	for len(t.pre) > cfg.PreCapture {
		t.drop(t.pre[0])
		t.pre = t.pre[1:]
	}
	return nil
}

// InEvent reports whether an event is open.
func (t *Tracker[P]) InEvent() bool { return t.inEvent }

// Ignored counts motion frames ignored during cooldowns.
func (t *Tracker[P]) Ignored() int64 { return t.ignored }

func (t *Tracker[P]) drop(f Frame[P]) {
	if t.release != nil {
		t.release(f.P)
	}
}

// Needs reports whether Push would keep a frame with this motion verdict
// at this time, so that the caller makes a payload only then.
func (t *Tracker[P]) Needs(motion bool, at time.Duration) bool {
	cooling := t.cooling && at < t.coolUntil
	return t.inEvent || t.cfg.PreCapture > 0 || (motion && !cooling)
}

// Push adds the next frame and returns the frames that are now ready to
// publish, in order. f.P must be set when Needs(f.Motion, f.At) was true.
func (t *Tracker[P]) Push(f Frame[P]) []Out[P] {
	if t.cooling && f.At >= t.coolUntil {
		t.cooling = false
	}
	if f.Motion && t.cooling && !t.inEvent {
		t.ignored++
		f.Motion = false
	}
	var out []Out[P]
	if t.inEvent {
		switch {
		case f.Motion:
			t.postLeft = t.cfg.PostCapture
			out = t.emit(out, f)
		case t.postLeft > 0:
			t.postLeft--
			out = t.emit(out, f)
			if t.postLeft == 0 {
				out = t.end(out, f.At)
			}
		default:
			out = t.end(out, f.At)
			t.idle(f)
		}
		return out
	}
	if f.Motion {
		t.candidate = append(t.candidate, f)
		if len(t.candidate) < t.cfg.MinMotionFrames {
			return nil
		}
		// Start: the pre-capture frames, then the confirming frames.
		t.inEvent, t.count, t.postLeft = true, 0, t.cfg.PostCapture
		first := t.candidate[0]
		if len(t.pre) > 0 {
			first = t.pre[0]
		}
		t.start = first.Index
		for _, p := range t.pre {
			out = t.emit(out, p)
		}
		for _, c := range t.candidate {
			out = t.emit(out, c)
		}
		t.pre, t.candidate = t.pre[:0], t.candidate[:0]
		return out
	}
	// Motion stopped before it was confirmed: the candidates become
	// context for a later event.
	for _, c := range t.candidate {
		t.idle(c)
	}
	t.candidate = t.candidate[:0]
	t.idle(f)
	return nil
}

// idle keeps f as a pre-capture frame (or drops it).
func (t *Tracker[P]) idle(f Frame[P]) {
	if t.cfg.PreCapture == 0 {
		t.drop(f)
		return
	}
	t.pre = append(t.pre, f)
	for len(t.pre) > t.cfg.PreCapture {
		t.drop(t.pre[0])
		t.pre = t.pre[1:]
	}
}

// emit makes f the pending frame and releases the previous pending one.
func (t *Tracker[P]) emit(out []Out[P], f Frame[P]) []Out[P] {
	if t.pending != nil {
		p := *t.pending
		p.Phase = PhaseUpdate
		if p.FrameIndex == 0 {
			p.Phase = PhaseStart
		}
		out = append(out, p)
	}
	t.pending = &Out[P]{Frame: f, EventStart: t.start, FrameIndex: t.count}
	t.count++
	return out
}

// end closes the open event: the pending frame is its last.
func (t *Tracker[P]) end(out []Out[P], at time.Duration) []Out[P] {
	if t.pending != nil {
		p := *t.pending
		p.Phase = PhaseEnd
		out = append(out, p)
		t.pending = nil
	}
	t.inEvent = false
	if t.cfg.Cooldown > 0 {
		t.cooling, t.coolUntil = true, at+t.cfg.Cooldown
	}
	return out
}

// Flush ends an open event (the source ended or the camera stops) and
// drops buffered frames.
func (t *Tracker[P]) Flush() []Out[P] {
	var out []Out[P]
	if t.inEvent {
		out = t.end(out, 0)
	}
	for _, f := range t.pre {
		t.drop(f)
	}
	for _, f := range t.candidate {
		t.drop(f)
	}
	t.pre, t.candidate = nil, nil
	return out
}
