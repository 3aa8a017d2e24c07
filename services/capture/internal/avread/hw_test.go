package avread

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/cefiot/cefiot/libs/harness/videogen"
)

// TestHardwareDecodingWhereTheMachineHasIt: HardwareAny decodes on the
// machine's VAAPI device when it has one and in software otherwise, in
// both modes, and says which; HardwareVAAPI on a machine without a usable
// device refuses to open, naming VAAPI and the reason.
func TestHardwareDecodingWhereTheMachineHasIt(t *testing.T) {
	spec := videogen.DefaultSpec()
	spec.Width, spec.Height, spec.Frames, spec.FPS, spec.MotionStart, spec.MotionEnd = 320, 240, 30, 15, 1, 29
	clip := videogen.H264Clip(t, spec, "1M", 0)
	devices, _ := filepath.Glob("/dev/dri/renderD*")
	for _, packets := range []bool{false, true} {
		r, err := Open(clip, Config{Packets: packets, Hardware: HardwareAny})
		if err != nil {
			t.Fatal(err)
		}
		m := gocv.NewMat()
		n := 0
		for r.Read(&m) {
			n++
		}
		decoder := r.Decoder()
		r.Close()
		m.Close()
		t.Logf("packets %v: %d pictures decoded by %s", packets, n, decoder)
		if n != spec.Frames {
			t.Fatalf("packets %v: %d pictures of %d", packets, n, spec.Frames)
		}
		if len(devices) == 0 && decoder != "software" {
			t.Fatalf("no VAAPI device here, yet decoded by %q", decoder)
		}
	}
	if len(devices) > 0 {
		if _, err := os.Stat(devices[0]); err == nil {
			t.Skipf("%s exists: a machine with a VAAPI device cannot show the refusal", devices[0])
		}
	}
	_, err := Open(clip, Config{Hardware: HardwareVAAPI})
	if err == nil {
		t.Fatal("VAAPI required on a machine without a VAAPI device, and the stream opened")
	}
	if !strings.Contains(err.Error(), "VAAPI") {
		t.Fatalf("the refusal does not name VAAPI: %v", err)
	}
	t.Logf("refused: %v", err)
}
