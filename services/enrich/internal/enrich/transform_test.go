package enrich

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

func TestEnrichAddsContext(t *testing.T) {
	in := &cefiotv1.Frame{
		FrameId: "cam-1_7_00000003", CameraId: "cam-1", SessionEpoch: 7, Sequence: 3,
		CaptureTime: timestamppb.New(time.Unix(100, 0)), MotionScore: 0.25, Jpeg: []byte("abc"),
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
	// sha256("abc")
	if got.ContentSha256 != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
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
