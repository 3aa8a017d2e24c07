package mjpegtest

import (
	"fmt"
	"image"
	"image/color"

	"gocv.io/x/gocv"
)

// A live picture carries its number as a row of black and white blocks
// along its top edge (most significant bit first), which survives JPEG
// compression, so a test can tell exactly which pictures were stored.
const (
	numberBits  = 24
	numberBlock = 10 // pixels per block, square
)

// drawNumber paints n's blocks onto m (at least numberBits*numberBlock
// pixels wide).
func drawNumber(m *gocv.Mat, n int) {
	for i := 0; i < numberBits; i++ {
		c := color.RGBA{A: 255}
		if n>>(numberBits-1-i)&1 == 1 {
			c = color.RGBA{R: 255, G: 255, B: 255, A: 255}
		}
		gocv.Rectangle(m, image.Rect(i*numberBlock, 0, (i+1)*numberBlock, numberBlock), c, -1)
	}
}

// PictureNumber reads the number of a live picture from its JPEG.
func PictureNumber(jpeg []byte) (int, error) {
	m, err := gocv.IMDecode(jpeg, gocv.IMReadGrayScale)
	if err != nil {
		return 0, fmt.Errorf("mjpegtest: decode picture: %w", err)
	}
	defer m.Close()
	if m.Empty() || m.Cols() < numberBits*numberBlock || m.Rows() < numberBlock {
		return 0, fmt.Errorf("mjpegtest: not a live picture (%dx%d)", m.Cols(), m.Rows())
	}
	n := 0
	for i := 0; i < numberBits; i++ {
		// The block's centre, away from JPEG's ringing at its edges.
		centre := m.Region(image.Rect(i*numberBlock+3, 3, (i+1)*numberBlock-3, numberBlock-3))
		mean := centre.Mean().Val1
		centre.Close()
		n <<= 1
		switch {
		case mean > 192:
			n |= 1
		case mean < 64:
		default:
			return 0, fmt.Errorf("mjpegtest: block %d of the picture number is grey (%.0f)", i, mean)
		}
	}
	return n, nil
}
