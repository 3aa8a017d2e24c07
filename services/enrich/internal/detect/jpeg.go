package detect

import (
	"fmt"
	"image"

	"gocv.io/x/gocv"
)

// DetectJPEG decodes a JPEG and runs d on it. A picture at least twice
// (four times) the working width is decoded at a half (quarter) of its
// size by the JPEG decoder itself, which is much cheaper than a full
// decode and a resize; boxes come back in the JPEG's own pixels.
func DetectJPEG(d Detector, jpeg []byte, fullWidth, workWidth int) ([]Label, error) {
	flag, factor := gocv.IMReadColor, 1
	switch {
	case workWidth > 0 && fullWidth >= 4*workWidth:
		flag, factor = gocv.IMReadReducedColor4, 4
	case workWidth > 0 && fullWidth >= 2*workWidth:
		flag, factor = gocv.IMReadReducedColor2, 2
	}
	img, err := gocv.IMDecode(jpeg, flag)
	if err != nil {
		return nil, fmt.Errorf("decode JPEG: %w", err)
	}
	defer img.Close()
	if img.Empty() {
		return nil, fmt.Errorf("decode JPEG: not a picture (%d bytes)", len(jpeg))
	}
	labels, err := d.Detect(img)
	if err != nil || factor == 1 {
		return labels, err
	}
	for i := range labels {
		b := labels[i].Box
		labels[i].Box = image.Rect(b.Min.X*factor, b.Min.Y*factor, b.Max.X*factor, b.Max.Y*factor)
	}
	return labels, nil
}

// Width is the working width of a detector (0 when it has none).
func Width(d Detector) int {
	if w, ok := d.(interface{ WorkWidth() int }); ok {
		return w.WorkWidth()
	}
	return 0
}
