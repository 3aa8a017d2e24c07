package avread

import (
	"fmt"
	"testing"

	"gocv.io/x/gocv"

	"github.com/cefiot/cefiot/libs/harness/videogen"
)

// TestPacketModeDecodesTheKeptPictureAsked: a reader in packet mode keeps
// a clip's packets and decodes only the pictures asked for, a few behind
// the newest packet, skipping others, going back and asking one twice:
// each is the very picture a reader that decodes every picture gives for
// that packet, with and without B-frames. A picture older than what is
// kept is refused, not replaced by another.
func TestPacketModeDecodesTheKeptPictureAsked(t *testing.T) {
	spec := videogen.DefaultSpec()
	spec.Width, spec.Height, spec.Frames, spec.FPS, spec.MotionStart, spec.MotionEnd = 320, 240, 150, 15, 1, 149
	for _, bframes := range []int{0, 2} {
		t.Run(fmt.Sprintf("bframes=%d", bframes), func(t *testing.T) {
			clip := videogen.H264Clip(t, spec, "1M", bframes)
			// Every picture, by presentation time.
			all, err := Open(clip, Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer all.Close()
			want := map[float64]gocv.Mat{}
			defer func() {
				for _, m := range want {
					m.Close()
				}
			}()
			for {
				m := gocv.NewMat()
				if !all.Read(&m) {
					m.Close()
					break
				}
				pos, _ := all.times()
				want[pos] = m
			}
			if len(want) != spec.Frames {
				t.Fatalf("%d pictures decoded of %d", len(want), spec.Frames)
			}

			r, err := Open(clip, Config{Packets: true})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got := gocv.NewMat()
			defer got.Close()
			positions := map[int64]float64{}
			asked := 0
			for r.Grab() {
				seq := r.Seq()
				positions[seq], _ = r.times()
				// Ask for the picture 4 packets back at every third packet,
				// again for the one asked before, and now and then for one
				// 20 back (behind where the decoder stands).
				var ask []int64
				if seq%3 == 0 && seq >= 4 {
					ask = append(ask, seq-4, seq-4)
				}
				if seq%50 == 49 {
					ask = append(ask, seq-20)
				}
				for _, s := range ask {
					if !r.DecodeKept(s, &got) {
						t.Fatalf("packet %d (newest %d): not decoded", s, seq)
					}
					w, ok := want[positions[s]]
					if !ok {
						t.Fatalf("packet %d: no picture of its time %.1f ms", s, positions[s])
					}
					if diff := differs(w, got); diff != 0 {
						t.Fatalf("packet %d: the picture decoded differs from the stream's in %d values", s, diff)
					}
					asked++
				}
			}
			if asked < 90 {
				t.Fatalf("only %d pictures asked for", asked)
			}
			// 150 pictures at 15 fps: the first second is no longer kept.
			if r.DecodeKept(5, &got) {
				t.Fatal("a picture of the clip's first second decoded after 10 s of packets; only the last 3 s are kept")
			}
		})
	}
}

// differs counts the values in which two pictures differ.
func differs(a, b gocv.Mat) int {
	if a.Rows() != b.Rows() || a.Cols() != b.Cols() {
		return a.Rows() * a.Cols() * 3
	}
	d := gocv.NewMat()
	defer d.Close()
	gocv.AbsDiff(a, b, &d)
	g := d.Reshape(1, 0)
	defer g.Close()
	return gocv.CountNonZero(g)
}
