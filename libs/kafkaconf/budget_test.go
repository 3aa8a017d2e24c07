package kafkaconf

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/cefiot/cefiot/libs/pipeline"
)

func TestPlanBudgetFitsTheBudget(t *testing.T) {
	for _, b := range []Budget{
		{Bytes: 128 << 20, Topics: []BudgetTopic{{"t", 2}}, InternalPartitions: 2, MaxRecordBytes: 2 << 20, IngressBytesPerSec: 2 << 20},
		{Bytes: 2 << 30, Topics: SiteTopics(3), InternalPartitions: 20},
		{Bytes: 200 << 30, Brokers: 3, Topics: SiteTopics(6), InternalPartitions: 100, IngressBytesPerSec: 40 << 20},
		{Bytes: 50 << 30, Brokers: 5, Topics: SiteTopics(12), InternalPartitions: 100},
	} {
		p, err := PlanBudget(b)
		if err != nil {
			t.Fatalf("%+v: %v", b, err)
		}
		t.Logf("%d bytes, %d brokers: %d partitions of %d bytes (retention %d, segment %d), internal %d, metadata %d, headroom %d",
			b.Bytes, p.Budget.Brokers, p.Partitions, p.Share, p.RetentionBytes, p.SegmentBytes, p.Internal, p.Metadata, p.Headroom)
		if w := p.Worst(); w > b.Bytes-p.Headroom {
			t.Errorf("%+v: worst case %d exceeds the budget less headroom %d", b, w, b.Bytes-p.Headroom)
		}
		if p.RetentionBytes < p.SegmentBytes {
			t.Errorf("%+v: retention %d keeps less than a closed segment %d", b, p.RetentionBytes, p.SegmentBytes)
		}
		if p.SegmentBytes < max(b.MaxRecordBytes, minSegmentBytes) || p.SegmentBytes%minSegmentBytes != 0 {
			t.Errorf("%+v: segment %d cannot hold a record of %d bytes or is not whole MiB", b, p.SegmentBytes, b.MaxRecordBytes)
		}
		// Little is wasted: everything but the headroom and the reserves is
		// in retention.
		if used := int64(p.Partitions) * p.RetentionBytes; used < (b.Bytes-p.Headroom-p.Internal-p.Metadata)*3/4 {
			t.Errorf("%+v: retention holds only %d of %d bytes", b, used, b.Bytes-p.Headroom-p.Internal-p.Metadata)
		}
	}
}

func TestPlanBudgetArithmetic(t *testing.T) {
	// One broker, one partition of 1 MiB records, 64 MiB, no ingress:
	// headroom 10%, metadata two 8 MiB segments with indexes and a
	// snapshot, no internal partitions but the cleaner's copy.
	p, err := PlanBudget(Budget{Bytes: 64 << 20, Topics: []BudgetTopic{{"t", 1}}, MaxRecordBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	headroom := int64(64<<20) / 10
	metadata := int64(16<<20) + int64(16<<20)/4096*20 + 2<<20
	internal := int64(1 << 20)
	share := int64(64<<20) - headroom - metadata - internal
	if p.Headroom != headroom || p.Metadata != metadata || p.Internal != internal || p.Share != share || p.Partitions != 1 {
		t.Fatalf("plan %+v; want headroom %d, metadata %d, internal %d, share %d", p, headroom, metadata, internal, share)
	}
	// share/8 rounded down to whole MiB.
	if want := share / 8 / (1 << 20) * (1 << 20); p.SegmentBytes != want {
		t.Errorf("segment %d, want %d", p.SegmentBytes, want)
	}
	if p.IndexBytes != p.SegmentBytes/4096*12+4096 {
		t.Errorf("index %d for a segment of %d", p.IndexBytes, p.SegmentBytes)
	}
	if got := partitionBytes(p.RetentionBytes, p.SegmentBytes); got > share || got < share-8<<10 {
		t.Errorf("the partition takes %d of its share %d", got, share)
	}
	// Three brokers, rf 3: each holds every replica. Five brokers, rf 3:
	// each holds 3/5 of them, rounded up.
	for _, c := range []struct{ brokers, partitions, want int }{{1, 11, 11}, {2, 11, 11}, {3, 11, 11}, {5, 11, 7}, {5, 10, 6}} {
		rf, _ := Replication(c.brokers)
		if got := perBroker(c.partitions, rf, c.brokers); got != c.want {
			t.Errorf("%d partitions on %d brokers: %d a broker, want %d", c.partitions, c.brokers, got, c.want)
		}
	}
	props := map[string]string{}
	for _, pr := range p.Properties() {
		props[pr.Key] = pr.Value
	}
	if props["log.retention.bytes"] != strconv.FormatInt(p.RetentionBytes, 10) || props["log.segment.bytes"] != strconv.FormatInt(p.SegmentBytes, 10) ||
		props["log.retention.check.interval.ms"] != "2000" || props["metadata.log.segment.bytes"] != "8388608" || props["offsets.topic.segment.bytes"] != "1048576" {
		t.Errorf("properties %v", props)
	}
	if c := p.TopicConfigs(); c["retention.bytes"] != props["log.retention.bytes"] || c["segment.bytes"] != props["log.segment.bytes"] {
		t.Errorf("topic configs %v differ from the broker defaults %v", c, props)
	}
}

func TestPlanBudgetHeadroomHoldsIngress(t *testing.T) {
	b := Budget{Bytes: 1 << 30, Topics: SiteTopics(3), InternalPartitions: 20, MaxRecordBytes: 1 << 20}
	p0, err := PlanBudget(b)
	if err != nil {
		t.Fatal(err)
	}
	b.IngressBytesPerSec = 10 << 20
	p1, err := PlanBudget(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := p1.Headroom - p0.Headroom; d != 310<<20 {
		t.Errorf("10 MiB/s adds %d bytes of headroom, want 310 MiB (the first retention check after a start, 30 s, and a delete delay)", d)
	}
}

func TestPlanBudgetRefusesTooSmall(t *testing.T) {
	b := Budget{Topics: SiteTopics(3), InternalPartitions: 20}
	b.Bytes = 1 << 30
	if _, err := PlanBudget(b); err != nil {
		t.Fatalf("1 GiB: %v", err)
	}
	b.Bytes = 100 << 20
	_, err := PlanBudget(b)
	if !errors.Is(err, ErrBudgetTooSmall) {
		t.Fatalf("100 MiB for 11 partitions of 16 MiB records: %v, want ErrBudgetTooSmall", err)
	}
	// The error says the least budget, and that budget is enough while a
	// byte less is not.
	msg := err.Error()
	i := strings.LastIndex(msg, "at least ")
	least, perr := strconv.ParseInt(strings.TrimSuffix(msg[i+len("at least "):], " bytes"), 10, 64)
	if i < 0 || perr != nil {
		t.Fatalf("error does not say the least budget: %q", msg)
	}
	b.Bytes = least
	if _, err := PlanBudget(b); err != nil {
		t.Errorf("the least budget %d it named: %v", least, err)
	}
	b.Bytes = least - 1
	if _, err := PlanBudget(b); !errors.Is(err, ErrBudgetTooSmall) {
		t.Errorf("a byte under the least budget: %v", err)
	}
	t.Logf("least budget for the site's topics at 3 partitions and %d-byte records: %d bytes; refusal: %s", pipeline.MaxRecordBytes, least, msg)

	for _, bad := range []Budget{
		{Bytes: 0, Topics: SiteTopics(3)},
		{Bytes: -1, Topics: SiteTopics(3)},
		{Bytes: 1 << 30},
		{Bytes: 1 << 30, Topics: []BudgetTopic{{"t", 0}}},
		{Bytes: 1 << 30, Topics: SiteTopics(3), MaxRecordBytes: 2 << 30},
		{Bytes: 1 << 30, Topics: SiteTopics(3), IngressBytesPerSec: -1},
	} {
		if _, err := PlanBudget(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
