package forward

import (
	"context"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/cefiot/cefiot/services/bridge/internal/checkpoint"
	"github.com/cefiot/cefiot/services/bridge/internal/gaps"
)

// resolveGaps reads the log start offsets of partitions with offset jumps
// and returns the gaps among the jumps. The edge may be failing over, so it
// retries for a while; a gap must not be passed by a checkpoint unrecorded.
func (s *session) resolveGaps(ctx context.Context) ([]gaps.Gap, error) {
	cands := s.tracker.Candidates()
	if len(cands) == 0 {
		return nil, nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		starts, _, err := s.watermarks(ctx, cands, false)
		if err == nil {
			return s.tracker.Resolve(starts), nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("log start offsets of edge partitions: %w", err)
		}
		s.logger.Warn("cannot read edge log start offsets yet; retrying", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// watermarks returns the log start (and with ends, the end) offsets of parts.
func (s *session) watermarks(ctx context.Context, parts []checkpoint.Partition, ends bool) (starts, endOffs map[checkpoint.Partition]int64, err error) {
	return Watermarks(ctx, s.edgeAdmin, parts, ends)
}

// Watermarks reads the log start offsets, and with ends the last stable
// offsets, of parts in one round trip each.
func Watermarks(ctx context.Context, admin *kafka.AdminClient, parts []checkpoint.Partition, ends bool) (starts, endOffs map[checkpoint.Partition]int64, err error) {
	query := func(spec kafka.OffsetSpec) (map[checkpoint.Partition]int64, error) {
		req := make(map[kafka.TopicPartition]kafka.OffsetSpec, len(parts))
		for _, p := range parts {
			t := p.Topic
			req[kafka.TopicPartition{Topic: &t, Partition: p.Partition}] = spec
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		res, err := admin.ListOffsets(rctx, req, kafka.SetAdminIsolationLevel(kafka.IsolationLevelReadCommitted))
		if err != nil {
			return nil, err
		}
		out := make(map[checkpoint.Partition]int64, len(parts))
		for tp, r := range res.ResultInfos {
			if r.Error.Code() != kafka.ErrNoError {
				return nil, fmt.Errorf("%s/%d: %w", *tp.Topic, tp.Partition, r.Error)
			}
			out[checkpoint.Partition{Topic: *tp.Topic, Partition: tp.Partition}] = int64(r.Offset)
		}
		return out, nil
	}
	if len(parts) == 0 {
		return map[checkpoint.Partition]int64{}, map[checkpoint.Partition]int64{}, nil
	}
	if starts, err = query(kafka.EarliestOffsetSpec); err != nil {
		return nil, nil, err
	}
	if ends {
		if endOffs, err = query(kafka.LatestOffsetSpec); err != nil {
			return nil, nil, err
		}
	}
	return starts, endOffs, nil
}

// findIdleGaps records gaps of partitions whose whole unforwarded part was
// removed by retention, leaving nothing to read: no record arrives there to
// reveal the gap. v may be older than the records forwarded since it was
// read: a log start only grows, and Tracker.Idle leaves a partition alone
// once it forwarded past it or met a jump there.
func (s *session) findIdleGaps(v edgeView) {
	if v.starts == nil || v.ends == nil {
		return // read again at the next view
	}
	for p := range s.parts {
		ls, ok1 := v.starts[p]
		le, ok2 := v.ends[p]
		if !ok1 || !ok2 {
			continue
		}
		if g, ok := s.tracker.Idle(p, ls, le); ok {
			s.pendingGaps = append(s.pendingGaps, g)
		}
	}
}
