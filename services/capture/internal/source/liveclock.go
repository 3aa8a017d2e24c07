package source

import "time"

// liveClockWindow is how long a live clock's estimate of a stream's delay
// is kept before it may rise again (the minimum over this window and the
// one before): long enough to span a consumer's slow spell, short enough to
// follow a camera clock drifting against ours.
const liveClockWindow = 5 * time.Second

// liveClock turns a live stream's presentation times into local time: a
// picture's time is its presentation time plus the smallest offset
// (arrival minus presentation time) seen over the last windows, that is,
// when it would have arrived with the least delay. So pictures FFmpeg
// buffered while it probed the stream, or that a busy reader took late,
// keep the time the camera gave them. Two streams of one camera line up to
// within the difference of their decoding delays (a few frames).
type liveClock struct {
	cur, prev     int64 // smallest offset (ns) in this window and the last
	have          int   // windows with an offset (0, 1 or 2)
	windowStarted time.Time
}

// reset forgets the stream's offset (a new connection restarts its
// presentation times).
func (c *liveClock) reset() { *c = liveClock{} }

// observe notes a picture of presentation time pts read at read, and
// returns its time.
func (c *liveClock) observe(read time.Time, pts time.Duration) time.Time {
	off := read.UnixNano() - pts.Nanoseconds()
	switch {
	case c.have == 0:
		c.cur, c.have, c.windowStarted = off, 1, read
	case read.Sub(c.windowStarted) >= liveClockWindow:
		c.prev, c.cur, c.have, c.windowStarted = c.cur, off, 2, read
	case off < c.cur:
		c.cur = off
	}
	est := c.cur
	if c.have == 2 && c.prev < est {
		est = c.prev
	}
	return time.Unix(0, est+pts.Nanoseconds())
}
