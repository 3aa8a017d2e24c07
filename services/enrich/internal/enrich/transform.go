package enrich

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// Transformer turns a raw frame record into an enriched one.
type Transformer struct {
	Site string
	Node string
	Now  func() time.Time
}

// ErrBadRecord marks input that cannot be enriched (not a frame).
var ErrBadRecord = errors.New("bad frame record")

// Enrich decodes value as a cefiot.v1.Frame and returns the encoded
// EnrichedFrame and the frame.
func (t Transformer) Enrich(value []byte) ([]byte, *cefiotv1.EnrichedFrame, error) {
	var f cefiotv1.Frame
	if err := proto.Unmarshal(value, &f); err != nil {
		return nil, nil, fmt.Errorf("%w: decode: %v", ErrBadRecord, err)
	}
	switch {
	case f.GetFrameId() == "":
		return nil, nil, fmt.Errorf("%w: frame_id is empty", ErrBadRecord)
	case f.GetCameraId() == "":
		return nil, nil, fmt.Errorf("%w: camera_id is empty", ErrBadRecord)
	case len(f.GetJpeg()) == 0:
		return nil, nil, fmt.Errorf("%w: frame %s has no JPEG", ErrBadRecord, f.GetFrameId())
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
	b, err := proto.Marshal(out)
	if err != nil {
		return nil, nil, fmt.Errorf("encode enriched frame %s: %w", f.GetFrameId(), err)
	}
	return b, out, nil
}
