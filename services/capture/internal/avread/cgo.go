//go:build !customenv

package avread

// FFmpeg's and OpenCV's flags from pkg-config, unless the build says where
// they are itself (-tags customenv with CGO_CPPFLAGS and CGO_LDFLAGS, as
// the arm64 image build does).

// #cgo pkg-config: libavformat libavcodec libswscale libavutil opencv4
import "C"
