package source

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"gocv.io/x/gocv"

	"github.com/cefiot/cefiot/libs/redact"
)

// IsStream reports whether spec names a live source: an rtsp://, rtsps://,
// http:// or https:// URL, or a V4L2 device (/dev/videoN).
func IsStream(spec string) bool {
	return isURL(spec) || isDevice(spec)
}

// IsStreamURL reports whether spec is an rtsp://, rtsps://, http:// or
// https:// URL (a network stream, not a device).
func IsStreamURL(spec string) bool { return isURL(spec) }

func isURL(spec string) bool {
	for _, p := range []string{"rtsp://", "rtsps://", "http://", "https://"} {
		if strings.HasPrefix(strings.ToLower(spec), p) {
			return true
		}
	}
	return false
}

func isDevice(spec string) bool { return strings.HasPrefix(spec, "/dev/video") }

// StreamOptions tune a Stream beyond Options.
type StreamOptions struct {
	// MinBackoff and MaxBackoff bound the wait between reconnect attempts
	// (doubling from MinBackoff). Defaults 250ms and 4s, so a source that
	// comes back is read again within about 5 s.
	MinBackoff, MaxBackoff time.Duration
	// IOTimeout bounds FFmpeg's network reads and connects (default 5s);
	// a stream that stalls this long counts as dropped.
	IOTimeout time.Duration
	// OnStatus is called on every online/offline change (reason is empty
	// when online).
	OnStatus func(online bool, reason string)
	// packets: a network stream read by FFmpeg directly is read in packet
	// mode: Next gives each picture undecoded (Frame.kept, Mat empty),
	// to be decoded only if asked for (a two-stream camera's main stream).
	packets bool
}

// Stream is a live Source: a network stream (RTSP, HTTP MJPEG) read through
// OpenCV's FFmpeg backend, or a V4L2 device. It never ends by itself: when
// the stream drops or cannot be opened it reports offline and reconnects
// with backoff until ctx ends. Frame indexes continue across reconnects.
type Stream struct {
	spec     string
	opts     Options
	sopts    StreamOptions
	vc       streamReader
	mat      gocv.Mat
	online   bool
	known    bool // online has been reported at least once
	closed   bool
	next     uint64
	start    time.Time
	attempts int64
	lastErr  string
	fps      float64
	backoff  time.Duration
	clock    liveClock
	// pending: a picture grabbed by catchUp and not yet delivered, of
	// stream time pendingTime.
	pending     bool
	pendingTime time.Time
	pendingCam  time.Time
	readPast    int64 // pictures catchUp and awaitCameraTime read past
	// cameraTimeless: the camera sent no sender report within
	// cameraTimeWait of a connection (awaitCameraTime).
	cameraTimeless bool
	thinning
}

var (
	_ Source  = (*Stream)(nil)
	_ Thinner = (*Stream)(nil)
)

var ffmpegOptionsOnce sync.Once

// OpenStream prepares a live source; the first connection is made by Next,
// so a camera that is down at start is retried like one that drops.
func OpenStream(spec string, opts Options, sopts StreamOptions) (*Stream, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if !IsStream(spec) {
		return nil, fmt.Errorf("source: %q is not a stream URL (rtsp, http) or /dev/videoN device", redact.URL(spec))
	}
	if isURL(spec) {
		// A password may be a reference to a file (redact.Expand): the
		// spec keeps the reference, each connection reads the file.
		resolved, err := redact.Expand(spec)
		if err != nil {
			return nil, fmt.Errorf("source: stream URL %q: %v", redact.URL(spec), err)
		}
		if _, err := url.Parse(resolved); err != nil {
			// url.Error repeats the URL, password included: keep its reason.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return nil, fmt.Errorf("source: stream URL %q: %v", redact.URL(spec), err)
		}
	}
	if sopts.MinBackoff <= 0 {
		sopts.MinBackoff = 250 * time.Millisecond
	}
	if sopts.MaxBackoff <= 0 {
		sopts.MaxBackoff = 4 * time.Second
	}
	if sopts.IOTimeout <= 0 {
		sopts.IOTimeout = 5 * time.Second
	}
	// FFmpeg reads its options from the environment at every open; set an
	// I/O timeout unless the operator chose FFmpeg options.
	ffmpegOptionsOnce.Do(func() {
		if _, ok := os.LookupEnv("OPENCV_FFMPEG_CAPTURE_OPTIONS"); !ok {
			if err := os.Setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", fmt.Sprintf("rw_timeout;%d", sopts.IOTimeout.Microseconds())); err != nil && opts.Logger != nil {
				opts.Logger.Warn("cannot set FFmpeg's I/O timeout; a stalled stream is noticed later", "err", err)
			}
		}
	})
	return &Stream{spec: spec, opts: opts, sopts: sopts, mat: gocv.NewMat(), fps: opts.fps(0), start: opts.now(), backoff: sopts.MinBackoff}, nil
}

func (s *Stream) setOnline(online bool, reason string) {
	changed := !s.known || online != s.online
	s.known = true
	s.online = online
	if !online {
		s.lastErr = reason
	}
	if !changed {
		return
	}
	if changed && s.sopts.OnStatus != nil {
		s.sopts.OnStatus(online, reason)
	}
}

// connect opens the stream once.
func (s *Stream) connect() error {
	s.attempts++
	target, err := redact.Expand(s.spec)
	if err != nil {
		return fmt.Errorf("open %s: %v", redact.URL(s.spec), err)
	}
	vc, err := openReader(s.spec, target, s.opts, s.sopts.IOTimeout, s.sopts.packets)
	if err != nil {
		if isDevice(s.spec) {
			if _, serr := os.Stat(s.spec); serr != nil {
				return fmt.Errorf("open device %s: %v", s.spec, serr)
			}
			return fmt.Errorf("open device %s: OpenCV's V4L2 backend cannot open it (busy, or not a capture device)", s.spec)
		}
		return fmt.Errorf("open %s: the stream does not answer or is not a video stream%s (%v)", redact.URL(s.spec), s.opts.accelHint(), err)
	}
	if !isDevice(s.spec) {
		s.opts.logger().Info("source: stream opened", "source", redact.URL(s.spec), "codec", vc.codec(), "decoder", vc.decoder())
	}
	if d := vc.declaredFPS(); s.opts.FPS == 0 && d > 0 && d <= 1000 {
		s.fps = d
	}
	s.vc = vc
	s.clock.reset()
	s.pending = false
	if isURL(s.spec) {
		if n := s.catchUp(); n > 0 {
			s.readPast += int64(n)
			s.next += uint64(n)
			s.opts.logger().Info("source: read past the pictures buffered while the stream was probed", "source", redact.URL(s.spec), "pictures", n)
		}
		if n := s.awaitCameraTime(); n > 0 {
			s.readPast += int64(n)
			s.next += uint64(n)
			s.opts.logger().Info("source: read past the pictures before the camera's first sender report", "source", redact.URL(s.spec), "pictures", n)
		}
	}
	return nil
}

func (s *Stream) disconnect() {
	if s.vc != nil {
		s.vc.Close()
		s.vc = nil
	}
}

// wait sleeps the current backoff and doubles it.
func (s *Stream) wait(ctx context.Context) error {
	t := time.NewTimer(s.backoff)
	defer t.Stop()
	s.backoff = min(2*s.backoff, s.sopts.MaxBackoff)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Next returns the next frame, reconnecting as long as it takes; it only
// returns an error when ctx ends or after Close.
func (s *Stream) Next(ctx context.Context) (Frame, error) {
	if s.closed {
		return Frame{}, fmt.Errorf("source: stream %s: Next after Close", redact.URL(s.spec))
	}
	for {
		if err := ctx.Err(); err != nil {
			return Frame{}, err
		}
		if s.vc == nil {
			if err := s.connect(); err != nil {
				s.setOnline(false, err.Error())
				s.opts.logger().Warn("source: stream unavailable; retrying", "source", redact.URL(s.spec), "err", err, "retry_in", s.backoff)
				if err := s.wait(ctx); err != nil {
					return Frame{}, err
				}
				continue
			}
		}
		// A frame that will arrive well before the next one due is
		// decoded but not converted (a stream that dropped makes Grab
		// return at once; Read below notices).
		grabbed, at, cam := s.pending, s.pendingTime, s.pendingCam
		s.pending = false
		if s.skip(s.opts.now().Sub(s.start) + s.halfFrame()) {
			if !grabbed && s.vc.Grab() {
				s.streamTime() // keeps the clock's estimate fresh
			}
			s.next++
			s.skipped++
			continue
		}
		if !grabbed {
			if s.vc.Grab() {
				at, cam = s.streamTime(), s.cameraTime()
			} else {
				at = time.Time{}
			}
		}
		var kept keptPicture
		if ar, ok := s.vc.(avReader); ok && !at.IsZero() {
			kept, ok = ar.kept()
			if ok {
				s.backoff = s.sopts.MinBackoff
				s.setOnline(true, "")
				return s.deliver(gocv.Mat{}, at, cam, kept), nil
			}
		}
		if at.IsZero() || !s.vc.Retrieve(&s.mat) || s.mat.Empty() {
			s.disconnect()
			reason := "stream ended or stalled"
			s.setOnline(false, reason)
			s.opts.logger().Warn("source: stream dropped; reconnecting", "source", redact.URL(s.spec), "retry_in", s.backoff)
			if err := s.wait(ctx); err != nil {
				return Frame{}, err
			}
			continue
		}
		s.backoff = s.sopts.MinBackoff
		s.setOnline(true, "")
		return s.deliver(s.mat, at, cam, kept), nil
	}
}

// deliver makes the frame of the picture just read.
func (s *Stream) deliver(m gocv.Mat, at, cam time.Time, kept keptPicture) Frame {
	now := s.opts.now()
	f := Frame{Mat: m, Index: s.next, CaptureTime: now, Offset: now.Sub(s.start), StreamTime: at, CameraTime: cam, kept: kept}
	s.delivered(f.Offset)
	s.next++
	return f
}

// streamTime is the time of the picture just grabbed by the stream's own
// clock (liveClock), or now when the stream gives no presentation times.
func (s *Stream) streamTime() time.Time {
	now := s.opts.now()
	pts, ok := s.presentationTime()
	if !ok {
		return now
	}
	return s.clock.observe(now, pts)
}

// cameraTime is the time of the picture just grabbed by the camera's
// clock; zero when the stream gives none (yet).
func (s *Stream) cameraTime() time.Time {
	if t, ok := s.vc.cameraTime(); ok {
		return t
	}
	return time.Time{}
}

// presentationTime is the presentation time of the picture just grabbed,
// from the start of the connection; false when the stream gives none.
func (s *Stream) presentationTime() (time.Duration, bool) {
	pos, ok := s.vc.position()
	if !ok || pos <= 0 {
		return 0, false
	}
	return pos, true
}

// halfFrame is half the stream's frame interval (at most 20 ms, and 0 when
// the stream declares no usable rate): how early a frame may arrive and
// still count as due.
func (s *Stream) halfFrame() time.Duration {
	return min(s.interval()/2, 20*time.Millisecond)
}

// ReadPast is how many pictures were read past at connections: those
// FFmpeg buffered while it probed the stream (see catchUp), and those
// before the camera's first sender report (awaitCameraTime).
func (s *Stream) ReadPast() int64 { return s.readPast }

// Close releases the stream. It is safe to call more than once.
func (s *Stream) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.disconnect()
	return s.mat.Close()
}

// Describe names the source (without credentials) and its state.
func (s *Stream) Describe() string {
	kind := "stream"
	if isDevice(s.spec) {
		kind = "V4L2 device"
	}
	state := "offline"
	if s.online {
		state = "online"
	}
	decoder := ""
	if s.vc != nil && !isDevice(s.spec) {
		decoder = ", decoded by " + s.Decoder()
	}
	return fmt.Sprintf("%s %s (%s%s, %d connection attempts)", kind, redact.URL(s.spec), state, decoder, s.attempts)
}

// Decoder is "software", or the hardware acceleration decoding the
// stream; empty while it is not connected.
func (s *Stream) Decoder() string {
	if s.vc == nil {
		return ""
	}
	return s.vc.decoder()
}

// Online reports whether the last read delivered a frame.
func (s *Stream) Online() bool { return s.online }

// Attempts returns how many times a connection was tried.
func (s *Stream) Attempts() int64 { return s.attempts }

// FPS returns the frame rate (configured or declared by the stream).
func (s *Stream) FPS() float64 { return s.fps }
