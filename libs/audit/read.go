package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/pipeline"
)

// Filter selects records: each set field must match (Who and Action by
// substring, Result exactly).
type Filter struct {
	Who, Action, Result string
}

// Match reports whether r passes f.
func (f Filter) Match(r Record) bool {
	return strings.Contains(r.Who, f.Who) && strings.Contains(r.Action, f.Action) && (f.Result == "" || r.Result == f.Result)
}

// ScanWindow is how many of the newest records Recent looks at.
const ScanWindow = 10000

// Recent returns up to limit of the newest records of the site's audit
// topic at conn that pass f, newest first, and how many records it looked
// at (the newest ScanWindow at most). A topic that does not exist yet
// holds nothing.
func Recent(ctx context.Context, conn kafkax.Conn, f Filter, limit int) ([]Record, int64, error) {
	c, err := kafka.NewConsumer(kafkax.Config(conn, map[string]any{
		"group.id": pipeline.AuditReaderGroup, "enable.auto.commit": false, "auto.offset.reset": "earliest",
	}))
	if err != nil {
		return nil, 0, fmt.Errorf("audit reader: %w", err)
	}
	defer func() { _ = c.Close() }()
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	topic := pipeline.TopicAudit
	low, high, err := c.QueryWatermarkOffsets(topic, 0, int(timeout/time.Millisecond))
	if err != nil {
		var ke kafka.Error
		if errors.As(err, &ke) && (ke.Code() == kafka.ErrUnknownTopicOrPart || ke.Code() == kafka.ErrUnknownPartition) {
			return nil, 0, nil
		}
		return nil, 0, fmt.Errorf("audit topic offsets: %w", err)
	}
	start := max(low, high-ScanWindow)
	if start >= high {
		return nil, 0, nil
	}
	if err := c.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: kafka.Offset(start)}}); err != nil {
		return nil, 0, fmt.Errorf("audit topic: %w", err)
	}
	var matched []Record
	next := start
	for next < high {
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		m, err := c.ReadMessage(500 * time.Millisecond)
		if err != nil {
			var ke kafka.Error
			if errors.As(err, &ke) && ke.Code() == kafka.ErrTimedOut {
				continue
			}
			return nil, 0, fmt.Errorf("audit topic: %w", err)
		}
		next = int64(m.TopicPartition.Offset) + 1
		r, err := Decode(m.Value)
		if err != nil || !f.Match(r) {
			continue // a record that is not ours is not shown
		}
		matched = append(matched, r)
	}
	out := make([]Record, 0, min(limit, len(matched)))
	for i := len(matched) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, matched[i])
	}
	return out, next - start, nil
}
