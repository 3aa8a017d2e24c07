// Package avread reads a network stream (RTSP above all) through FFmpeg's
// libraries directly, not through OpenCV's VideoCapture, so that each
// picture keeps what the stream says about it: its presentation time and
// its producer's wall-clock time. An RTSP camera's RTCP sender reports map
// its RTP clock to its wall clock; FFmpeg attaches that time to each packet
// and Reader gives it per picture (ProducerTime). Two readers of one camera
// get the same time for the same picture, whenever each connected, on
// whatever decoder: what makes a live picture's identity. Pictures are
// decoded in software, one thread per stream, or on the machine's VAAPI
// device (Config.Hardware), and converted to BGR into gocv Mats only when
// asked (Retrieve).
//
// In packet mode (Config.Packets) a reader keeps the stream's packets, from
// its last keyframes on, and decodes a picture only when asked for one
// (DecodeKept): a camera's main stream then costs its demuxing while
// nothing moves, and its decoding only around the moments that are stored.
package avread

// #cgo CXXFLAGS: --std=c++11
// #include <stdint.h>
// #include <stdlib.h>
// void* cefiot_av_open(const char* url, const char* const* keys, const char* const* values, int n, int packets, int hw, char* err, int err_len);
// int cefiot_av_hw(void* p);
// int cefiot_av_decode_kept(void* p, int64_t seq, void* mat);
// int cefiot_av_grab(void* p);
// int cefiot_av_retrieve(void* p, void* mat);
// void cefiot_av_times(void* p, double* pos_ms, int64_t* producer_us);
// double cefiot_av_fps(void* p);
// const char* cefiot_av_codec(void* p);
// void cefiot_av_close(void* p);
import "C"

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"
	"unsafe"

	"gocv.io/x/gocv"
)

// Reader is an open stream. It is not safe for concurrent use, but for
// DecodeKept, which one other goroutine may call while the reader's owner
// grabs and closes it.
type Reader struct {
	p       unsafe.Pointer
	packets bool
	seq     int64 // the last grabbed packet's number, in packet mode

	decodeMu sync.Mutex // DecodeKept against Close
	closed   bool
}

// Config says how a stream is opened.
type Config struct {
	// Options are FFmpeg's (for example rw_timeout in microseconds,
	// rtsp_transport).
	Options map[string]string
	// Packets opens the stream in packet mode: Grab reads the next packet
	// and keeps it, undecoded (its times are the picture's); a kept
	// packet's picture is decoded by DecodeKept, or Retrieve for the last
	// one. Packets are kept for the last 3 s (whole groups of pictures
	// from a keyframe, at most 64 MiB).
	Packets bool
	// Hardware: HardwareNone decodes in software, HardwareAny on the
	// machine's VAAPI device when it has one (else in software),
	// HardwareVAAPI on it or not at all.
	Hardware Hardware
}

// Hardware says where pictures are decoded.
type Hardware int

const (
	HardwareNone Hardware = iota
	HardwareAny
	HardwareVAAPI
)

// Open connects to url, probes it and prepares its video stream's
// decoder.
func Open(url string, cfg Config) (*Reader, error) {
	return open(url, cfg.Options, cfg.Packets, cfg.Hardware)
}

func open(url string, options map[string]string, packets bool, hw Hardware) (*Reader, error) {
	curl := C.CString(url)
	defer C.free(unsafe.Pointer(curl))
	keys := make([]string, 0, len(options))
	for k := range options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	n := len(keys)
	ck := C.malloc(C.size_t(max(n, 1)) * C.size_t(unsafe.Sizeof(uintptr(0))))
	cv := C.malloc(C.size_t(max(n, 1)) * C.size_t(unsafe.Sizeof(uintptr(0))))
	defer C.free(ck)
	defer C.free(cv)
	kp := unsafe.Slice((**C.char)(ck), max(n, 1))
	vp := unsafe.Slice((**C.char)(cv), max(n, 1))
	for i, k := range keys {
		kp[i], vp[i] = C.CString(k), C.CString(options[k])
		defer C.free(unsafe.Pointer(kp[i]))
		defer C.free(unsafe.Pointer(vp[i]))
	}
	var msg [512]C.char
	mode := C.int(0)
	if packets {
		mode = 1
	}
	p := C.cefiot_av_open(curl, (**C.char)(ck), (**C.char)(cv), C.int(n), mode, C.int(hw), &msg[0], C.int(len(msg)))
	if p == nil {
		return nil, errors.New("FFmpeg: " + C.GoString(&msg[0]))
	}
	return &Reader{p: p, packets: packets, seq: -1}, nil
}

// Grab decodes the next picture without converting it (in packet mode:
// reads and keeps its packet); false at the end of the stream or when the
// stream stalled past its read timeout.
func (r *Reader) Grab() bool {
	ok := C.cefiot_av_grab(r.p) != 0
	if ok && r.packets {
		r.seq++
	}
	return ok
}

// Retrieve converts the last grabbed picture to BGR into m (in packet
// mode: decodes it first).
func (r *Reader) Retrieve(m *gocv.Mat) bool {
	if r.packets {
		return r.DecodeKept(r.seq, m)
	}
	return C.cefiot_av_retrieve(r.p, unsafe.Pointer(m.Ptr())) != 0 && !m.Empty()
}

// Packets reports whether the reader is in packet mode.
func (r *Reader) Packets() bool { return r.packets }

// Seq is the number of the last packet grabbed in packet mode, from 0 at
// the connection; -1 before the first.
func (r *Reader) Seq() int64 { return r.seq }

// DecodeKept decodes the picture of packet seq (a Seq of this reader) into
// m, in BGR: from where the decoder stands when that is on the way, from
// the keyframe before it otherwise. false when the packet is no longer
// kept, does not decode, or the reader is closed. It may be called by one
// goroutine while the reader's owner grabs.
func (r *Reader) DecodeKept(seq int64, m *gocv.Mat) bool {
	r.decodeMu.Lock()
	defer r.decodeMu.Unlock()
	if r.closed || !r.packets {
		return false
	}
	return C.cefiot_av_decode_kept(r.p, C.int64_t(seq), unsafe.Pointer(m.Ptr())) != 0 && !m.Empty()
}

// Read grabs and retrieves the next picture.
func (r *Reader) Read(m *gocv.Mat) bool { return r.Grab() && r.Retrieve(m) }

// Position is the last picture's presentation time from the stream's
// start; false when it has none.
func (r *Reader) Position() (time.Duration, bool) {
	pos, _ := r.times()
	if math.IsNaN(pos) {
		return 0, false
	}
	return time.Duration(pos * float64(time.Millisecond)), true
}

// ProducerTime is the last picture's time by its producer's wall clock
// (an RTSP camera's, from its RTCP sender reports); false until the stream
// has given one (a camera sends its first report within seconds of PLAY)
// or when it gives none.
func (r *Reader) ProducerTime() (time.Time, bool) {
	_, us := r.times()
	if us <= 0 {
		return time.Time{}, false
	}
	return time.UnixMicro(us), true
}

func (r *Reader) times() (float64, int64) {
	var pos C.double
	var us C.int64_t
	C.cefiot_av_times(r.p, &pos, &us)
	return float64(pos), int64(us)
}

// FPS is the stream's frame rate as FFmpeg guesses it; 0 when unknown.
func (r *Reader) FPS() float64 { return float64(C.cefiot_av_fps(r.p)) }

// Decoder is "vaapi" when the stream is decoded by the machine's VAAPI
// device, else "software".
func (r *Reader) Decoder() string {
	if C.cefiot_av_hw(r.p) != 0 {
		return "vaapi"
	}
	return "software"
}

// Codec names the stream's codec ("h264", "hevc", "mjpeg").
func (r *Reader) Codec() string { return C.GoString(C.cefiot_av_codec(r.p)) }

// Close disconnects and releases the decoder. It is safe to call more
// than once.
func (r *Reader) Close() {
	r.decodeMu.Lock()
	defer r.decodeMu.Unlock()
	if !r.closed {
		C.cefiot_av_close(r.p)
		r.closed = true
	}
}

// String names the reader for logs.
func (r *Reader) String() string { return fmt.Sprintf("FFmpeg reader (%s)", r.Codec()) }
