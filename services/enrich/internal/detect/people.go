package detect

// #cgo CXXFLAGS: --std=c++11
// int cefiot_default_people_detector(float* out, int n);
import "C"

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"gocv.io/x/gocv"
)

// defaultPeopleDetector returns OpenCV's default people detector (the SVM
// of Dalal and Triggs' pedestrian HOG) as a 1-column float Mat that owns
// its data (see people.cpp for why gocv's own helper is not used).
func defaultPeopleDetector() (gocv.Mat, error) {
	coef := make([]float32, 4096)
	n := int(C.cefiot_default_people_detector((*C.float)(unsafe.Pointer(&coef[0])), C.int(len(coef))))
	if n <= 0 {
		return gocv.Mat{}, fmt.Errorf("detect: OpenCV's default people detector is unavailable (%d)", n)
	}
	b := make([]byte, 4*n)
	for i, v := range coef[:n] {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return gocv.NewMatFromBytes(n, 1, gocv.MatTypeCV32F, b)
}
