package capture

import (
	"image"
	"image/color"
	"regexp"
	"testing"

	"gocv.io/x/gocv"
)

func TestFingerprintIsThePicture(t *testing.T) {
	a := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(10, 20, 30, 0), 240, 320, gocv.MatTypeCV8UC3)
	defer a.Close()
	b := a.Clone()
	defer b.Close()
	fa, err := Fingerprint(a)
	if err != nil {
		t.Fatal(err)
	}
	fb, _ := Fingerprint(b)
	if fa != fb {
		t.Fatalf("equal pictures: fingerprints %x and %x", fa, fb)
	}
	// One pixel changes the fingerprint.
	gocv.Rectangle(&b, image.Rect(5, 5, 6, 6), color.RGBA{R: 31, G: 20, B: 10}, -1)
	if fb, _ = Fingerprint(b); fa == fb {
		t.Fatal("a changed pixel kept the fingerprint")
	}
	// So does the shape of the same bytes.
	c := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(10, 20, 30, 0), 320, 240, gocv.MatTypeCV8UC3)
	defer c.Close()
	if fc, _ := Fingerprint(c); fc == fa {
		t.Fatal("a transposed size kept the fingerprint")
	}
	// A region of interest (not continuous) is fingerprinted as its
	// pixels.
	roi := a.Region(image.Rect(0, 0, 100, 100))
	defer roi.Close()
	copied := roi.Clone()
	defer copied.Close()
	fr, err := Fingerprint(roi)
	if err != nil {
		t.Fatal(err)
	}
	if fcp, _ := Fingerprint(copied); fr != fcp {
		t.Fatalf("a region and its copy: %x and %x", fr, fcp)
	}
	empty := gocv.NewMat()
	defer empty.Close()
	if _, err := Fingerprint(empty); err == nil {
		t.Fatal("an empty picture has no fingerprint")
	}
}

func TestLiveFrameIDIsAValidID(t *testing.T) {
	id := LiveFrameID("door-1", 0xfedcba9876543210)
	if id != "door-1_live_fedcba9876543210" {
		t.Fatalf("id %q", id)
	}
	// The sink accepts ids of A-Z a-z 0-9 . _ - only.
	if !regexp.MustCompile(`^[A-Za-z0-9._-]+$`).MatchString(LiveFrameID("cam-1", 1)) {
		t.Fatal("not a valid frame id")
	}
}
