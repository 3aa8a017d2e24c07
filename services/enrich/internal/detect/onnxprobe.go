package detect

// #cgo CXXFLAGS: --std=c++11
// #include <stdlib.h>
// int cefiot_onnx_probe(const char* path, int input, int* dims, int max_dims, char* err, int err_len);
import "C"

import (
	"errors"
	"unsafe"
)

// probeONNX loads the model at path and runs it once on a black picture of
// input x input, and returns its output's shape, or why it cannot.
func probeONNX(path string, input int) ([]int, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var dims [8]C.int
	var msg [512]C.char
	n := int(C.cefiot_onnx_probe(cpath, C.int(input), &dims[0], C.int(len(dims)), &msg[0], C.int(len(msg))))
	if n < 0 {
		return nil, errors.New(C.GoString(&msg[0]))
	}
	out := make([]int, n)
	for i := range out {
		out[i] = int(dims[i])
	}
	return out, nil
}
