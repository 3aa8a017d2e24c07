package source

import "time"

// catchUpLimit bounds how much of a stream catchUp reads past: FFmpeg
// probes a stream for a few seconds at most.
const catchUpLimit = 10 * time.Second

// catchUpUntimed is how many pictures without a presentation time catchUp
// reads past before it takes the stream for one that gives none.
const catchUpUntimed = 5

// catchUp reads past the pictures FFmpeg buffered while it probed a stream
// just opened: they come out all at once, each later than it arrived. A
// reader that took them one by one at the stream's pace (a detector
// waiting for the main stream's picture of each moment) would stay that
// far behind for good, and the stream's clock would learn the lag as the
// stream's delay. So the pictures are decoded, not converted, until one
// arrives at the pace of the stream: that one is kept for Next (pending).
// It returns how many pictures it read past.
func (s *Stream) catchUp() int {
	interval := s.interval()
	if interval <= 0 || s.vc == nil {
		return 0
	}
	limit := int(catchUpLimit / interval)
	var prevOffset time.Duration
	timed := 0 // pictures with a presentation time
	for i := 0; ; i++ {
		if !s.vc.Grab() {
			return i // Next notices that the stream has dropped
		}
		read := s.opts.now()
		// OpenCV gives 0 for none, and for the first pictures of an RTSP
		// stream until FFmpeg knows when it started.
		pts, ok := s.presentationTime()
		if !ok {
			if i-timed >= catchUpUntimed || i == limit {
				s.pending, s.pendingTime = true, read
				return i
			}
			continue
		}
		// A buffered picture comes out as soon as the one before it, so
		// its arrival-minus-presentation offset drops by about an
		// interval; a picture that arrived live keeps the offset.
		offset := time.Duration(read.UnixNano()) - pts
		if i == limit || (timed > 0 && prevOffset-offset < interval/2) {
			s.pending, s.pendingTime, s.pendingCam = true, s.clock.observe(read, pts), s.cameraTime()
			return i
		}
		prevOffset = offset
		timed++
	}
}

// interval is the stream's frame interval, 0 when it declares no usable
// rate.
func (s *Stream) interval() time.Duration {
	if s.fps <= 0 || s.fps > 240 {
		return 0
	}
	return time.Duration(float64(time.Second) / s.fps)
}
