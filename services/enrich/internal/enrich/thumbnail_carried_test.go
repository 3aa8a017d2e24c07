package enrich

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"testing"

	"google.golang.org/protobuf/proto"

	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

func encodeJPEG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := range w {
		img.Set(x, h/2, color.RGBA{R: 200, A: 255})
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func enrich(t *testing.T, tr Transformer, f *cefiotv1.Frame) (*cefiotv1.EnrichedFrame, error) {
	t.Helper()
	b, err := proto.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	_, ef, err := tr.Enrich(b)
	return ef, err
}

// A frame that carries a thumbnail of the configured width keeps it: enrich
// moves it to the enriched record (once) instead of decoding the frame.
func TestCarriedThumbnailIsMovedNotRemade(t *testing.T) {
	tr := Transformer{Site: "edge", ThumbnailWidth: 160, ThumbnailQuality: 70}
	carried := encodeJPEG(t, 160, 120)
	ef, err := enrich(t, tr, &cefiotv1.Frame{
		FrameId: "c_1_00000001", CameraId: "c", Width: 768, Height: 576, Jpeg: encodeJPEG(t, 768, 576),
		ThumbnailJpeg: carried, ThumbnailWidth: 160, ThumbnailHeight: 120,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ef.GetThumbnailJpeg(), carried) || ef.GetThumbnailWidth() != 160 || ef.GetThumbnailHeight() != 120 {
		t.Fatalf("thumbnail %d bytes %dx%d, want the carried one", len(ef.GetThumbnailJpeg()), ef.GetThumbnailWidth(), ef.GetThumbnailHeight())
	}
	if len(ef.GetFrame().GetThumbnailJpeg()) != 0 || ef.GetFrame().GetThumbnailWidth() != 0 {
		t.Fatal("the thumbnail is stored twice (frame and enriched record)")
	}
}

// Without a usable carried thumbnail (none, another width, not a JPEG, a
// size it does not have) enrich makes its own from the full frame.
func TestEnrichMakesTheThumbnailWhenNoneFits(t *testing.T) {
	tr := Transformer{Site: "edge", ThumbnailWidth: 160, ThumbnailQuality: 70}
	full := encodeJPEG(t, 768, 576)
	for name, f := range map[string]*cefiotv1.Frame{
		"none":          {},
		"other width":   {ThumbnailJpeg: encodeJPEG(t, 320, 240), ThumbnailWidth: 320, ThumbnailHeight: 240},
		"not a jpeg":    {ThumbnailJpeg: []byte("nope"), ThumbnailWidth: 160, ThumbnailHeight: 120},
		"lies its size": {ThumbnailJpeg: encodeJPEG(t, 100, 75), ThumbnailWidth: 160, ThumbnailHeight: 120},
	} {
		f.FrameId, f.CameraId, f.Width, f.Height, f.Jpeg = "c_1_00000001", "c", 768, 576, full
		ef, err := enrich(t, tr, f)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(ef.GetThumbnailJpeg()))
		if err != nil || cfg.Width != 160 || cfg.Height != 120 || ef.GetThumbnailWidth() != 160 {
			t.Fatalf("%s: thumbnail %v %dx%d (%v)", name, cfg, ef.GetThumbnailWidth(), ef.GetThumbnailHeight(), err)
		}
		if len(ef.GetFrame().GetThumbnailJpeg()) != 0 {
			t.Fatalf("%s: the frame keeps its unusable thumbnail", name)
		}
	}
}

// A frame whose JPEG header contradicts its declared size, or is no JPEG,
// is refused even when it carries a thumbnail.
func TestFrameWhoseJPEGContradictsItIsRefused(t *testing.T) {
	tr := Transformer{Site: "edge", ThumbnailWidth: 160, ThumbnailQuality: 70}
	thumb := encodeJPEG(t, 160, 120)
	for name, tc := range map[string]struct {
		jpeg []byte
		code string
	}{
		"other size": {encodeJPEG(t, 800, 600), "invalid"},
		"not a jpeg": {[]byte("GIF89a...."), "bad-jpeg"},
		"truncated":  {encodeJPEG(t, 768, 576)[:10], "bad-jpeg"},
	} {
		_, err := enrich(t, tr, &cefiotv1.Frame{FrameId: "c_1_00000001", CameraId: "c", Width: 768, Height: 576, Jpeg: tc.jpeg,
			ThumbnailJpeg: thumb, ThumbnailWidth: 160, ThumbnailHeight: 120})
		var br *BadRecordError
		if !errors.As(err, &br) || br.Code != tc.code {
			t.Errorf("%s: %v, want a bad record %q", name, err, tc.code)
		}
	}
}
