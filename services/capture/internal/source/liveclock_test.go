package source

import (
	"testing"
	"time"
)

// TestLiveClockGivesBufferedPicturesTheirOwnTime: pictures read in a burst
// (buffered while FFmpeg probed the stream) get the times the stream gave
// them once pictures arrive live; a late read does not move a picture's
// time; a new offset is followed once the windows pass.
func TestLiveClockGivesBufferedPicturesTheirOwnTime(t *testing.T) {
	var c liveClock
	base := time.Unix(1000, 0)
	frame := 100 * time.Millisecond
	// Ten pictures read at once, at base (nine of them buffered); then
	// live ones, each read 5 ms after it is due.
	for i := 0; i < 10; i++ {
		c.observe(base, time.Duration(i)*frame)
	}
	var got time.Time
	for i := 10; i < 20; i++ {
		got = c.observe(base.Add(time.Duration(i-9)*frame+5*time.Millisecond), time.Duration(i)*frame)
	}
	// The burst's last picture (9) was live when read, at base: picture
	// 19 is 10 frames later, though read 5 ms after that.
	if want := base.Add(10 * frame); !got.Equal(want) {
		t.Fatalf("live picture at %v, want %v", got.Sub(base), want.Sub(base))
	}
	// Read 300 ms late, picture 20 keeps its time.
	if got := c.observe(base.Add(11*frame+305*time.Millisecond), 20*frame); !got.Equal(base.Add(11 * frame)) {
		t.Fatalf("late picture at %v", got.Sub(base))
	}
	// A stream whose offset rises for good (a camera clock slower than
	// ours) is followed within two windows.
	read := base.Add(12 * frame)
	for i := 21; read.Sub(base) < 2*liveClockWindow+time.Second; i++ {
		read = read.Add(frame)
		got = c.observe(read.Add(50*time.Millisecond), time.Duration(i)*frame)
	}
	if want := read.Add(50 * time.Millisecond); got.Sub(want) > time.Millisecond || want.Sub(got) > time.Millisecond {
		t.Fatalf("after the offset rose, pictures at %v, want %v", got.Sub(base), want.Sub(base))
	}
}
