package source

import (
	"strings"
	"time"

	"github.com/cefiot/cefiot/libs/redact"
)

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

// cameraTimeWait bounds how long a new RTSP connection reads past pictures
// while it waits for the camera's first sender report: cameras send one
// every few seconds (RFC 3550 suggests 5 s at most).
const cameraTimeWait = 6 * time.Second

// awaitCameraTime reads past the pictures of an RTSP stream that come
// before its camera's first sender report. Without the camera's time their
// frame ids would be fingerprints, not the ids another capture of the
// camera, already timing its pictures, gives them: an overlap of two
// captures would store them twice. A camera that sent no report within
// cameraTimeWait is taken for one that sends none: its pictures get
// fingerprint ids, and its later connections do not wait. It returns how
// many pictures it read past.
func (s *Stream) awaitCameraTime() int {
	if !s.pending || !s.pendingCam.IsZero() || s.cameraTimeless || !isRTSP(s.spec) {
		return 0
	}
	if _, ok := s.vc.(avReader); !ok {
		return 0 // OpenCV does not tell the camera's time
	}
	deadline := s.opts.now().Add(cameraTimeWait)
	for n := 1; ; n++ {
		if !s.vc.Grab() {
			s.pending = false // Next notices that the stream has dropped
			return n
		}
		if cam := s.cameraTime(); !cam.IsZero() {
			s.pendingTime, s.pendingCam = s.streamTime(), cam
			return n
		}
		if !s.opts.now().Before(deadline) {
			s.cameraTimeless = true
			s.pendingTime = s.streamTime()
			s.opts.logger().Warn("source: the camera sent no RTCP sender report; its frame ids come from its pictures",
				"source", redact.URL(s.spec), "waited", cameraTimeWait)
			return n
		}
	}
}

// isRTSP reports whether spec is an rtsp:// or rtsps:// URL.
func isRTSP(spec string) bool {
	lower := strings.ToLower(spec)
	return strings.HasPrefix(lower, "rtsp://") || strings.HasPrefix(lower, "rtsps://")
}
