package forward

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kfake"
	"google.golang.org/protobuf/proto"

	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/services/bridge/internal/checkpoint"
	"github.com/cefiot/cefiot/services/bridge/internal/ratelimit"

	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// These tests run sessions between two fake Kafka clusters (kfake: the
// Kafka wire protocol in process, with transactions and producer fencing),
// one for the edge and one for the cloud.

func TestSessionForwardsRecordsToTheCloudTopic(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	edge := newCluster(t, kfake.SeedTopics(edgeParts, edgeTopic), kfake.SeedTopics(1, "unselected"))
	cloud := newCluster(t)
	sent := produceEdge(t, edge, "a", 120)

	cfg := testConfig(t, edge, cloud)
	s := start(ctx, t, cfg, nil)
	waitFor(ctx, t, "all records committed", func() bool { return s.obs.forwarded(120) })
	s.stop(ctx, t)

	if got := pipeline.CloudTopic(site, edgeTopic); got != cloudTopic {
		t.Fatalf("cloud topic of %s is %s, want %s", edgeTopic, got, cloudTopic)
	}
	sameRecords(t, readCloud(ctx, t, cloud, cloudTopic), sent)

	admin, err := kafka.NewAdminClient(kafkax.Config(cloud, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if n, err := kafkax.PartitionCount(admin, cloudTopic); err != nil || n != edgeParts {
		t.Errorf("cloud topic has %d partitions (%v), want %d like the edge topic", n, err, edgeParts)
	}
	if _, err := kafkax.PartitionCount(admin, pipeline.CloudTopic(site, "unselected")); !errors.Is(err, kafkax.ErrNoTopic) {
		t.Errorf("an unselected edge topic was created in the cloud (%v)", err)
	}

	cps, err := checkpoint.Load(ctx, cloud, pipeline.CheckpointTopic(site), site)
	if err != nil {
		t.Fatal(err)
	}
	for part := range int32(edgeParts) {
		p := checkpoint.Partition{Topic: edgeTopic, Partition: part}
		if cp := cps[p]; cp.Next != 120 || cp.Owner != cfg.TransactionID {
			t.Errorf("checkpoint of %v: got %+v, want next 120 by %s", p, cp, cfg.TransactionID)
		}
	}
}

func TestNextSessionResumesFromTheCheckpoint(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	edge := newCluster(t, kfake.SeedTopics(edgeParts, edgeTopic))
	cloud := newCluster(t)
	cfg := testConfig(t, edge, cloud)

	sent := produceEdge(t, edge, "a", 100)
	lim := ratelimit.New(0)
	first := start(ctx, t, cfg, lim)
	waitFor(ctx, t, "the first records committed", func() bool { return first.obs.forwarded(100) })
	// More records arrive, and the WAN gets slow (about 10 records a
	// second): the first session is stopped in the middle of them,
	// probably with a transaction open.
	lim.SetRate(1000)
	sent = append(sent, produceEdge(t, edge, "b", 200)...)
	waitFor(ctx, t, "some of the new records committed", func() bool { return first.obs.progressed(101) })
	first.stop(ctx, t)
	first.obs.mu.Lock()
	stoppedAt := maps.Clone(first.obs.next)
	first.obs.mu.Unlock()
	if first.obs.forwarded(300) {
		t.Fatalf("the first session forwarded everything before it was stopped (%v); the test needs it stopped midway", stoppedAt)
	}

	sent = append(sent, produceEdge(t, edge, "c", 100)...)
	second := start(ctx, t, cfg, nil)
	waitFor(ctx, t, "all records committed", func() bool { return second.obs.forwarded(400) })
	second.stop(ctx, t)

	// The second session started from the first one's last commit.
	second.obs.mu.Lock()
	for p, next := range stoppedAt {
		if got := second.obs.assigned[p].Checkpoint.Next; got != next {
			t.Errorf("%v: second session reports checkpoint %d, first committed %d", p, got, next)
		}
	}
	second.obs.mu.Unlock()
	sameRecords(t, readCloud(ctx, t, cloud, cloudTopic), sent)
}

func TestSessionTakenOverByANewerOneEndsFenced(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// rate is the old session's byte rate once it is fenced (0:
		// unlimited). A fast session learns it is fenced when it commits;
		// a slow one is still producing the transaction's records when
		// the cloud refuses the transaction: its producer fails fatally,
		// and Produce says only that.
		rate int64
	}{
		{"fenced at commit", 0},
		{"fenced while producing", 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
			defer cancel()
			edge := newCluster(t, kfake.SeedTopics(edgeParts, edgeTopic))
			cloud := newCluster(t)
			cfg := testConfig(t, edge, cloud)

			sent := produceEdge(t, edge, "a", 50)
			lim := ratelimit.New(0)
			old := start(ctx, t, cfg, lim)
			waitFor(ctx, t, "the first records committed", func() bool { return old.obs.forwarded(50) })

			// A newer session with the same transactional id initialises
			// its transactions: the old one is fenced and learns it at its
			// next transaction.
			newer := start(ctx, t, cfg, nil)
			waitFor(ctx, t, "the newer session assigned", newer.obs.isAssigned)
			lim.SetRate(tc.rate)
			sent = append(sent, produceEdge(t, edge, "b", 50)...)

			select {
			case <-old.done:
				if !errors.Is(old.err, ErrFenced) {
					t.Fatalf("old session ended with %v, want ErrFenced", old.err)
				}
			case <-ctx.Done():
				t.Fatal("old session still runs after a newer one took over its transactional id")
			}
			old.obs.mu.Lock()
			aborted := len(old.obs.aborted)
			old.obs.mu.Unlock()
			if aborted == 0 {
				t.Error("old session did not report its aborted transaction")
			}

			waitFor(ctx, t, "all records committed by the newer session", func() bool { return newer.obs.forwarded(100) })
			newer.stop(ctx, t)
			sameRecords(t, readCloud(ctx, t, cloud, cloudTopic), sent)
		})
	}
}

func TestRecordsRemovedByEdgeRetentionBecomeAGapMarker(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	edge := newCluster(t, kfake.SeedTopics(edgeParts, edgeTopic))
	cloud := newCluster(t)
	cfg := testConfig(t, edge, cloud)

	sent := produceEdge(t, edge, "a", 20)
	// Retention removes offsets 0..7 of partition 0 before the bridge
	// forwards them.
	admin, err := kafka.NewAdminClient(kafkax.Config(edge, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	topic := edgeTopic
	res, err := admin.DeleteRecords(ctx, []kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: 8}})
	if err != nil {
		t.Fatalf("delete edge records: %v", err)
	}
	for _, r := range res.DeleteRecordsResults {
		if r.TopicPartition.Error != nil {
			t.Fatalf("delete edge records: %v", r.TopicPartition.Error)
		}
	}
	var want []record
	offset := map[int32]int{}
	for _, r := range sent {
		if r.Partition != 0 || offset[0] >= 8 {
			want = append(want, r)
		}
		offset[r.Partition]++
	}
	if len(want) != len(sent)-8 {
		t.Fatalf("test bug: %d records kept of %d", len(want), len(sent))
	}

	s := start(ctx, t, cfg, nil)
	waitFor(ctx, t, "all records committed", func() bool { return s.obs.forwarded(20) })
	s.stop(ctx, t)

	sameRecords(t, readCloud(ctx, t, cloud, cloudTopic), want)
	markers := readCloud(ctx, t, cloud, pipeline.GapTopic(site))
	if len(markers) != 1 {
		t.Fatalf("got %d gap markers, want 1", len(markers))
	}
	var m cefiotv1.GapMarker
	if err := proto.Unmarshal([]byte(markers[0].Value), &m); err != nil {
		t.Fatal(err)
	}
	if m.GetSite() != site || m.GetSourceTopic() != edgeTopic || m.GetSourcePartition() != 0 || m.GetCloudTopic() != cloudTopic ||
		m.GetStartOffset() != 0 || m.GetEndOffset() != 8 || m.GetLogStartOffset() != 8 || m.GetBridge() != cfg.TransactionID {
		t.Errorf("gap marker %v, want offsets [0, 8) of %s/0 by %s", &m, edgeTopic, cfg.TransactionID)
	}
	cps, err := checkpoint.Load(ctx, cloud, pipeline.CheckpointTopic(site), site)
	if err != nil {
		t.Fatal(err)
	}
	if cp := cps[checkpoint.Partition{Topic: edgeTopic, Partition: 0}]; cp.Next != 20 || cp.GapOffsets != 8 || cp.Gaps != 1 {
		t.Errorf("checkpoint of partition 0: %+v, want next 20 with 8 offsets in 1 gap", cp)
	}
	if cp := cps[checkpoint.Partition{Topic: edgeTopic, Partition: 1}]; cp.Next != 20 || cp.GapOffsets != 0 || cp.Gaps != 0 {
		t.Errorf("checkpoint of partition 1: %+v, want next 20 without gaps", cp)
	}
}

// TestLowRateLimitNeverHoldsATransactionOpen: at a rate limit so low that
// each record waits longer than half the transaction timeout, every
// transaction still commits well inside its timeout (the wait happens
// between transactions, not in one), and every record arrives once.
func TestLowRateLimitNeverHoldsATransactionOpen(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	edge := newCluster(t, kfake.SeedTopics(edgeParts, edgeTopic))
	cloud := newCluster(t)
	const perPartition = 3
	sent := produceEdge(t, edge, "r", perPartition)

	cfg := testConfig(t, edge, cloud)
	cfg.TransactionTimeout = time.Second
	// About 21 bytes a record at 20 bytes/s: each waits ~1 s, twice the
	// time a transaction may stay open while it is filled.
	s := start(ctx, t, cfg, ratelimit.New(20))
	waitFor(ctx, t, "all records committed", func() bool { return s.obs.forwarded(perPartition) })
	s.stop(ctx, t)
	sameRecords(t, readCloud(ctx, t, cloud, cloudTopic), sent)

	s.obs.mu.Lock()
	defer s.obs.mu.Unlock()
	if limit := cfg.TransactionTimeout/2 + 300*time.Millisecond; s.obs.longestOpen > limit {
		t.Errorf("a transaction stayed open %v under the rate limit, want at most %v (timeout %v)", s.obs.longestOpen, limit, cfg.TransactionTimeout)
	}
	if len(s.obs.aborted) > 0 {
		t.Errorf("transactions aborted: %v", s.obs.aborted)
	}
	if s.obs.commits < perPartition*edgeParts {
		t.Errorf("%d commits for %d records: the rate-limited records were not committed one by one", s.obs.commits, perPartition*edgeParts)
	}
}

// TestRecreatedEdgeTopicIsANewEpoch: an edge topic deleted and created
// again (offsets start at 0 again, under a new topic id) is forwarded from
// its start as a new epoch, never from the old checkpoint's offset (which
// would skip the new records below it), whether the bridge was stopped
// meanwhile or was running; each reset is a gap marker, and the
// checkpoints carry the epoch and the new topic id.
func TestRecreatedEdgeTopicIsANewEpoch(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	edge := newCluster(t, kfake.SeedTopics(edgeParts, edgeTopic))
	cloud := newCluster(t)
	cfg := testConfig(t, edge, cloud)

	sent := produceEdge(t, edge, "a", 5)
	s := start(ctx, t, cfg, nil)
	waitFor(ctx, t, "epoch 0 forwarded", func() bool { return s.obs.at(0, 5) })
	s.stop(ctx, t)

	// Recreated while the bridge is away, and filled past the old
	// checkpoint (offset 5).
	recreateEdgeTopic(ctx, t, edge)
	sent = append(sent, produceEdge(t, edge, "b", 8)...)
	s = start(ctx, t, cfg, nil)
	waitFor(ctx, t, "epoch 1 forwarded", func() bool { return s.obs.at(1, 8) })

	// Recreated while the bridge runs.
	recreateEdgeTopic(ctx, t, edge)
	sent = append(sent, produceEdge(t, edge, "c", 8)...)
	waitFor(ctx, t, "epoch 2 forwarded", func() bool { return s.obs.at(2, 8) })
	s.stop(ctx, t)

	sameRecords(t, readCloud(ctx, t, cloud, cloudTopic), sent)
	var resets []string
	for _, r := range readCloud(ctx, t, cloud, pipeline.GapTopic(site)) {
		var m cefiotv1.GapMarker
		if err := proto.Unmarshal([]byte(r.Value), &m); err != nil {
			t.Fatal(err)
		}
		if !m.GetOffsetsReset() {
			t.Errorf("a gap marker that is not a reset: %v", &m)
			continue
		}
		resets = append(resets, fmt.Sprintf("p%d:%d->%d@%d", m.GetSourcePartition(), m.GetStartOffset(), m.GetEndOffset(), m.GetEpoch()))
	}
	slices.Sort(resets)
	if want := []string{"p0:5->0@1", "p0:8->0@2", "p1:5->0@1", "p1:8->0@2"}; !slices.Equal(resets, want) {
		t.Errorf("reset markers %v, want %v", resets, want)
	}
	cps, err := checkpoint.Load(ctx, cloud, pipeline.CheckpointTopic(site), site)
	if err != nil {
		t.Fatal(err)
	}
	for part := range int32(edgeParts) {
		if cp := cps[checkpoint.Partition{Topic: edgeTopic, Partition: part}]; cp.Epoch != 2 || cp.Next != 8 || cp.TopicID == "" || cp.Gaps != 2 || cp.GapOffsets != 0 {
			t.Errorf("checkpoint of partition %d: %+v, want epoch 2, next 8, the topic id, 2 gaps of unknown size", part, cp)
		}
	}
}
