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
)

// edgeView is one read of the edge cluster: the matching topics and their
// partitions, the topic ids and the partitions' watermarks. It is taken off
// the forwarding loop, because each of these requests can wait seconds on a
// broker that just died, and forwarding from the partitions whose leaders
// live must not wait with them.
type edgeView struct {
	// want maps every matching partition to its cloud topic.
	want map[checkpoint.Partition]string
	// counts holds each matching topic's partition count.
	counts map[string]int
	// ids holds the topic ids; empty when they could not be read.
	ids map[string]string
	// starts and ends are the partitions' log start and last stable
	// offsets; nil when they could not be read.
	starts, ends map[checkpoint.Partition]int64
}

// Bounds of the requests of one read. Only the metadata is needed: a read
// without ids or watermarks is used, and the next read completes it.
const (
	metadataTimeout = 5 * time.Second
	topicIDTimeout  = 3 * time.Second
)

// readEdge reads the edge cluster's view. It fails only when the metadata
// cannot be read.
func (s *session) readEdge(ctx context.Context) (edgeView, error) {
	md, err := s.edgeAdmin.GetMetadata(nil, true, int(metadataTimeout/time.Millisecond))
	if err != nil {
		return edgeView{}, fmt.Errorf("edge metadata: %w", err)
	}
	v := edgeView{want: map[checkpoint.Partition]string{}, counts: map[string]int{}, ids: map[string]string{}}
	for name, t := range md.Topics {
		if t.Error.Code() != kafka.ErrNoError || !s.cfg.Selection.Match(name) || len(t.Partitions) == 0 {
			continue
		}
		v.counts[name] = len(t.Partitions)
		for _, p := range t.Partitions {
			v.want[checkpoint.Partition{Topic: name, Partition: p.ID}] = s.cfg.Selection.CloudTopic(s.cfg.Site, name)
		}
	}
	// Topic ids tell a topic deleted and created again; a read without
	// them is compared at the next one.
	idCtx, cancelIDs := context.WithTimeout(ctx, topicIDTimeout)
	ids, err := kafkax.TopicIDs(idCtx, s.edgeAdmin, slices.Sorted(maps.Keys(v.counts)))
	cancelIDs()
	if err != nil {
		s.logger.Warn("cannot read the edge topic ids now; a recreated topic is noticed at a later read", "err", err)
	} else {
		v.ids = ids
	}
	starts, ends, err := s.watermarks(ctx, slices.Collect(maps.Keys(v.want)), true)
	if err != nil {
		s.logger.Debug("edge watermarks", "err", err) // read again next time
	} else {
		v.starts, v.ends = starts, ends
	}
	return v, nil
}

// watchEdge reads the edge view every TopicRefresh until ctx ends and
// hands the newest to the forwarding loop; a view the loop has not taken
// yet is replaced by the newer one.
func (s *session) watchEdge(ctx context.Context) {
	tick := time.NewTicker(s.cfg.TopicRefresh)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		v, err := s.readEdge(ctx)
		if err != nil {
			if !failing && ctx.Err() == nil {
				s.logger.Warn("cannot read the edge topics now; forwarding goes on with the partitions it has", "err", err)
			}
			failing = true
			continue
		}
		if failing {
			s.logger.Info("edge topics readable again")
			failing = false
		}
		select {
		case <-s.views:
		default:
		}
		s.views <- v
	}
}
