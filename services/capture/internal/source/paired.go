package source

import (
	"context"
	"errors"
	"fmt"
	"image"
	"sync"
	"time"

	"gocv.io/x/gocv"
)

// pairedRing is how many main-stream pictures a Paired keeps: enough to
// cover the detector's delay on the sub-stream (400 ms at 15 fps) without
// holding many full-resolution pictures (6 MB each at 1080p).
const pairedRing = 6

// Paired is a camera with two streams, as NVRs use them: motion is
// detected on a low-resolution sub-stream (the frames Next returns) and the
// picture stored for a frame is the main stream's picture of the same
// moment (Frame.Full), matched by the streams' own times (Frame.StreamTime:
// each connection's presentation times from when it was opened, so a
// picture the detector reads late keeps its moment). The main stream is read by a
// goroutine of its own, so that it never backs up while the detector
// works.
//
// When FFmpeg reads the streams directly (-hwaccel any, vaapi or none), the main
// stream is read in packet mode: its packets are kept, undecoded, and a
// main picture is decoded only when a frame's is asked for (Frame.Full,
// for the frames stored), matched by the camera's clock (see
// paired_kept.go). Otherwise (Intel Media SDK, through OpenCV)
// every main picture is decoded and copied into a small ring, and matched
// by the streams' times and by likeness.
type Paired struct {
	detect *Stream
	main   *Stream

	mu          sync.Mutex
	ring        [pairedRing]timedPicture
	written     int           // pictures written to the ring so far
	changed     chan struct{} // closed and replaced at every write
	mainDecoder string
	mainDesc    string
	full        gocv.Mat // the picture handed out, until the next Next
	subSmall    gocv.Mat
	diff        gocv.Mat
	resized     gocv.Mat // scratch of reduce
	interval    time.Duration
	fallbacks   int64

	lazy     bool                      // the main stream in packet mode
	keptRing [pairedKeptRing]keptEntry // its pictures, undecoded, when lazy
	decoded  int64                     // main pictures decoded, when lazy

	cancel context.CancelFunc
	done   chan struct{}
	closed bool
}

type timedPicture struct {
	mat     gocv.Mat
	at      time.Time
	small   gocv.Mat // reduced grey copy, for lookalike
	reduced bool     // small is mat's
}

var (
	_ Source   = (*Paired)(nil)
	_ Thinner  = (*Paired)(nil)
	_ Decoding = (*Paired)(nil)
)

// OpenPaired prepares a two-stream camera: detect is the sub-stream's URL,
// main the main stream's. Both reconnect on their own (see OpenStream);
// sopts.OnStatus follows the sub-stream, which paces the camera. While the
// main stream is down, frames are stored from the sub-stream (counted by
// Fallbacks).
func OpenPaired(detect, main string, opts Options, sopts StreamOptions) (*Paired, error) {
	return openPaired(detect, main, opts, sopts, pairedLazy(opts))
}

// pairedLazy: the main stream is kept in packet mode when FFmpeg reads it
// directly (not through OpenCV, for Intel Media SDK).
func pairedLazy(opts Options) bool {
	_, ok := ffmpegHardware(opts.Accel)
	return ok
}

// openPaired opens a two-stream camera, its main stream in packet mode
// when lazy (read by FFmpeg directly: not with Intel Media SDK).
func openPaired(detect, main string, opts Options, sopts StreamOptions, lazy bool) (*Paired, error) {
	if !isURL(detect) || !isURL(main) {
		return nil, errors.New("source: a two-stream camera needs two stream URLs (rtsp, http)")
	}
	d, err := OpenStream(detect, opts, sopts)
	if err != nil {
		return nil, fmt.Errorf("source: sub-stream: %w", err)
	}
	p := &Paired{detect: d, changed: make(chan struct{}), full: gocv.NewMat(), done: make(chan struct{})}
	p.lazy = lazy
	mainOpts := sopts
	mainOpts.packets = p.lazy
	mainOpts.OnStatus = func(online bool, reason string) {
		if online {
			return
		}
		opts.logger().Warn("source: main stream down; storing the sub-stream's pictures until it is back", "reason", reason)
		p.mu.Lock()
		p.mainDesc = p.main.Describe()
		p.mu.Unlock()
	}
	m, err := OpenStream(main, Options{Logger: opts.Logger, Now: opts.Now, Accel: opts.Accel}, mainOpts)
	if err != nil {
		_ = d.Close()
		p.full.Close()
		return nil, fmt.Errorf("source: main stream: %w", err)
	}
	p.main, p.mainDesc = m, m.Describe()
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	for i := range p.ring {
		p.ring[i].mat, p.ring[i].small = gocv.NewMat(), gocv.NewMat()
	}
	p.subSmall, p.diff, p.resized = gocv.NewMat(), gocv.NewMat(), gocv.NewMat()
	go p.readMain(ctx)
	return p, nil
}

// readMain keeps the ring filled with the main stream's latest pictures.
func (p *Paired) readMain(ctx context.Context) {
	defer close(p.done)
	for {
		f, err := p.main.Next(ctx)
		if err != nil {
			return // ctx ended: the stream reconnects by itself otherwise
		}
		p.mu.Lock()
		if p.lazy {
			p.keptRing[p.written%pairedKeptRing] = keptEntry{at: f.StreamTime, cam: f.CameraTime, pic: f.kept}
		} else {
			slot := &p.ring[p.written%pairedRing]
			f.Mat.CopyTo(&slot.mat)
			slot.at = f.StreamTime
			slot.reduced = false
		}
		p.written++
		p.mainDecoder = p.main.Decoder()
		p.mainDesc = p.main.Describe()
		if fps := p.main.FPS(); fps > 0 {
			p.interval = time.Duration(float64(time.Second) / fps)
		}
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
}

// Next returns the sub-stream's next frame, with Full giving the main
// stream's picture of the same moment.
func (p *Paired) Next(ctx context.Context) (Frame, error) {
	if p.closed {
		return Frame{}, errors.New("source: two-stream camera: Next after Close")
	}
	f, err := p.detect.Next(ctx)
	if err != nil {
		return f, err
	}
	at, cam, sub := f.StreamTime, f.CameraTime, f.Mat
	if p.lazy {
		f.Full = func() (gocv.Mat, bool) { return p.keptPictureAt(ctx, at, cam) }
	} else {
		f.Full = func() (gocv.Mat, bool) { return p.pictureAt(ctx, at, sub) }
	}
	return f, nil
}

// pictureAt returns a copy of the main stream's picture of the moment of
// sub, the sub-stream's picture of time t. When the main stream is live but
// has no picture at or after t yet, it waits for the next one. Among the
// ring's pictures it takes the one that looks most like sub (both reduced
// to a small grey picture), the nearest in time among equals: the streams'
// times differ by their decoding delays (a few frames), the pictures of
// one moment do not. When that is the newest, the moment may be still to
// come from a main stream that decodes later: it waits for a few more. false: no picture of that
// moment (the main stream down, or t outside the ring's span), and the
// caller keeps the sub-stream's picture, never another moment's.
func (p *Paired) pictureAt(ctx context.Context, t time.Time, sub gocv.Mat) (gocv.Mat, bool) {
	waits := 0
	for {
		p.mu.Lock()
		oldest, newest, n := p.span()
		live := n > 0 && p.interval > 0 && time.Since(newest) < time.Second
		if live && newest.Before(t) && waits == 0 {
			// The main stream's picture of t has not arrived yet.
			waits++
			if !p.waitForPicture(ctx) {
				return gocv.Mat{}, false
			}
			continue
		}
		margin := 2 * p.interval
		if n == 0 || p.interval == 0 || t.Before(oldest.Add(-margin)) || t.After(newest.Add(margin)) {
			p.fallbacks++
			p.mu.Unlock()
			return gocv.Mat{}, false
		}
		pick := p.lookalike(t, sub, n)
		if live && !p.ring[pick].at.Before(newest) && waits < pairedRing/2 {
			// The newest looks most alike: the main stream decodes later
			// than the sub-stream, and the moment may be still to come.
			waits++
			if !p.waitForPicture(ctx) {
				return gocv.Mat{}, false
			}
			continue
		}
		return p.copyOut(pick), true
	}
}

// waitForPicture unlocks p.mu and waits for the main stream's next picture,
// at most two of its frame intervals; false when ctx ended.
func (p *Paired) waitForPicture(ctx context.Context) bool {
	changed, d := p.changed, 2*p.interval
	p.mu.Unlock()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-changed:
	case <-timer.C:
	case <-ctx.Done():
		return false
	}
	return true
}

// span is the ring's oldest and newest picture times and how many it
// holds; p.mu is held.
func (p *Paired) span() (oldest, newest time.Time, n int) {
	n = min(p.written, pairedRing)
	for i := 0; i < n; i++ {
		at := p.ring[i].at
		if i == 0 || at.Before(oldest) {
			oldest = at
		}
		if at.After(newest) {
			newest = at
		}
	}
	return oldest, newest, n
}

// lookalikeWidth is the width pictures are compared at.
const lookalikeWidth = 160

// lookalike is the ring picture most like sub, the nearest to t among
// those as alike (a still scene); p.mu is held.
func (p *Paired) lookalike(t time.Time, sub gocv.Mat, n int) int {
	h := max(1, sub.Rows()*lookalikeWidth/max(1, sub.Cols()))
	size := image.Pt(lookalikeWidth, h)
	p.reduce(sub, &p.subSmall, size)
	var diffs [pairedRing]float64
	best := 0.0
	for i := 0; i < n; i++ {
		r := &p.ring[i]
		if !r.reduced || r.small.Cols() != size.X || r.small.Rows() != size.Y {
			p.reduce(r.mat, &r.small, size)
			r.reduced = true
		}
		gocv.AbsDiff(r.small, p.subSmall, &p.diff)
		diffs[i] = p.diff.Sum().Val1
		if i == 0 || diffs[i] < best {
			best = diffs[i]
		}
	}
	pick := -1
	for i := 0; i < n; i++ {
		if diffs[i] > best*1.005+float64(size.X*size.Y)/20 {
			continue
		}
		if pick < 0 || absDuration(p.ring[i].at.Sub(t)) < absDuration(p.ring[pick].at.Sub(t)) {
			pick = i
		}
	}
	return pick
}

// reduce makes dst a small grey copy of src; p.mu is held.
func (p *Paired) reduce(src gocv.Mat, dst *gocv.Mat, size image.Point) {
	gocv.Resize(src, &p.resized, size, 0, 0, gocv.InterpolationArea)
	gocv.CvtColor(p.resized, dst, gocv.ColorBGRToGray)
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// copyOut copies ring picture i into the picture handed out and unlocks.
func (p *Paired) copyOut(i int) gocv.Mat {
	p.ring[i].mat.CopyTo(&p.full)
	p.mu.Unlock()
	return p.full
}

// SetMinInterval thins the sub-stream (the detection rate cap).
func (p *Paired) SetMinInterval(d time.Duration) { p.detect.SetMinInterval(d) }

// Decoder names what decodes the main stream and the sub-stream.
func (p *Paired) Decoder() string {
	p.mu.Lock()
	main := p.mainDecoder
	p.mu.Unlock()
	sub := p.detect.Decoder()
	if main == sub || main == "" {
		return sub
	}
	return main + " (sub-stream: " + sub + ")"
}

// Fallbacks is how many frames had no main-stream picture of their moment
// (the main stream down) and were given the sub-stream's.
func (p *Paired) Fallbacks() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fallbacks
}

// Describe names both streams (without credentials).
func (p *Paired) Describe() string {
	p.mu.Lock()
	main := p.mainDesc
	p.mu.Unlock()
	return "two-stream camera: detect on " + p.detect.Describe() + "; store from " + main
}

// Close stops the main stream's reader and releases both streams. It is
// safe to call more than once.
func (p *Paired) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	p.cancel()
	<-p.done
	err := errors.Join(p.detect.Close(), p.main.Close())
	for i := range p.ring {
		p.ring[i].mat.Close()
		p.ring[i].small.Close()
	}
	p.full.Close()
	p.subSmall.Close()
	p.diff.Close()
	p.resized.Close()
	return err
}
