//go:build !customenv

package videoio

// As gocv: OpenCV's flags from pkg-config, unless the build says where
// OpenCV is itself (-tags customenv with CGO_CPPFLAGS and CGO_LDFLAGS, as
// the arm64 image build does).

// #cgo pkg-config: opencv4
import "C"
