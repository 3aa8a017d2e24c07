// Package gaps finds the offset ranges of edge partitions that edge
// retention removed before the bridge forwarded them, and encodes them as
// cefiot.v1.GapMarker records.
//
// Offsets of a partition are not contiguous in what a read_committed
// consumer receives: transaction markers and aborted records take offsets
// too. A jump from the expected offset e to a received offset o is therefore
// a gap only for the part of [e, o) that lies below the partition's log
// start offset: those offsets are gone from the log, which is what retention
// does (the consumer was reset to the log start). The rest of the jump is
// markers or aborted records. [Tracker] records jumps while a transaction is
// filled, and [Tracker.Resolve] turns them into gaps with the log start
// offsets read just before the commit.
//
// A transaction marker that sat exactly at the edge of a gap and was
// deleted in the same moment is counted as missing too; a gap is never
// under-reported.
package gaps

import (
	"fmt"
	"slices"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/services/bridge/internal/checkpoint"

	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// Gap is a range [Start, End) of source offsets that never reached the
// cloud.
type Gap struct {
	Partition  checkpoint.Partition
	Start, End int64
	// LogStart is the partition's log start offset when the gap was found.
	LogStart int64
	// Reset marks offsets that went back from Start to End (End < Start):
	// a new epoch of the partition begins at End.
	Reset bool
	// Epoch is the partition's offset epoch after a reset.
	Epoch int64
}

// Offsets is the number of offsets in the gap (0 for a reset, whose loss
// cannot be counted).
func (g Gap) Offsets() int64 {
	if g.Reset {
		return 0
	}
	return g.End - g.Start
}

func (g Gap) String() string {
	if g.Reset {
		return fmt.Sprintf("%s offsets went back from %d to %d (epoch %d)", g.Partition, g.Start, g.End, g.Epoch)
	}
	return fmt.Sprintf("%s offsets [%d, %d) (%d)", g.Partition, g.Start, g.End, g.Offsets())
}

type span struct{ from, to int64 }

// Tracker follows the offsets received per partition.
type Tracker struct {
	next  map[checkpoint.Partition]int64
	jumps map[checkpoint.Partition][]span
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker {
	return &Tracker{next: map[checkpoint.Partition]int64{}, jumps: map[checkpoint.Partition][]span{}}
}

// Start sets the next expected offset of p (its committed checkpoint, or 0).
func (t *Tracker) Start(p checkpoint.Partition, next int64) { t.next[p] = next }

// Forget drops p.
func (t *Tracker) Forget(p checkpoint.Partition) {
	delete(t.next, p)
	delete(t.jumps, p)
}

// Next is the next expected offset of p.
func (t *Tracker) Next(p checkpoint.Partition) int64 { return t.next[p] }

// Observe records that the record at offset arrived on p. When the offset
// went backwards (the topic was recreated or truncated) it returns the
// reset, with the partition's next epoch (after epoch); the record is still
// forwarded, as the first of the new epoch, and the reset is recorded.
func (t *Tracker) Observe(p checkpoint.Partition, offset, epoch int64) (reset Gap, backwards bool) {
	e := t.next[p]
	switch {
	case offset > e:
		t.jumps[p] = append(t.jumps[p], span{e, offset})
	case offset < e:
		// Jumps recorded before the reset belong to the old epoch, whose
		// log start no longer tells anything: they are dropped with it.
		delete(t.jumps, p)
		reset, backwards = Gap{Partition: p, Start: e, End: offset, Reset: true, Epoch: epoch + 1}, true
	}
	t.next[p] = offset + 1
	return reset, backwards
}

// Candidates returns the partitions with jumps not yet resolved.
func (t *Tracker) Candidates() []checkpoint.Partition {
	out := make([]checkpoint.Partition, 0, len(t.jumps))
	for p := range t.jumps {
		out = append(out, p)
	}
	slices.SortFunc(out, comparePartitions)
	return out
}

// Resolve turns the recorded jumps into gaps using the log start offsets of
// the candidate partitions, and clears the jumps. A candidate missing from
// logStart keeps its jumps for the next call.
func (t *Tracker) Resolve(logStart map[checkpoint.Partition]int64) []Gap {
	var out []Gap
	for _, p := range t.Candidates() {
		ls, ok := logStart[p]
		if !ok {
			continue
		}
		for _, j := range t.jumps[p] {
			if j.from >= ls {
				continue // markers or aborted records: still in the log
			}
			g := Gap{Partition: p, Start: j.from, End: min(ls, j.to), LogStart: ls}
			if n := len(out); n > 0 && out[n-1].Partition == p && out[n-1].End == g.Start {
				out[n-1].End = g.End
				continue
			}
			out = append(out, g)
		}
		delete(t.jumps, p)
	}
	return out
}

// Idle records a gap on p when nothing is left to read (the log is empty
// from logStart to logEnd) and the expected offset lies below logStart:
// retention removed everything the bridge had not forwarded. It moves the
// expected offset to logStart.
func (t *Tracker) Idle(p checkpoint.Partition, logStart, logEnd int64) (Gap, bool) {
	e, ok := t.next[p]
	if !ok || len(t.jumps[p]) > 0 || logStart != logEnd || e >= logStart {
		return Gap{}, false
	}
	t.next[p] = logStart
	return Gap{Partition: p, Start: e, End: logStart, LogStart: logStart}, true
}

func comparePartitions(a, b checkpoint.Partition) int {
	if a.Topic != b.Topic {
		if a.Topic < b.Topic {
			return -1
		}
		return 1
	}
	return int(a.Partition - b.Partition)
}

// Message encodes g as a GapMarker record for the gap topic.
func Message(gapTopic *string, site, cloudTopic, bridge string, g Gap, now time.Time) *kafka.Message {
	m := &cefiotv1.GapMarker{
		Site: site, SourceTopic: g.Partition.Topic, SourcePartition: g.Partition.Partition, CloudTopic: cloudTopic,
		StartOffset: g.Start, EndOffset: g.End, Bridge: bridge, DetectedTime: timestamppb.New(now), LogStartOffset: g.LogStart,
		OffsetsReset: g.Reset, Epoch: g.Epoch,
	}
	v, _ := proto.Marshal(m) // a valid message: cannot fail
	return &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: gapTopic, Partition: 0},
		Key:            []byte(g.Partition.String()),
		Value:          v,
		Headers:        []kafka.Header{{Key: pipeline.HeaderRecordType, Value: []byte("gap-marker")}},
		Timestamp:      now,
	}
}
