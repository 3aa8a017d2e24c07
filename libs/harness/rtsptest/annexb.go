package rtsptest

import (
	"bytes"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/cefiot/cefiot/libs/harness/videogen"
)

// Codecs the server can send.
const (
	CodecMJPEG = "mjpeg" // RTP/JPEG (RFC 2435), encoded here
	CodecH264  = "h264"  // RFC 6184, encoded by ffmpeg with libx264
	CodecH265  = "h265"  // RFC 7798, encoded by ffmpeg with libx265
)

// h26x is a video encoded by ffmpeg: its parameter sets and its access
// units (each a list of NAL units without start codes), in order.
type h26x struct {
	vps, sps, pps []byte
	units         [][][]byte
}

// encodeH26x renders spec into a video file and has Debian's ffmpeg encode
// it (scaled to scale, unless zero)
// it as a raw H.264 or H.265 stream with an access unit delimiter before
// every picture and a keyframe every second.
func encodeH26x(spec videogen.Spec, codec string, scale image.Point) (h26x, error) {
	dir, err := os.MkdirTemp("", "rtsptest-")
	if err != nil {
		return h26x{}, fmt.Errorf("rtsptest: %w", err)
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "scene.avi")
	if err := videogen.Write(src, spec); err != nil {
		return h26x{}, err
	}
	gop := fmt.Sprint(max(1, int(spec.FPS)))
	args := []string{"-hide_banner", "-loglevel", "error", "-i", src, "-an", "-pix_fmt", "yuv420p"}
	if scale != (image.Point{}) {
		// A sub-stream: the same pictures, scaled as a camera scales its
		// sensor's.
		args = append(args, "-vf", fmt.Sprintf("scale=%d:%d:flags=area", scale.X, scale.Y))
	}
	switch codec {
	case CodecH264:
		args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", gop, "-x264-params", "aud=1", "-f", "h264")
	case CodecH265:
		args = append(args, "-c:v", "libx265", "-preset", "ultrafast", "-tune", "zerolatency", "-x265-params", "aud=1:repeat-headers=1:log-level=error:keyint="+gop, "-f", "hevc")
	default:
		return h26x{}, fmt.Errorf("rtsptest: codec %q is not h264 or h265", codec)
	}
	out := filepath.Join(dir, "scene."+codec)
	cmd := exec.Command("ffmpeg", append(args, out)...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return h26x{}, fmt.Errorf("rtsptest: ffmpeg encoding %s: %w: %s", codec, err, bytes.TrimSpace(msg))
	}
	stream, err := os.ReadFile(out)
	if err != nil {
		return h26x{}, fmt.Errorf("rtsptest: %w", err)
	}
	v := h26x{}
	var unit [][]byte
	for _, nalu := range splitAnnexB(stream) {
		kind := nalType(codec, nalu)
		switch {
		case kind == naluAUD:
			if len(unit) > 0 {
				v.units = append(v.units, unit)
			}
			unit = nil
			continue
		case kind == naluVPS && v.vps == nil:
			v.vps = nalu
		case kind == naluSPS && v.sps == nil:
			v.sps = nalu
		case kind == naluPPS && v.pps == nil:
			v.pps = nalu
		}
		unit = append(unit, nalu)
	}
	if len(unit) > 0 {
		v.units = append(v.units, unit)
	}
	if v.sps == nil || v.pps == nil || (codec == CodecH265 && v.vps == nil) || len(v.units) == 0 {
		return h26x{}, fmt.Errorf("rtsptest: ffmpeg's %s stream has no parameter sets or pictures", codec)
	}
	return v, nil
}

// Kinds of NAL unit the server looks for.
const (
	naluOther = iota
	naluAUD
	naluVPS
	naluSPS
	naluPPS
)

func nalType(codec string, nalu []byte) int {
	if len(nalu) == 0 {
		return naluOther
	}
	if codec == CodecH264 {
		switch nalu[0] & 0x1f {
		case 9:
			return naluAUD
		case 7:
			return naluSPS
		case 8:
			return naluPPS
		}
		return naluOther
	}
	switch (nalu[0] >> 1) & 0x3f {
	case 35:
		return naluAUD
	case 32:
		return naluVPS
	case 33:
		return naluSPS
	case 34:
		return naluPPS
	}
	return naluOther
}

// splitAnnexB splits an Annex B byte stream at its start codes (00 00 01,
// with or without a leading zero byte) into NAL units.
func splitAnnexB(b []byte) [][]byte {
	var out [][]byte
	start := -1
	for i := 0; i+2 < len(b); {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				out = append(out, trimZeros(b[start:i]))
			}
			i += 3
			start = i
			continue
		}
		i++
	}
	if start >= 0 && start < len(b) {
		out = append(out, b[start:])
	}
	return out
}

// trimZeros drops the zero bytes that precede the next start code (the
// leading byte of a four-byte start code, or trailing_zero_8bits).
func trimZeros(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}
