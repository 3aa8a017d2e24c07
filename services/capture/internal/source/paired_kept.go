package source

import (
	"context"
	"time"

	"gocv.io/x/gocv"
)

// pairedKeptRing is how many of the main stream's pictures a lazy Paired
// remembers (undecoded: a time and a packet's number each), about 4 s at
// 15 fps; its stream keeps their packets for 3 s (avread).
const pairedKeptRing = 64

// keptEntry is a main-stream picture kept undecoded: its stream time, its
// camera time (zero when the camera gave none yet) and its packet.
type keptEntry struct {
	at, cam time.Time
	pic     keptPicture
}

// keptPictureAt decodes the main stream's picture of the moment of the
// sub-stream's picture of stream time t and camera time cam. Both streams
// of a camera are timed by its clock (its RTCP sender reports), and a
// camera gives its two pictures of one moment one time: the main picture
// of the nearest camera time, within half a frame interval, is that
// moment's. While either stream gives no camera time, the streams' own
// times are matched instead, within a frame interval (each connection's
// clock has its own delay: the picture may be a neighbour). When the main
// stream's newest picture is older than the moment it waits, at most three
// of its frame intervals, for the moment's picture. false: no main picture
// of that moment (the main stream down, the moment no longer kept, or its
// packet not decodable: the stream joined after its keyframe), and the
// caller keeps the sub-stream's picture.
func (p *Paired) keptPictureAt(ctx context.Context, t, cam time.Time) (gocv.Mat, bool) {
	for waits := 0; ; waits++ {
		p.mu.Lock()
		n := min(p.written, pairedKeptRing)
		if n == 0 || p.interval == 0 {
			p.fallbacks++
			p.mu.Unlock()
			return gocv.Mat{}, false
		}
		newest := p.keptRing[(p.written-1)%pairedKeptRing]
		byCamera := !cam.IsZero() && !newest.cam.IsZero()
		target, tolerance := t, p.interval
		if byCamera {
			target, tolerance = cam, p.interval/2
		}
		when := func(e keptEntry) time.Time {
			if byCamera {
				return e.cam
			}
			return e.at
		}
		live := time.Since(newest.at) < time.Second
		if live && when(newest).Before(target.Add(-tolerance)) && waits < 3 {
			if !p.waitForPicture(ctx) {
				return gocv.Mat{}, false
			}
			continue
		}
		best, off := -1, time.Duration(0)
		for i := 0; i < n; i++ {
			e := p.keptRing[i]
			if when(e).IsZero() {
				continue
			}
			if d := absDuration(when(e).Sub(target)); best < 0 || d < off {
				best, off = i, d
			}
		}
		if best < 0 || off > tolerance {
			p.fallbacks++
			p.mu.Unlock()
			return gocv.Mat{}, false
		}
		pic := p.keptRing[best].pic
		p.mu.Unlock()
		// Decoded outside the lock: the main stream's reader goes on
		// keeping packets meanwhile. p.full is only the detector's.
		ok := pic.decode(&p.full)
		p.mu.Lock()
		if ok {
			p.decoded++
		} else {
			p.fallbacks++
		}
		p.mu.Unlock()
		if !ok {
			return gocv.Mat{}, false
		}
		return p.full, true
	}
}

// MainDecoded is how many main-stream pictures were decoded (in packet
// mode: only those asked for).
func (p *Paired) MainDecoded() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.decoded
}
