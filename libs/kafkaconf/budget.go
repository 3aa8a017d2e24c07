package kafkaconf

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/cefiot/cefiot/libs/pipeline"
)

// A site's disk budget is the room each of its brokers has for its log
// dirs. [PlanBudget] turns it into retention.bytes and segment.bytes so that
// the brokers delete their oldest records before the disk is full: an outage
// longer than the budget holds ends in a gap the bridge reports exactly
// (records deleted by retention before it forwarded them), never in a broker
// that stops on ENOSPC.
//
// What a broker keeps on disk, and how the plan accounts for it:
//
//   - each data partition it holds: retention.bytes, plus the segment
//     retention cannot delete (Kafka deletes whole closed segments only, so
//     a log is up to one segment over retention.bytes after a check), the
//     active segment's offset and time indexes (log.index.size.max.bytes,
//     set here to what one segment needs), the closed segments' indexes
//     (20 bytes per 4096 log bytes) and a partition's small files;
//   - the internal compacted topics __consumer_offsets and
//     __transaction_state: two 1 MiB segments a partition and the log
//     cleaner's copy of one;
//   - the KRaft metadata log: 8 MiB segments (Kafka's least) with
//     metadata.max.retention.bytes of one segment, and a snapshot;
//   - headroom, [BudgetHeadroomPercent] of the budget plus what the site's
//     producers write before retention catches up: a broker checks
//     retention first 30 s after it starts (then every 2 s, set here) and
//     removes a deleted segment 1 s later (set here; Kafka's default is a
//     minute).
const (
	// BudgetHeadroomPercent of a budget is never planned for records: the
	// filesystem's own metadata and what the plan does not see.
	BudgetHeadroomPercent = 10

	// retentionCheckMs is how often a broker enforces retention.bytes
	// (log.retention.check.interval.ms; Kafka's default is 5 minutes).
	retentionCheckMs = 2_000
	// firstCheckMs is when a broker first enforces it after it starts
	// (Kafka's log.initial.task.delay.ms, internal, left as it is).
	firstCheckMs = 30_000
	// catchUpMs is the longest producers write before retention has
	// removed what it deletes: up to the first check, and the delete delay.
	catchUpMs = max(firstCheckMs, retentionCheckMs) + deleteDelayMs
	// deleteDelayMs is how long a deleted segment stays on disk
	// (log.segment.delete.delay.ms; Kafka's default is a minute).
	deleteDelayMs = 1_000

	// minSegmentBytes is Kafka's least log.segment.bytes, maxSegmentBytes
	// the largest the plan uses.
	minSegmentBytes = 1 << 20
	maxSegmentBytes = 1 << 30
	// segmentsPerShare: a data partition's segment is about this fraction
	// of its share, so retention deletes in small steps.
	segmentsPerShare = 8

	// indexInterval is Kafka's index.interval.bytes: one offset index entry
	// (8 bytes) and one time index entry (12 bytes) per 4096 log bytes.
	indexInterval   = 4096
	indexEntryBytes = 8 + 12
	// partitionFileBytes is a partition's small files: partition.metadata,
	// leader-epoch-checkpoint, producer-state snapshots.
	partitionFileBytes = 64 << 10

	// internalSegmentBytes is the segment of __consumer_offsets and
	// __transaction_state (Kafka's default is 100 MiB each).
	internalSegmentBytes = 1 << 20
	// metadataSegmentBytes is Kafka's least metadata.log.segment.bytes;
	// metadata.max.retention.bytes is as much, a snapshot is counted as
	// metadataSnapshotBytes.
	metadataSegmentBytes  = 8 << 20
	metadataSnapshotBytes = 2 << 20
)

// BudgetTopic is a topic of the site and its partition count.
type BudgetTopic struct {
	Name       string
	Partitions int
}

// SiteTopics are the topics of a site's Kafka cluster (libs/pipeline) when
// capture and enrich create theirs with partitions partitions.
func SiteTopics(partitions int) []BudgetTopic {
	return []BudgetTopic{
		{pipeline.TopicFramesRaw, partitions},
		{pipeline.TopicCameraStatus, partitions},
		{pipeline.TopicFramesEnriched, partitions},
		{pipeline.TopicFramesDeadLetter, 1},
		{pipeline.TopicAudit, 1},
	}
}

// Budget is what a disk budget is planned from.
type Budget struct {
	// Bytes is the room of each broker's log dirs.
	Bytes int64
	// Brokers is the number of brokers (0: 1); the replication factor is
	// [Replication]'s.
	Brokers int
	// Topics are the site's topics (see [SiteTopics]). A topic not here
	// takes room the plan did not give it.
	Topics []BudgetTopic
	// InternalPartitions is offsets.topic.num.partitions plus
	// transaction.state.log.num.partitions.
	InternalPartitions int
	// MaxRecordBytes is the largest record batch, message.max.bytes (0:
	// pipeline.MaxRecordBytes). A segment must hold one.
	MaxRecordBytes int64
	// IngressBytesPerSec is the most the site's producers write to a
	// broker in a second; the headroom holds what they write before
	// retention catches up (31 s after a broker starts).
	IngressBytesPerSec int64
}

// BudgetPlan is a disk budget's retention, and what it reserved for what.
type BudgetPlan struct {
	Budget Budget
	// Headroom, Metadata and Internal are the bytes kept for headroom, the
	// KRaft metadata log and the internal topics.
	Headroom, Metadata, Internal int64
	// Partitions is the number of data partition replicas a broker holds,
	// Share the room of each.
	Partitions int
	Share      int64
	// RetentionBytes, SegmentBytes and IndexBytes are every data topic's
	// retention.bytes, segment.bytes and segment.index.bytes.
	RetentionBytes, SegmentBytes, IndexBytes int64
}

// ErrBudgetTooSmall is returned (wrapped) by [PlanBudget] for a budget that
// cannot hold one closed and one active segment of every partition.
var ErrBudgetTooSmall = errors.New("disk budget too small")

// PlanBudget returns the retention that keeps a broker's log dirs within
// b.Bytes, or an error saying why it cannot.
func PlanBudget(b Budget) (BudgetPlan, error) {
	if b.Brokers == 0 {
		b.Brokers = 1
	}
	if b.MaxRecordBytes == 0 {
		b.MaxRecordBytes = pipeline.MaxRecordBytes
	}
	switch {
	case b.Bytes <= 0:
		return BudgetPlan{}, fmt.Errorf("disk budget %d: must be positive", b.Bytes)
	case b.Brokers < 0 || b.InternalPartitions < 0 || b.MaxRecordBytes < 0 || b.IngressBytesPerSec < 0:
		return BudgetPlan{}, fmt.Errorf("disk budget: negative brokers, partitions, record size or ingress in %+v", b)
	case b.MaxRecordBytes > maxSegmentBytes:
		return BudgetPlan{}, fmt.Errorf("disk budget: records of %d bytes exceed the largest segment, %d", b.MaxRecordBytes, maxSegmentBytes)
	case len(b.Topics) == 0:
		return BudgetPlan{}, errors.New("disk budget: no topics to plan for")
	}
	rf, _ := Replication(b.Brokers)
	total := 0
	for _, t := range b.Topics {
		if t.Partitions < 1 {
			return BudgetPlan{}, fmt.Errorf("disk budget: topic %q has %d partitions", t.Name, t.Partitions)
		}
		total += t.Partitions
	}
	p := BudgetPlan{Budget: b, Partitions: perBroker(total, rf, b.Brokers)}
	p.Headroom = b.Bytes*BudgetHeadroomPercent/100 + b.IngressBytesPerSec*catchUpMs/1000
	p.Metadata = withIndexes(2*metadataSegmentBytes) + metadataSnapshotBytes
	internal := int64(perBroker(b.InternalPartitions, rf, b.Brokers))
	p.Internal = internal*(withIndexes(2*internalSegmentBytes)+2*indexBytes(internalSegmentBytes)+partitionFileBytes) + internalSegmentBytes

	segMin := max(minSegmentBytes, roundUp(b.MaxRecordBytes, minSegmentBytes))
	free := b.Bytes - p.Headroom - p.Metadata - p.Internal
	if leastShare := partitionBytes(segMin, segMin); free < int64(p.Partitions)*leastShare {
		least := leastBudget(b.IngressBytesPerSec, int64(p.Partitions)*leastShare+p.Metadata+p.Internal)
		return BudgetPlan{}, fmt.Errorf("%w: %d bytes a broker cannot hold %d partition replicas of records up to %d bytes (one closed and one active segment of %d bytes each), %d internal partitions, the metadata log and the headroom; it needs at least %d bytes",
			ErrBudgetTooSmall, b.Bytes, p.Partitions, b.MaxRecordBytes, segMin, internal, least)
	}
	p.Share = free / int64(p.Partitions)
	p.SegmentBytes = min(maxSegmentBytes, max(segMin, p.Share/segmentsPerShare/minSegmentBytes*minSegmentBytes))
	p.IndexBytes = indexBytes(p.SegmentBytes)
	// share = (retention + segment) with its indexes + the active indexes
	// + a partition's files.
	p.RetentionBytes = (p.Share-2*p.IndexBytes-partitionFileBytes)*indexInterval/(indexInterval+indexEntryBytes) - p.SegmentBytes
	return p, nil
}

// leastBudget is the least budget whose room, headroom aside, is need.
func leastBudget(ingress, need int64) int64 {
	need += ingress * catchUpMs / 1000
	b := need * 100 / (100 - BudgetHeadroomPercent)
	for b-b*BudgetHeadroomPercent/100 < need {
		b++
	}
	for b > 0 && (b-1)-(b-1)*BudgetHeadroomPercent/100 >= need {
		b--
	}
	return b
}

// perBroker is the number of replicas of partitions one of brokers holds
// at most.
func perBroker(partitions, rf, brokers int) int { return (partitions*rf + brokers - 1) / brokers }

// partitionBytes is the most a data partition takes on disk with retention
// and segment: a log of up to retention + segment bytes, its indexes, the
// active segment's full indexes and its small files.
func partitionBytes(retention, segment int64) int64 {
	return withIndexes(retention+segment) + 2*indexBytes(segment) + partitionFileBytes
}

// withIndexes is log bytes with the index entries written for them.
func withIndexes(log int64) int64 { return log + log/indexInterval*indexEntryBytes }

// indexBytes is the segment.index.bytes that holds every time index entry
// (the larger) of a segment, plus a page.
func indexBytes(segment int64) int64 { return segment/indexInterval*12 + 4096 }

func roundUp(n, m int64) int64 { return (n + m - 1) / m * m }

// Properties are the broker settings of the plan: the defaults of every
// topic created without its own (the pipeline's services create theirs so),
// the internal topics' and the metadata log's segments, and short retention
// checks.
func (p BudgetPlan) Properties() []Property {
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	return []Property{
		{"log.retention.bytes", i(p.RetentionBytes)},
		{"log.segment.bytes", i(p.SegmentBytes)},
		{"log.index.size.max.bytes", i(p.IndexBytes)},
		{"log.retention.check.interval.ms", i(retentionCheckMs)},
		{"log.segment.delete.delay.ms", i(deleteDelayMs)},
		{"offsets.topic.segment.bytes", i(internalSegmentBytes)},
		{"transaction.state.log.segment.bytes", i(internalSegmentBytes)},
		{"metadata.log.segment.bytes", i(metadataSegmentBytes)},
		{"metadata.max.retention.bytes", i(metadataSegmentBytes)},
	}
}

// TopicConfigs are the plan as the configs of one topic, for a topic
// created with its own.
func (p BudgetPlan) TopicConfigs() map[string]string {
	return map[string]string{
		"retention.bytes":     strconv.FormatInt(p.RetentionBytes, 10),
		"segment.bytes":       strconv.FormatInt(p.SegmentBytes, 10),
		"segment.index.bytes": strconv.FormatInt(p.IndexBytes, 10),
	}
}

// Worst is the most the plan lets a broker's log dirs hold, headroom
// aside: every partition at its retention plus a segment, the internal
// topics and the metadata log. It is at most Budget.Bytes - Headroom.
func (p BudgetPlan) Worst() int64 {
	return int64(p.Partitions)*partitionBytes(p.RetentionBytes, p.SegmentBytes) + p.Internal + p.Metadata
}

// BudgetFile is the properties file of a site's planned retention that the
// Kubernetes manifests' brokers append to their server.properties (written
// by `make generate` beside the site's kafka-budget.args). Its comment says
// what it was planned from.
func BudgetFile(p BudgetPlan) string {
	b := p.Budget
	return "# Written by `make generate` from kafka-budget.args beside it and libs/kafkaconf:\n" +
		"# the brokers' retention, planned to keep each broker's log dir within the\n" +
		"# site's disk budget. Do not edit; change kafka-budget.args.\n" +
		fmt.Sprintf("# budget.bytes=%d brokers=%d partition.replicas=%d internal.partitions=%d max.record.bytes=%d ingress.bytes.per.sec=%d\n",
			b.Bytes, b.Brokers, p.Partitions, b.InternalPartitions, b.MaxRecordBytes, b.IngressBytesPerSec) +
		Render(p.Properties())
}
