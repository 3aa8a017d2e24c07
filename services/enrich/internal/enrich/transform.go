package enrich

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image/jpeg"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cefiot/cefiot/libs/pipeline"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// Transformer turns a raw frame record into an enriched one.
type Transformer struct {
	Site string
	Node string
	Now  func() time.Time
	// MaxRecordBytes refuses larger records (0: no limit).
	MaxRecordBytes int
	// MaxPixels refuses frames with more pixels (0: no limit).
	MaxPixels int
	// ThumbnailWidth is the width of the thumbnail (0: no thumbnail, and
	// the JPEG is not decoded).
	ThumbnailWidth   int
	ThumbnailQuality int
	// Labeler, when set, labels the motion frames with the objects in
	// them.
	Labeler *Labeler
}

// ErrBadRecord marks input that cannot be enriched (it goes to the
// dead-letter topic); errors.As gives the *BadRecordError.
var ErrBadRecord = errors.New("bad frame record")

// BadRecordError says why a record was refused.
type BadRecordError struct {
	Code   string // decode, invalid, too-large, bad-jpeg
	Reason string
}

func (e *BadRecordError) Error() string {
	return fmt.Sprintf("%s: %s: %s", ErrBadRecord, e.Code, e.Reason)
}
func (e *BadRecordError) Is(target error) bool { return target == ErrBadRecord }

func bad(code, format string, args ...any) error {
	return &BadRecordError{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// checkHeader reads the size the full JPEG declares (its header only) and
// refuses a frame whose JPEG is not one, or is larger than it says or than
// MaxPixels allows.
func (t Transformer) checkHeader(f *cefiotv1.Frame) error {
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(f.GetJpeg()))
	if err != nil {
		return bad("bad-jpeg", "frame %s: not a JPEG (%d bytes): %v", f.GetFrameId(), len(f.GetJpeg()), err)
	}
	if t.MaxPixels > 0 && cfg.Width*cfg.Height > t.MaxPixels {
		return bad("too-large", "frame %s decodes to %dx%d, over the limit of %d pixels", f.GetFrameId(), cfg.Width, cfg.Height, t.MaxPixels)
	}
	if (f.GetWidth() != 0 || f.GetHeight() != 0) && (cfg.Width != int(f.GetWidth()) || cfg.Height != int(f.GetHeight())) {
		return bad("invalid", "frame %s says %dx%d, its JPEG is %dx%d", f.GetFrameId(), f.GetWidth(), f.GetHeight(), cfg.Width, cfg.Height)
	}
	return nil
}

// usable reports whether a thumbnail carried by a frame is a JPEG of the
// width enrich would make and the size it claims.
func usable(thumb []byte, w, h, wantWidth int) bool {
	if len(thumb) == 0 || w != wantWidth || h < 1 {
		return false
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(thumb))
	return err == nil && cfg.Width == w && cfg.Height == h
}

// Enrich decodes value as a cefiot.v1.Frame and returns the encoded
// EnrichedFrame and the frame.
func (t Transformer) Enrich(value []byte) ([]byte, *cefiotv1.EnrichedFrame, error) {
	if t.MaxRecordBytes > 0 && len(value) > t.MaxRecordBytes {
		return nil, nil, bad("too-large", "record of %d bytes is over the limit of %d", len(value), t.MaxRecordBytes)
	}
	var f cefiotv1.Frame
	if err := proto.Unmarshal(value, &f); err != nil {
		return nil, nil, bad("decode", "not a cefiot.v1.Frame: %v", err)
	}
	switch {
	case f.GetFrameId() == "":
		return nil, nil, bad("invalid", "frame_id is empty")
	case f.GetCameraId() == "":
		return nil, nil, bad("invalid", "frame %s: camera_id is empty", f.GetFrameId())
	case len(f.GetJpeg()) == 0:
		return nil, nil, bad("invalid", "frame %s has no JPEG", f.GetFrameId())
	case t.MaxPixels > 0 && int64(f.GetWidth())*int64(f.GetHeight()) > int64(t.MaxPixels):
		return nil, nil, bad("too-large", "frame %s is %dx%d, over the limit of %d pixels", f.GetFrameId(), f.GetWidth(), f.GetHeight(), t.MaxPixels)
	}
	sum := sha256.Sum256(f.GetJpeg())
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	out := &cefiotv1.EnrichedFrame{
		Frame:         &f,
		Site:          t.Site,
		EnrichNode:    t.Node,
		EnrichTime:    timestamppb.New(now()),
		ContentSha256: hex.EncodeToString(sum[:]),
	}
	// The frame's own thumbnail (capture makes it from the image it has
	// decoded anyway) moves to the enriched record; enrich decodes the
	// full JPEG only for a frame that came without one of the right width.
	carried, carriedW, carriedH := f.GetThumbnailJpeg(), int(f.GetThumbnailWidth()), int(f.GetThumbnailHeight())
	f.ThumbnailJpeg, f.ThumbnailWidth, f.ThumbnailHeight = nil, 0, 0
	// Every frame's JPEG header is read (not the image): one that is not a
	// JPEG, or claims more pixels than allowed (a 65535x65535 header on a
	// few bytes), is dead-lettered before anyone decodes it, here or
	// downstream.
	if err := t.checkHeader(&f); err != nil {
		return nil, nil, err
	}
	if t.ThumbnailWidth > 0 {
		if f.GetWidth() > 0 && usable(carried, carriedW, carriedH, min(t.ThumbnailWidth, int(f.GetWidth()))) {
			out.ThumbnailJpeg, out.ThumbnailWidth, out.ThumbnailHeight = carried, int32(carriedW), int32(carriedH)
		} else {
			q := t.ThumbnailQuality
			if q <= 0 {
				q = pipeline.DefaultThumbnailQuality
			}
			th, err := MakeThumbnail(f.GetJpeg(), int(f.GetWidth()), t.ThumbnailWidth, q)
			if err != nil {
				return nil, nil, bad("bad-jpeg", "frame %s: %v", f.GetFrameId(), err)
			}
			if t.MaxPixels > 0 && th.SourceWidth*th.SourceHeight > t.MaxPixels {
				return nil, nil, bad("too-large", "frame %s decodes to %dx%d, over the limit of %d pixels", f.GetFrameId(), th.SourceWidth, th.SourceHeight, t.MaxPixels)
			}
			out.ThumbnailJpeg, out.ThumbnailWidth, out.ThumbnailHeight = th.JPEG, int32(th.Width), int32(th.Height)
		}
	}
	if t.Labeler != nil {
		labels, looked, err := t.Labeler.Label(&f)
		if err != nil {
			return nil, nil, bad("bad-jpeg", "%v", err)
		}
		if looked {
			out.Labels, out.Detector = labels, t.Labeler.Detector.Name()
		}
	}
	b, err := proto.Marshal(out)
	if err != nil {
		return nil, nil, fmt.Errorf("encode enriched frame %s: %w", f.GetFrameId(), err)
	}
	return b, out, nil
}
