package sink

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cefiot/cefiot/libs/kafkax"
)

// deadLetters produces refused records to the dead-letter topic with an
// idempotent producer; Wait returns once every record sent so far is
// acknowledged.
type deadLetters struct {
	topic, stage string
	producer     *kafka.Producer
	counter      *prometheus.CounterVec
	logger       *slog.Logger

	mu      sync.Mutex
	pending int
	err     error
	done    chan struct{} // closed and replaced when pending drops to 0
}

func newDeadLetters(bootstrap kafkax.Conn, topic, stage string, counter *prometheus.CounterVec, logger *slog.Logger) (*deadLetters, error) {
	p, err := kafka.NewProducer(kafkax.Config(bootstrap, map[string]any{
		"enable.idempotence": true,
		"acks":               "all",
		"linger.ms":          5,
		"message.max.bytes":  32 << 20,
	}))
	if err != nil {
		return nil, fmt.Errorf("dead-letter producer: %w", err)
	}
	d := &deadLetters{topic: topic, stage: stage, producer: p, counter: counter, logger: logger, done: make(chan struct{})}
	close(d.done)
	go d.events()
	return d, nil
}

func (d *deadLetters) events() {
	for ev := range d.producer.Events() {
		m, ok := ev.(*kafka.Message)
		if !ok {
			continue
		}
		d.mu.Lock()
		if m.TopicPartition.Error != nil && d.err == nil {
			d.err = fmt.Errorf("dead-letter %s: %w", kafkax.Where(m), m.TopicPartition.Error)
		}
		d.pending--
		if d.pending == 0 {
			close(d.done)
		}
		d.mu.Unlock()
	}
}

// Send produces the dead-letter copy of msg.
func (d *deadLetters) Send(ctx context.Context, msg *kafka.Message, code, reason string) error {
	d.mu.Lock()
	if d.pending == 0 {
		d.done = make(chan struct{})
	}
	d.pending++
	d.mu.Unlock()
	if err := kafkax.Produce(ctx, d.producer, kafkax.DeadLetter(msg, d.topic, d.stage, code, reason, time.Now())); err != nil {
		d.mu.Lock()
		d.pending--
		if d.pending == 0 {
			close(d.done)
		}
		d.mu.Unlock()
		return fmt.Errorf("dead-letter %s: %w", kafkax.Where(msg), err)
	}
	d.counter.WithLabelValues(code).Inc()
	return nil
}

// Wait blocks until every record sent is acknowledged, and reports the
// first failure.
func (d *deadLetters) Wait(ctx context.Context) error {
	d.mu.Lock()
	done := d.done
	d.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// Close flushes and closes the producer.
func (d *deadLetters) Close() {
	d.producer.Flush(5000)
	d.producer.Close()
}
