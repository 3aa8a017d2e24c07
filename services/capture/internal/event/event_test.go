package event

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// run pushes a motion pattern ('M' motion, '.' still, 'G' motion that the
// caller would not make a payload for is not possible; one char per frame
// at 1 s intervals) and renders what is published: "index:phase" per frame,
// events separated by "|".
func run(t *testing.T, cfg Config, pattern string) (string, int) {
	t.Helper()
	released := 0
	tr, err := New[string](cfg, func(p string) {
		if p != "" {
			released++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	var outs []Out[string]
	for i, c := range pattern {
		f := Frame[string]{Index: uint64(i), At: time.Duration(i) * time.Second, Motion: c == 'M', Score: float64(i)}
		if tr.Needs(f.Motion, f.At) {
			f.P = fmt.Sprint(i)
		}
		for _, o := range tr.Push(f) {
			if o.P != fmt.Sprint(o.Index) {
				t.Fatalf("frame %d published without its payload (%q)", o.Index, o.P)
			}
			outs = append(outs, o)
		}
	}
	outs = append(outs, tr.Flush()...)
	var b strings.Builder
	var lastStart uint64 = 1 << 63
	for i, o := range outs {
		if o.EventStart != lastStart && i > 0 {
			b.WriteString("|")
		} else if i > 0 {
			b.WriteString(" ")
		}
		lastStart = o.EventStart
		fmt.Fprintf(&b, "%d:%c", o.Index, " SUE"[o.Phase])
		if int(o.FrameIndex) != countInEvent(outs[:i], o.EventStart) {
			t.Fatalf("frame %d has FrameIndex %d", o.Index, o.FrameIndex)
		}
	}
	return b.String(), released
}

func countInEvent(outs []Out[string], start uint64) int {
	n := 0
	for _, o := range outs {
		if o.EventStart == start {
			n++
		}
	}
	return n
}

func TestTracker(t *testing.T) {
	cases := []struct {
		name    string
		cfg     Config
		pattern string
		want    string
	}{
		{"defaults publish exactly the motion frames", Config{MinMotionFrames: 1}, "..MMM..M.", "2:S 3:U 4:E|7:E"},
		{"motion until the end is flushed", Config{MinMotionFrames: 1}, "..MM", "2:S 3:E"},
		{"pre and post capture", Config{PreCapture: 2, PostCapture: 1, MinMotionFrames: 1}, "....MM...", "2:S 3:U 4:U 5:U 6:E"},
		{"gap shorter than post capture joins", Config{PostCapture: 2, MinMotionFrames: 1}, ".MM.M...", "1:S 2:U 3:U 4:U 5:U 6:E"},
		{"min motion frames drops flicker", Config{MinMotionFrames: 3}, ".M.MM.MMM..", "6:S 7:U 8:E"},
		{"unconfirmed motion becomes pre-capture", Config{PreCapture: 2, MinMotionFrames: 2}, "..M.MM.", "2:S 3:U 4:U 5:E"},
		{"cooldown ignores motion", Config{MinMotionFrames: 1, Cooldown: 3 * time.Second}, "MM.MM.MM", "0:S 1:E|6:S 7:E"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, _ := run(t, c.cfg, c.pattern)
			if got != c.want {
				t.Fatalf("%q -> %q, want %q", c.pattern, got, c.want)
			}
		})
	}
}

func TestTrackerReleasesDropped(t *testing.T) {
	// Every payload made is either published or released.
	cfg := Config{PreCapture: 3, PostCapture: 2, MinMotionFrames: 2}
	pattern := "......M..MMMM.....M.M........"
	got, released := run(t, cfg, pattern)
	published := strings.Count(got, ":")
	if published+released != len(pattern) {
		t.Fatalf("%d published + %d released != %d frames (%s)", published, released, len(pattern), got)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg   Config
		field string
	}{
		{Config{MinMotionFrames: 0}, "min_motion_frames"},
		{Config{MinMotionFrames: 1, PreCapture: -1}, "pre_capture"},
		{Config{MinMotionFrames: 1, PostCapture: 5000}, "post_capture"},
		{Config{MinMotionFrames: 1, Cooldown: -time.Second}, "cooldown"},
	} {
		if err := c.cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%+v: %v, want an error naming %s", c.cfg, err, c.field)
		}
	}
}
