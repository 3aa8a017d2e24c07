package motion

import (
	"bytes"
	"image/jpeg"
	"testing"

	"gocv.io/x/gocv"
)

func TestThumbnailKeepsTheAspectAndDecodes(t *testing.T) {
	for _, tc := range []struct{ w, h, width, wantW, wantH int }{
		{768, 576, 160, 160, 120},
		{1920, 1080, 160, 160, 90},
		{100, 80, 160, 100, 80}, // never wider than the frame
	} {
		m := gocv.NewMatWithSize(tc.h, tc.w, gocv.MatTypeCV8UC3)
		b, w, h, err := Thumbnail(m, tc.width, 70)
		m.Close()
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
		if err != nil || w != tc.wantW || h != tc.wantH || cfg.Width != w || cfg.Height != h {
			t.Fatalf("%dx%d -> %dx%d (JPEG %dx%d, %v), want %dx%d", tc.w, tc.h, w, h, cfg.Width, cfg.Height, err, tc.wantW, tc.wantH)
		}
	}
	empty := gocv.NewMat()
	defer empty.Close()
	if _, _, _, err := Thumbnail(empty, 160, 70); err == nil {
		t.Fatal("an empty image gave a thumbnail")
	}
}
