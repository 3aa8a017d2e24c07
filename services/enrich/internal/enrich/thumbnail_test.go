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

// sampleJPEG renders a 768x576 test picture (gradient and a square) as a
// JPEG, the size of the project's sample video.
func sampleJPEG(t testing.TB) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 768, 576))
	for y := 0; y < 576; y++ {
		for x := 0; x < 768; x++ {
			img.Set(x, y, color.RGBA{uint8(x / 3), uint8(y / 3), 128, 255})
		}
	}
	for y := 200; y < 300; y++ {
		for x := 300; x < 400; x++ {
			img.Set(x, y, color.RGBA{250, 250, 250, 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestThumbnailAdded(t *testing.T) {
	frameJPEG := sampleJPEG(t)
	in, _ := proto.Marshal(&cefiotv1.Frame{FrameId: "c_1_00000001", CameraId: "c", Width: 768, Height: 576, Jpeg: frameJPEG})
	_, ef, err := Transformer{ThumbnailWidth: 160}.Enrich(in)
	if err != nil {
		t.Fatal(err)
	}
	if ef.GetThumbnailWidth() != 160 || ef.GetThumbnailHeight() != 120 || len(ef.GetThumbnailJpeg()) == 0 ||
		len(ef.GetThumbnailJpeg()) > len(frameJPEG)/5 {
		t.Fatalf("thumbnail %dx%d, %d bytes (frame %d bytes)", ef.GetThumbnailWidth(), ef.GetThumbnailHeight(), len(ef.GetThumbnailJpeg()), len(frameJPEG))
	}
	back, err := jpeg.Decode(bytes.NewReader(ef.GetThumbnailJpeg()))
	if err != nil || back.Bounds().Dx() != 160 || back.Bounds().Dy() != 120 {
		t.Fatalf("thumbnail does not decode to 160x120: %v", err)
	}
}

func TestBadRecordCodes(t *testing.T) {
	jpeg := sampleJPEG(t)
	enc := func(f *cefiotv1.Frame) []byte { b, _ := proto.Marshal(f); return b }
	tr := Transformer{ThumbnailWidth: 160, MaxRecordBytes: 1 << 20, MaxPixels: 1000 * 1000}
	big := make([]byte, 2<<20)
	for name, c := range map[string]struct {
		in   []byte
		code string
	}{
		"garbage":        {[]byte{0xff, 0xff, 0xff, 0x01}, "decode"},
		"no id":          {enc(&cefiotv1.Frame{CameraId: "c", Jpeg: jpeg}), "invalid"},
		"not a jpeg":     {enc(&cefiotv1.Frame{FrameId: "f", CameraId: "c", Jpeg: []byte("definitely not a JPEG")}), "bad-jpeg"},
		"truncated":      {enc(&cefiotv1.Frame{FrameId: "f", CameraId: "c", Jpeg: jpeg[:20]}), "bad-jpeg"},
		"too many px":    {enc(&cefiotv1.Frame{FrameId: "f", CameraId: "c", Width: 4000, Height: 3000, Jpeg: jpeg}), "too-large"},
		"too many bytes": {enc(&cefiotv1.Frame{FrameId: "f", CameraId: "c", Jpeg: big}), "too-large"},
	} {
		_, _, err := tr.Enrich(c.in)
		var br *BadRecordError
		if !errors.As(err, &br) || br.Code != c.code || !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: err = %v, want code %s", name, err, c.code)
		}
	}
}

func TestWorkloadParams(t *testing.T) {
	p, err := ParseWorkloadParams(map[string]string{"thumbnail-width": "96", "someone-elses": "x"}, WorkloadParams{ThumbnailWidth: 160})
	if err != nil || p.ThumbnailWidth != 96 {
		t.Fatalf("params = %+v, %v", p, err)
	}
	if _, err := ParseWorkloadParams(map[string]string{"thumbnail-width": "9"}, WorkloadParams{}); err == nil {
		t.Fatal("thumbnail-width 9 accepted")
	}
}

// BenchmarkThumbnail measures the pure-Go thumbnail of a 768x576 frame.
func BenchmarkThumbnail(b *testing.B) {
	frame := sampleJPEG(b)
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, err := MakeThumbnail(frame, 768, 160, 80); err != nil {
			b.Fatal(err)
		}
	}
}
