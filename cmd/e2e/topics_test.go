package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/cefiot/cefiot/libs/harness/localstack"
	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/pipeline"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// topicRecord is one committed record of a topic, as the tests look at it.
type topicRecord struct {
	partition int32
	offset    int64
	frameID   string
	handoff   string // handoff marker id, if it is one
	enriched  *cefiotv1.EnrichedFrame
	repeated  []string // header keys that appear more than once
}

// readCommitted reads every committed record of topic (read_committed) up to
// the high watermarks at the time of the call, in partition order.
func readCommitted(ctx context.Context, t *testing.T, bootstrap kafkax.Conn, topic string, decodeEnriched bool) []topicRecord {
	t.Helper()
	c, err := kafka.NewConsumer(bootstrap.Config(map[string]any{
		"group.id": "cefiot-e2e-reader", "isolation.level": "read_committed",
		"enable.auto.commit": false, "enable.partition.eof": true,
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	md, err := c.GetMetadata(&topic, false, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []topicRecord
	for _, p := range md.Topics[topic].Partitions {
		_, high, err := c.QueryWatermarkOffsets(topic, p.ID, 10000)
		if err != nil {
			t.Fatal(err)
		}
		if high == 0 {
			continue
		}
		tp := topic
		if err := c.Assign([]kafka.TopicPartition{{Topic: &tp, Partition: p.ID, Offset: kafka.OffsetBeginning}}); err != nil {
			t.Fatal(err)
		}
	read:
		for {
			if ctx.Err() != nil {
				t.Fatalf("reading %s: %v", topic, ctx.Err())
			}
			ev := c.Poll(200)
			switch e := ev.(type) {
			case *kafka.Message:
				r := topicRecord{partition: p.ID, offset: int64(e.TopicPartition.Offset)}
				r.frameID, _ = kafkax.Header(e, pipeline.HeaderFrameID)
				r.handoff, _ = kafkax.Header(e, pipeline.HeaderHandoff)
				seen := map[string]bool{}
				for _, h := range e.Headers {
					if seen[h.Key] {
						r.repeated = append(r.repeated, h.Key)
					}
					seen[h.Key] = true
				}
				if decodeEnriched && r.handoff == "" {
					ef := &cefiotv1.EnrichedFrame{}
					if err := proto.Unmarshal(e.Value, ef); err == nil {
						r.enriched = ef
						r.frameID = ef.GetFrame().GetFrameId()
					}
				}
				out = append(out, r)
				if int64(e.TopicPartition.Offset) >= high-1 {
					break read
				}
			case kafka.PartitionEOF:
				break read
			case kafka.Error:
				t.Logf("reader: %v", e)
			}
		}
	}
	return out
}

// frameCounts counts records per frame id (markers excluded).
func frameCounts(rs []topicRecord) (map[string]int, int) {
	m := map[string]int{}
	n := 0
	for _, r := range rs {
		if r.handoff != "" || r.frameID == "" {
			continue
		}
		m[r.frameID]++
		n++
	}
	return m, n
}

// checkStoreExactlyOnce asserts the store lists exactly want distinct
// frames, none twice.
func checkStoreExactlyOnce(ctx context.Context, t *testing.T, stack *localstack.Stack, want int) {
	t.Helper()
	conn, err := grpc.NewClient(stack.SinkGRPC(), stack.Operator().DialOption())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	frames := listAll(ctx, t, cefiotv1.NewSinkServiceClient(conn))
	seen := map[string]bool{}
	for _, f := range frames {
		if seen[f.GetFrameId()] {
			t.Errorf("frame %s stored twice", f.GetFrameId())
		}
		seen[f.GetFrameId()] = true
	}
	if len(seen) != want {
		t.Fatalf("store lists %d distinct frames, want %d", len(seen), want)
	}
}

// checkPipelineExactlyOnce asserts that enrich turned every raw frame
// record into exactly one enriched record, and that the bridge forwarded
// every enriched record exactly once.
func checkPipelineExactlyOnce(ctx context.Context, t *testing.T, edge, cloud kafkax.Conn, site string) (raw, enriched []topicRecord) {
	t.Helper()
	raw = readCommitted(ctx, t, edge, pipeline.TopicFramesRaw, false)
	enriched = readCommitted(ctx, t, edge, pipeline.TopicFramesEnriched, true)
	forwarded := readCommitted(ctx, t, cloud, pipeline.CloudTopic(site, pipeline.TopicFramesEnriched), false)
	for _, rs := range [][]topicRecord{raw, enriched, forwarded} {
		for _, r := range rs {
			if len(r.repeated) > 0 {
				t.Errorf("record %s at partition %d offset %d carries headers %v more than once: each header has one owner", r.frameID, r.partition, r.offset, r.repeated)
				break
			}
		}
	}
	rawCounts, rawN := frameCounts(raw)
	enrCounts, enrN := frameCounts(enriched)
	fwdCounts, fwdN := frameCounts(forwarded)
	if enrN != rawN {
		t.Errorf("frames.raw holds %d frame records, frames.enriched %d: enrich must turn each into exactly one", rawN, enrN)
	}
	for id, n := range rawCounts {
		if enrCounts[id] != n {
			t.Errorf("frame %s: %d raw records, %d enriched", id, n, enrCounts[id])
			break
		}
	}
	if fwdN != enrN {
		t.Errorf("frames.enriched holds %d records, the cloud copy %d: the bridge must forward each exactly once", enrN, fwdN)
	}
	for id, n := range enrCounts {
		if fwdCounts[id] != n {
			t.Errorf("frame %s: %d enriched records, %d forwarded", id, n, fwdCounts[id])
			break
		}
	}
	return raw, enriched
}

// waitFor polls cond every 100ms until it holds or ctx ends.
func awaitState(ctx context.Context, t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v (last state: %s)", what, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func schedulerClient(t *testing.T, stack *localstack.Stack, name string) cefiotv1.SchedulerServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(stack.SchedulerGRPC(name), stack.Operator().DialOption())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return cefiotv1.NewSchedulerServiceClient(conn)
}

// running returns, per workload, the worker whose claim matches the
// current assignment (the workload runs there), or "".
func runningClaims(ctx context.Context, c cefiotv1.SchedulerServiceClient) (map[string]*cefiotv1.Assignment, map[string]*cefiotv1.Claim, error) {
	r, err := c.ListAssignments(ctx, &cefiotv1.ListAssignmentsRequest{})
	if err != nil {
		return nil, nil, err
	}
	as := map[string]*cefiotv1.Assignment{}
	for _, a := range r.GetAssignments() {
		as[a.GetWorkload()] = a
	}
	cs := map[string]*cefiotv1.Claim{}
	for _, c := range r.GetClaims() {
		if a := as[c.GetWorkload()]; a != nil && a.GetEpoch() == c.GetEpoch() && a.GetWorkerId() == c.GetWorkerId() {
			cs[c.GetWorkload()] = c
		}
	}
	return as, cs, nil
}

func describeRunning(as map[string]*cefiotv1.Assignment, cs map[string]*cefiotv1.Claim) string {
	s := ""
	for name, a := range as {
		s += fmt.Sprintf("%s->%s@%s(e%d,claimed=%v) ", name, a.GetWorkerId(), a.GetNode(), a.GetEpoch(), cs[name] != nil)
	}
	return s
}
