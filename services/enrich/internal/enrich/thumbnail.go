package enrich

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"

	"golang.org/x/image/draw"
)

// Thumbnail is a small JPEG of a frame for listings.
type Thumbnail struct {
	JPEG          []byte
	Width, Height int
	// SourceWidth and SourceHeight are the decoded frame's size.
	SourceWidth, SourceHeight int
}

// MakeThumbnail decodes jpegBytes, scales it to width keeping the aspect
// ratio and encodes it at quality. It is pure Go (no OpenCV), so enrich
// stays a static binary that runs on any edge board. claimedWidth is
// accepted for API stability and ignored: the decoder reads the real size.
// It fails when the bytes are not a decodable JPEG.
func MakeThumbnail(jpegBytes []byte, claimedWidth, width, quality int) (Thumbnail, error) {
	_ = claimedWidth
	img, err := jpeg.Decode(bytes.NewReader(jpegBytes))
	if err != nil {
		return Thumbnail{}, fmt.Errorf("not a decodable image (%d bytes): %v", len(jpegBytes), err)
	}
	b := img.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 {
		return Thumbnail{}, fmt.Errorf("not a decodable image (%d bytes): empty", len(jpegBytes))
	}
	t := Thumbnail{SourceWidth: b.Dx(), SourceHeight: b.Dy()}
	w := min(width, b.Dx())
	h := max(1, b.Dy()*w/b.Dx())
	small := image.NewRGBA(image.Rect(0, 0, w, h))
	// ApproxBiLinear on a 4-5x reduction is fast and, for a listing
	// thumbnail, indistinguishable from an area filter.
	draw.ApproxBiLinear.Scale(small, small.Bounds(), img, b, draw.Src, nil)
	var out bytes.Buffer
	if err := jpeg.Encode(&out, small, &jpeg.Options{Quality: quality}); err != nil {
		return Thumbnail{}, fmt.Errorf("encode thumbnail: %w", err)
	}
	t.JPEG = out.Bytes()
	t.Width, t.Height = w, h
	return t, nil
}
