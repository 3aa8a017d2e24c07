package kafkax

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// ReadBatch polls up to max records, waiting at most wait after the first.
func ReadBatch(ctx context.Context, c *kafka.Consumer, max int, wait time.Duration) ([]*kafka.Message, error) {
	var batch []*kafka.Message
	var deadline time.Time
	for len(batch) < max && ctx.Err() == nil {
		timeout := 200 * time.Millisecond
		if !deadline.IsZero() {
			timeout = time.Until(deadline)
			if timeout <= 0 {
				break
			}
		}
		msg, err := c.ReadMessage(timeout)
		if err != nil {
			var kerr kafka.Error
			if errors.As(err, &kerr) && kerr.Code() == kafka.ErrTimedOut {
				if len(batch) > 0 {
					break
				}
				continue
			}
			if errors.As(err, &kerr) && !kerr.IsFatal() {
				continue // transient; librdkafka retries by itself
			}
			return nil, fmt.Errorf("consume: %w", err)
		}
		if len(batch) == 0 {
			deadline = time.Now().Add(wait)
		}
		batch = append(batch, msg)
	}
	return batch, nil
}

// Produce enqueues msg, waiting while the local queue is full.
func Produce(ctx context.Context, p *kafka.Producer, msg *kafka.Message) error {
	for {
		err := p.Produce(msg, nil)
		var kerr kafka.Error
		if err == nil {
			return nil
		}
		if !errors.As(err, &kerr) || kerr.Code() != kafka.ErrQueueFull {
			return fmt.Errorf("produce: %w", err)
		}
		p.Flush(100)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}
