package enrich

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"image/jpeg"
	"runtime"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

func TestEnrichAddsContext(t *testing.T) {
	in := &cefiotv1.Frame{
		FrameId: "cam-1_7_00000003", CameraId: "cam-1", SessionEpoch: 7, Sequence: 3,
		CaptureTime: timestamppb.New(time.Unix(100, 0)), MotionScore: 0.25, Jpeg: sampleJPEG(t),
	}
	b, _ := proto.Marshal(in)
	now := time.Unix(200, 0)
	out, ef, err := Transformer{Site: "edge", Node: "n1", Now: func() time.Time { return now }}.Enrich(b)
	if err != nil {
		t.Fatal(err)
	}
	var got cefiotv1.EnrichedFrame
	if err := proto.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&got, ef) {
		t.Fatal("returned message differs from encoded one")
	}
	if sum := sha256.Sum256(in.GetJpeg()); got.ContentSha256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("hash %s", got.ContentSha256)
	}
	if got.Site != "edge" || got.EnrichNode != "n1" || !got.EnrichTime.AsTime().Equal(now) || !proto.Equal(got.Frame, in) {
		t.Fatalf("got %v", &got)
	}
}

func TestEnrichRejectsBadRecords(t *testing.T) {
	noJpeg, _ := proto.Marshal(&cefiotv1.Frame{FrameId: "x", CameraId: "c"})
	noID, _ := proto.Marshal(&cefiotv1.Frame{CameraId: "c", Jpeg: []byte{1}})
	for name, v := range map[string][]byte{
		"garbage": {0xff, 0xff, 0xff, 0x01},
		"no jpeg": noJpeg,
		"no id":   noID,
	} {
		if _, _, err := (Transformer{}).Enrich(v); !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: want ErrBadRecord, got %v", name, err)
		}
	}
}

// TestHostileJPEGHeaderIsDeadLettered: a frame of a few kilobytes whose
// JPEG header claims 65535x65535 pixels (4.3 billion: 12 GiB decoded) is
// refused as too large from its header alone, with thumbnails made or not,
// without allocating anything near the image it claims.
func TestHostileJPEGHeaderIsDeadLettered(t *testing.T) {
	hostile := claimSize(t, sampleJPEG(t), 65535, 65535)
	if cfg, err := jpeg.DecodeConfig(bytes.NewReader(hostile)); err != nil || cfg.Width != 65535 || cfg.Height != 65535 {
		t.Fatalf("the hostile JPEG's header says %dx%d (%v), want 65535x65535", cfg.Width, cfg.Height, err)
	}
	rec, _ := proto.Marshal(&cefiotv1.Frame{FrameId: "cam-1_1_00000001", CameraId: "cam-1", Jpeg: hostile})
	for _, width := range []int{0, 160} {
		tr := Transformer{MaxPixels: 8192 * 8192, ThumbnailWidth: width}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _, err := tr.Enrich(rec)
		runtime.ReadMemStats(&after)
		var bad *BadRecordError
		if !errors.As(err, &bad) || bad.Code != "too-large" {
			t.Fatalf("thumbnail width %d: %v, want a too-large bad record", width, err)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
			t.Errorf("thumbnail width %d: refusing the hostile frame allocated %d MiB", width, grew>>20)
		}
	}
}

// claimSize rewrites the frame header (SOF0..SOF2) of a JPEG to claim
// width x height, leaving the data as it is.
func claimSize(t *testing.T, b []byte, width, height int) []byte {
	t.Helper()
	out := bytes.Clone(b)
	for i := 2; i+9 < len(out); {
		if out[i] != 0xff {
			t.Fatalf("no JPEG marker at %d", i)
		}
		marker, n := out[i+1], int(out[i+2])<<8|int(out[i+3])
		if marker >= 0xc0 && marker <= 0xc2 {
			out[i+5], out[i+6] = byte(height>>8), byte(height)
			out[i+7], out[i+8] = byte(width>>8), byte(width)
			return out
		}
		i += 2 + n
	}
	t.Fatal("no frame header in the JPEG")
	return nil
}
