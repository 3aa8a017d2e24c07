package gaps

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cefiot/cefiot/services/bridge/internal/checkpoint"

	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

var p0 = checkpoint.Partition{Topic: "t", Partition: 0}

func TestMarkersAreNotGaps(t *testing.T) {
	tr := NewTracker()
	tr.Start(p0, 0)
	for _, o := range []int64{0, 1, 3, 4, 6} { // 2 and 5: commit markers
		tr.Observe(p0, o, 0)
	}
	if got := tr.Resolve(map[checkpoint.Partition]int64{p0: 0}); len(got) != 0 {
		t.Fatalf("gaps from markers: %v", got)
	}
	if tr.Next(p0) != 7 {
		t.Fatalf("next = %d", tr.Next(p0))
	}
}

func TestRetentionGapIsExact(t *testing.T) {
	tr := NewTracker()
	tr.Start(p0, 100)
	// Retention removed 100..149; the consumer restarted at the log start.
	tr.Observe(p0, 150, 0)
	tr.Observe(p0, 151, 0)
	gs := tr.Resolve(map[checkpoint.Partition]int64{p0: 150})
	if len(gs) != 1 || gs[0].Start != 100 || gs[0].End != 150 || gs[0].Offsets() != 50 {
		t.Fatalf("gaps = %v", gs)
	}
	// The jump is resolved once.
	if gs := tr.Resolve(map[checkpoint.Partition]int64{p0: 150}); len(gs) != 0 {
		t.Fatalf("resolved twice: %v", gs)
	}
}

func TestGapEndsAtLogStartWhenMarkersFollow(t *testing.T) {
	tr := NewTracker()
	tr.Start(p0, 10)
	tr.Observe(p0, 22, 0) // 10..19 deleted, 20..21 markers still in the log
	gs := tr.Resolve(map[checkpoint.Partition]int64{p0: 20})
	if len(gs) != 1 || gs[0].Start != 10 || gs[0].End != 20 {
		t.Fatalf("gaps = %v", gs)
	}
}

func TestUnresolvedCandidateIsKept(t *testing.T) {
	tr := NewTracker()
	tr.Start(p0, 0)
	tr.Observe(p0, 5, 0)
	if gs := tr.Resolve(nil); len(gs) != 0 {
		t.Fatal(gs)
	}
	if gs := tr.Resolve(map[checkpoint.Partition]int64{p0: 5}); len(gs) != 1 || gs[0].Offsets() != 5 {
		t.Fatalf("gaps = %v", gs)
	}
}

func TestIdleGapAndBackwards(t *testing.T) {
	tr := NewTracker()
	tr.Start(p0, 3)
	if _, ok := tr.Idle(p0, 5, 6); ok {
		t.Fatal("idle gap while records remain")
	}
	g, ok := tr.Idle(p0, 8, 8)
	if !ok || g.Start != 3 || g.End != 8 || tr.Next(p0) != 8 {
		t.Fatalf("idle gap = %v %v next %d", g, ok, tr.Next(p0))
	}
	reset, back := tr.Observe(p0, 0, 2)
	if !back || !reset.Reset || reset.Start != 8 || reset.End != 0 || reset.Epoch != 3 || reset.Offsets() != 0 || tr.Next(p0) != 1 {
		t.Fatalf("offsets back from 8 to 0 in epoch 2: %+v (%v), next %d; want a reset to epoch 3", reset, back, tr.Next(p0))
	}
}

// TestResetDropsTheOldEpochsJumps: a jump seen before the offsets went back
// belongs to the old epoch and is not turned into a gap against the new
// epoch's log start.
func TestResetDropsTheOldEpochsJumps(t *testing.T) {
	tr := NewTracker()
	tr.Start(p0, 10)
	tr.Observe(p0, 15, 0)
	if _, back := tr.Observe(p0, 0, 0); !back {
		t.Fatal("no reset")
	}
	if gs := tr.Resolve(map[checkpoint.Partition]int64{p0: 0}); len(gs) != 0 {
		t.Fatalf("gaps of the old epoch: %v", gs)
	}
}

func TestResetMarkerRecord(t *testing.T) {
	topic := "edge-s._cefiot.gaps"
	msg := Message(&topic, "s", "edge-s.t", "tx", Gap{Partition: p0, Start: 120, End: 0, Reset: true, Epoch: 1}, time.Unix(1700000000, 0))
	var m cefiotv1.GapMarker
	if err := proto.Unmarshal(msg.Value, &m); err != nil {
		t.Fatal(err)
	}
	if !m.GetOffsetsReset() || m.GetEpoch() != 1 || m.GetStartOffset() != 120 || m.GetEndOffset() != 0 {
		t.Fatalf("reset marker %v", &m)
	}
}

func TestMarkerRecord(t *testing.T) {
	topic := "edge-s._cefiot.gaps"
	now := time.Unix(1700000000, 0)
	msg := Message(&topic, "s", "edge-s.t", "tx", Gap{Partition: p0, Start: 1, End: 4, LogStart: 4}, now)
	var m cefiotv1.GapMarker
	if err := proto.Unmarshal(msg.Value, &m); err != nil {
		t.Fatal(err)
	}
	if m.GetStartOffset() != 1 || m.GetEndOffset() != 4 || m.GetSourceTopic() != "t" || m.GetCloudTopic() != "edge-s.t" || string(msg.Key) != "t/0" {
		t.Fatalf("marker = %v key %s", &m, msg.Key)
	}
}
