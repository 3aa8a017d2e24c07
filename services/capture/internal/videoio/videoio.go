// Package videoio opens video through OpenCV's VideoCapture with the
// open-time parameters gocv v0.32 cannot pass: hardware-accelerated
// decoding (VAAPI, Intel Media SDK, or whatever the machine has) with a
// fallback to software. Frames are read into gocv Mats, so the rest of
// capture is unchanged. OpenCV's exceptions become errors.
package videoio

// #cgo CXXFLAGS: --std=c++11
// #include <stdlib.h>
// void* cefiot_capture_open(const char* target, int api, const int* params, int n_params, char* err, int err_len);
// int cefiot_capture_grab(void* vc);
// int cefiot_capture_retrieve(void* vc, void* mat);
// double cefiot_capture_get(void* vc, int prop);
// void cefiot_capture_close(void* vc);
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"gocv.io/x/gocv"
)

// Accel is a decoding acceleration, as OpenCV's VideoAccelerationType.
type Accel int

// The accelerations OpenCV knows on Linux.
const (
	// AccelNone decodes in software.
	AccelNone Accel = 0
	// AccelAny uses whatever acceleration the machine has, or software.
	AccelAny Accel = 1
	// AccelVAAPI requires VAAPI (Intel and AMD GPUs through /dev/dri).
	AccelVAAPI Accel = 3
	// AccelMFX requires Intel Media SDK.
	AccelMFX Accel = 4
)

var accelNames = map[Accel]string{AccelNone: "none", AccelAny: "any", AccelVAAPI: "vaapi", AccelMFX: "mfx"}

func (a Accel) String() string {
	if n, ok := accelNames[a]; ok {
		return n
	}
	return fmt.Sprintf("accel(%d)", int(a))
}

// ParseAccel reads an acceleration by name: any, none, vaapi or mfx.
func ParseAccel(name string) (Accel, error) {
	for a, n := range accelNames {
		if strings.EqualFold(name, n) {
			return a, nil
		}
	}
	return 0, fmt.Errorf("%q is none of any, none, vaapi, mfx", name)
}

// OpenCV's property ids that gocv v0.32 does not name.
const (
	propHWAcceleration = 50 // CAP_PROP_HW_ACCELERATION
	propHWDevice       = 51 // CAP_PROP_HW_DEVICE
)

// Capture is an open VideoCapture. It is not safe for concurrent use.
type Capture struct {
	p unsafe.Pointer
}

// Open opens target (a file, or a URL FFmpeg reads) with OpenCV's FFmpeg
// backend and the given acceleration. With AccelAny a machine without an
// accelerator decodes in software; a required one that is missing fails
// the open.
func Open(target string, accel Accel) (*Capture, error) {
	params := []C.int{propHWAcceleration, C.int(accel)}
	return open(target, int(gocv.VideoCaptureFFmpeg), params)
}

// OpenDevice opens a V4L2 device (no acceleration: the device gives raw
// or MJPEG frames).
func OpenDevice(path string) (*Capture, error) {
	return open(path, int(gocv.VideoCaptureV4L2), nil)
}

func open(target string, api int, params []C.int) (*Capture, error) {
	ctarget := C.CString(target)
	defer C.free(unsafe.Pointer(ctarget))
	var msg [512]C.char
	var pp *C.int
	if len(params) > 0 {
		pp = &params[0]
	}
	p := C.cefiot_capture_open(ctarget, C.int(api), pp, C.int(len(params)), &msg[0], C.int(len(msg)))
	if p == nil {
		return nil, errors.New(C.GoString(&msg[0]))
	}
	return &Capture{p: p}, nil
}

// Grab decodes the next frame without converting it; false at the end of
// the stream or on an error.
func (c *Capture) Grab() bool { return C.cefiot_capture_grab(c.p) != 0 }

// Retrieve converts the last grabbed frame to BGR into m.
func (c *Capture) Retrieve(m *gocv.Mat) bool {
	return C.cefiot_capture_retrieve(c.p, unsafe.Pointer(m.Ptr())) != 0 && !m.Empty()
}

// Read grabs and retrieves the next frame.
func (c *Capture) Read(m *gocv.Mat) bool { return c.Grab() && c.Retrieve(m) }

// Get returns a property.
func (c *Capture) Get(prop gocv.VideoCaptureProperties) float64 {
	return float64(C.cefiot_capture_get(c.p, C.int(prop)))
}

// Accel is the acceleration actually in use (AccelNone: software).
func (c *Capture) Accel() Accel { return Accel(int(c.Get(propHWAcceleration))) }

// Codec is the stream's FourCC, such as "h264" or "hevc".
func (c *Capture) Codec() string {
	v := int64(c.Get(gocv.VideoCaptureFOURCC))
	b := []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
	return strings.TrimRight(string(b), "\x00")
}

// Close releases the capture. It is safe to call more than once.
func (c *Capture) Close() {
	if c.p != nil {
		C.cefiot_capture_close(c.p)
		c.p = nil
	}
}
