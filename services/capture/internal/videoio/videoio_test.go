package videoio

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"gocv.io/x/gocv"
)

// h264Clip has Debian's ffmpeg encode n frames of its test pattern with
// libx264, as a camera would (no B-frames).
func h264Clip(t *testing.T, n int) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "clip.mp4")
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=15",
		"-frames:v", strconv.Itoa(n), "-c:v", "libx264", "-bf", "0", "-pix_fmt", "yuv420p", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, bytes.TrimSpace(msg))
	}
	return out
}

// hasRenderNode reports whether the machine has a GPU render node, which
// hardware decoding needs.
func hasRenderNode() bool {
	m, _ := filepath.Glob("/dev/dri/renderD*")
	return len(m) > 0
}

// TestAnyDecodesEveryFrameWithOrWithoutAnAccelerator: with AccelAny an
// H.264 video decodes frame for frame like software decoding, and the
// capture tells what decoded it (software on a machine without a GPU).
func TestAnyDecodesEveryFrameWithOrWithoutAnAccelerator(t *testing.T) {
	clip := h264Clip(t, 30)
	count := func(a Accel) (int, Accel, string) {
		c, err := Open(clip, a)
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		defer c.Close()
		m := gocv.NewMat()
		defer m.Close()
		n := 0
		for c.Read(&m) {
			if m.Cols() != 640 || m.Rows() != 360 {
				t.Fatalf("%s: frame %d is %dx%d", a, n, m.Cols(), m.Rows())
			}
			n++
		}
		return n, c.Accel(), c.Codec()
	}
	soft, inUse, codec := count(AccelNone)
	if soft != 30 || inUse != AccelNone || codec != "avc1" {
		t.Fatalf("software: %d frames, decoder %s, codec %q; want 30, none, avc1", soft, inUse, codec)
	}
	anyN, inUse, _ := count(AccelAny)
	if anyN != soft {
		t.Fatalf("any: %d frames, software %d", anyN, soft)
	}
	if !hasRenderNode() && inUse != AccelNone {
		t.Fatalf("any, on a machine without a GPU: decoder %s", inUse)
	}
	t.Logf("any: decoded by %s (render node: %v)", inUse, hasRenderNode())
}

// TestARequiredAcceleratorThatIsMissingFailsTheOpen: asking for VAAPI on a
// machine without a GPU is an error, not a silent software decode and not
// an abort; so is a file that is not a video.
func TestARequiredAcceleratorThatIsMissingFailsTheOpen(t *testing.T) {
	if hasRenderNode() {
		t.Skip("this machine has a GPU render node")
	}
	clip := h264Clip(t, 5)
	if c, err := Open(clip, AccelVAAPI); err == nil {
		c.Close()
		t.Fatal("VAAPI decoding opened on a machine without a GPU")
	}
	junk := filepath.Join(t.TempDir(), "junk.mp4")
	if err := os.WriteFile(junk, []byte("not a video"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err := Open(junk, AccelAny); err == nil {
		c.Close()
		t.Fatal("a file that is not a video opened")
	}
}

// TestGrabSkipsWithoutConverting: frames grabbed and not retrieved are
// passed over; the one retrieved after them is the next in the video.
func TestGrabSkipsWithoutConverting(t *testing.T) {
	clip := h264Clip(t, 10)
	read := func(skip int) gocv.Mat {
		c, err := Open(clip, AccelAny)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := 0; i < skip; i++ {
			if !c.Grab() {
				t.Fatalf("grab %d", i)
			}
		}
		m := gocv.NewMat()
		if !c.Read(&m) {
			t.Fatal("read")
		}
		return m
	}
	first, sixth := read(0), read(5)
	defer first.Close()
	defer sixth.Close()
	c, err := Open(clip, AccelNone)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := gocv.NewMat()
	defer m.Close()
	for i := 0; i <= 5; i++ {
		c.Read(&m)
		if i == 0 && !equal(m, first) {
			t.Fatal("frame 0 differs")
		}
	}
	if !equal(m, sixth) || equal(first, sixth) {
		t.Fatal("the frame read after 5 grabs is not frame 5")
	}
}

func equal(a, b gocv.Mat) bool {
	d := gocv.NewMat()
	defer d.Close()
	gocv.AbsDiff(a, b, &d)
	g := gocv.NewMat()
	defer g.Close()
	gocv.CvtColor(d, &g, gocv.ColorBGRToGray)
	return gocv.CountNonZero(g) == 0
}

func TestParseAccel(t *testing.T) {
	for _, n := range []string{"any", "none", "VAAPI", "mfx"} {
		if _, err := ParseAccel(n); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	if _, err := ParseAccel("cuda"); err == nil {
		t.Error("cuda accepted")
	}
}
