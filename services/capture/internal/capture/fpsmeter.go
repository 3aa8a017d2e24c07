package capture

import "time"

// Measured frame rate window and its memory bound.
const (
	fpsWindow    = 5 * time.Second
	fpsMaxFrames = 1024
)

// fpsMeter measures the rate at which frames arrive over the last window,
// from their arrival times. It keeps at most max arrival times (a ring);
// above max/window frames per second the measurement covers the newest max
// frames only, which still gives the rate. Not safe for concurrent use.
type fpsMeter struct {
	window time.Duration
	times  []time.Time // ring of arrival times, oldest at head
	head   int
	n      int
}

func newFPSMeter(window time.Duration, max int) *fpsMeter {
	return &fpsMeter{window: window, times: make([]time.Time, max)}
}

// arrived records a frame that arrived at t (non-decreasing).
func (m *fpsMeter) arrived(t time.Time) {
	if m.n == len(m.times) {
		m.head = (m.head + 1) % len(m.times)
		m.n--
	}
	m.times[(m.head+m.n)%len(m.times)] = t
	m.n++
}

// reset forgets every arrival (the source stopped).
func (m *fpsMeter) reset() { m.head, m.n = 0, 0 }

// rate returns frames per second at now: the intervals between the frames
// that arrived in (now-window, now], over the time from the first of them
// to now. A steady source gives its rate; a source that stops decays to 0
// within one window. Fewer than two frames in the window give 0.
func (m *fpsMeter) rate(now time.Time) float64 {
	cutoff := now.Add(-m.window)
	for m.n > 0 && !m.times[m.head].After(cutoff) {
		m.head = (m.head + 1) % len(m.times)
		m.n--
	}
	if m.n < 2 {
		return 0
	}
	first := m.times[m.head]
	last := m.times[(m.head+m.n-1)%len(m.times)]
	span := now.Sub(first)
	if last.After(now) { // arrival times from a clock ahead of now
		span = last.Sub(first)
	}
	if span <= 0 {
		return 0
	}
	return float64(m.n-1) / span.Seconds()
}
