package forward

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/services/bridge/internal/checkpoint"
	"github.com/cefiot/cefiot/services/bridge/internal/gaps"
)

// applyView assigns the new matching partitions of v, drops the vanished
// and recreated ones, and records the gaps of idle partitions that
// retention emptied.
func (s *session) applyView(ctx context.Context, v edgeView) error {
	want, counts, ids := v.want, v.counts, v.ids
	if err := s.dropRecreated(ids); err != nil {
		return err
	}
	var added []checkpoint.Partition
	for p := range want {
		if _, ok := s.parts[p]; !ok {
			added = append(added, p)
		}
	}
	var removed []kafka.TopicPartition
	for p := range s.parts {
		if _, ok := want[p]; !ok {
			t := p.Topic
			removed = append(removed, kafka.TopicPartition{Topic: &t, Partition: p.Partition})
			delete(s.parts, p)
			s.tracker.Forget(p)
		}
	}
	if len(removed) > 0 {
		s.logger.Warn("edge partitions vanished; no longer forwarded", "partitions", len(removed))
		if err := s.consumer.IncrementalUnassign(removed); err != nil {
			return fmt.Errorf("unassign vanished partitions: %w", err)
		}
	}
	if len(added) == 0 {
		if len(removed) > 0 {
			s.reportAssigned()
		}
		return nil
	}
	slices.SortFunc(added, func(a, b checkpoint.Partition) int {
		if a.Topic != b.Topic {
			return cmpString(a.Topic, b.Topic)
		}
		return int(a.Partition - b.Partition)
	})
	for _, topic := range slices.Sorted(maps.Keys(counts)) {
		if err := s.ensureCloudTopic(ctx, topic, counts[topic]); err != nil {
			return err
		}
	}
	cps, err := s.loadCheckpoints(ctx, added)
	if err != nil {
		return err
	}
	assign := make([]kafka.TopicPartition, 0, len(added))
	for _, p := range added {
		cp, ok := cps[p]
		if !ok {
			cp = checkpoint.Record{Site: s.cfg.Site, Topic: p.Topic, Partition: p.Partition, Next: 0}
		}
		st := &partState{cloudTopic: want[p], cp: cp, topicID: ids[p.Topic]}
		s.parts[p] = st
		from := cp.Next
		if cp.TopicID != "" && st.topicID != "" && cp.TopicID != st.topicID {
			// The checkpoint is of a topic that was deleted since: its
			// offsets mean nothing in this one, which is read from its
			// start as a new epoch, and the reset is recorded.
			reset := gaps.Gap{Partition: p, Start: cp.Next, End: 0, Reset: true, Epoch: cp.Epoch + 1}
			s.pendingGaps = append(s.pendingGaps, reset)
			st.pendingResets++
			from = 0
			s.logger.Warn("edge topic was deleted and created again: forwarding it from its start as a new epoch",
				"topic", p.Topic, "partition", p.Partition, "reset", reset.String(), "old_topic_id", cp.TopicID, "topic_id", st.topicID)
		}
		s.tracker.Start(p, from)
		t := p.Topic
		assign = append(assign, kafka.TopicPartition{Topic: &t, Partition: p.Partition, Offset: kafka.Offset(from)})
	}
	if err := s.consumer.IncrementalAssign(assign); err != nil {
		return fmt.Errorf("assign edge partitions: %w", err)
	}
	if s.paused {
		_ = s.consumer.Pause(assign)
	}
	s.logger.Info("forwarding edge partitions", "added", len(added), "total", len(s.parts), "resumed_from_checkpoint", len(cps))
	s.reportAssigned()
	return nil
}

// dropRecreated unassigns the partitions whose topic now has another id
// than the one they were forwarded from (deleted and created again between
// two refreshes), so that they are assigned again, from their new start.
// A partition assigned while the ids could not be read takes its id now,
// unless its checkpoint names another.
func (s *session) dropRecreated(ids map[string]string) error {
	var drop []kafka.TopicPartition
	for p, st := range s.parts {
		id := ids[p.Topic]
		if id == "" {
			continue
		}
		known := st.topicID
		if known == "" {
			known = st.cp.TopicID
		}
		if known == "" || known == id {
			st.topicID = id
			continue
		}
		t := p.Topic
		drop = append(drop, kafka.TopicPartition{Topic: &t, Partition: p.Partition})
		delete(s.parts, p)
		s.tracker.Forget(p)
	}
	if len(drop) == 0 {
		return nil
	}
	if err := s.consumer.IncrementalUnassign(drop); err != nil {
		return fmt.Errorf("unassign recreated partitions: %w", err)
	}
	return nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *session) reportAssigned() {
	out := make(map[checkpoint.Partition]PartitionInfo, len(s.parts))
	for p, st := range s.parts {
		out[p] = PartitionInfo{CloudTopic: st.cloudTopic, Checkpoint: st.cp}
	}
	s.obs.Assigned(s.cfg.TransactionID, out)
}

// ensureCloudTopic creates the cloud topic with the edge partition count,
// or adds partitions to an existing one that has fewer.
func (s *session) ensureCloudTopic(ctx context.Context, topic string, n int) error {
	target := s.cfg.Selection.CloudTopic(s.cfg.Site, topic)
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	got, err := kafkax.EnsureTopicWith(tctx, s.cloudAdmin, kafkax.TopicSpec{Name: target, Partitions: n})
	if err != nil {
		return err
	}
	if got >= n {
		return nil
	}
	s.logger.Info("edge topic grew; adding cloud partitions", "topic", target, "from", got, "to", n)
	res, err := s.cloudAdmin.CreatePartitions(tctx, []kafka.PartitionsSpecification{{Topic: target, IncreaseTo: n}})
	if err != nil {
		return fmt.Errorf("add partitions to %s: %w", target, err)
	}
	for _, r := range res {
		if r.Error.Code() != kafka.ErrNoError {
			return fmt.Errorf("add partitions to %s: %w", target, r.Error)
		}
	}
	for {
		got, err := kafkax.PartitionCount(s.cloudAdmin, target)
		if err == nil && got >= n {
			return nil
		}
		select {
		case <-tctx.Done():
			return fmt.Errorf("partitions of %s not visible: %w", target, tctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// loadCheckpoints reads the checkpoints of parts; when another workload
// wrote the last checkpoint of one of them, it fences that workload first so
// that it cannot commit behind our back, and reads again.
func (s *session) loadCheckpoints(ctx context.Context, parts []checkpoint.Partition) (map[checkpoint.Partition]checkpoint.Record, error) {
	all, err := checkpoint.Load(ctx, s.cfg.CloudBootstrap, s.cpTopic, s.cfg.Site)
	if err != nil {
		return nil, err
	}
	owners := map[string]bool{}
	for _, p := range parts {
		if r, ok := all[p]; ok && r.Owner != "" && r.Owner != s.cfg.TransactionID {
			owners[r.Owner] = true
		}
	}
	if len(owners) > 0 {
		for _, o := range slices.Sorted(maps.Keys(owners)) {
			s.logger.Warn("taking over partitions another bridge workload forwarded; fencing it", "previous_owner", o)
			if err := checkpoint.Fence(ctx, s.cfg.CloudBootstrap, o); err != nil {
				return nil, err
			}
		}
		if all, err = checkpoint.Load(ctx, s.cfg.CloudBootstrap, s.cpTopic, s.cfg.Site); err != nil {
			return nil, err
		}
	}
	out := map[checkpoint.Partition]checkpoint.Record{}
	for _, p := range parts {
		if r, ok := all[p]; ok {
			out[p] = r
		}
	}
	return out, nil
}
