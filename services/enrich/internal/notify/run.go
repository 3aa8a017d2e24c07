package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"google.golang.org/protobuf/proto"

	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/pipeline"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// Params are what one notifier run reads and where it delivers.
type Params struct {
	Conn kafkax.Conn
	// Topic holds the enriched frames; Group is the notifier's consumer
	// group; DeadLetterTopic takes the events no target could take.
	Topic, Group, DeadLetterTopic string
	Targets                       []Target
	Policy                        Policy
	FrameURL                      FrameURL
	Logger                        *slog.Logger
	Metrics                       *Metrics
}

// commitEvery is how often finished offsets are committed.
const commitEvery = time.Second

// Run reads the enriched frames from where the group left off (from the
// start of the topic for a new group) and delivers their events until ctx
// ends. An event older than the policy's MaxAge when read is not news: it
// is skipped and counted (cefiot_notify_stale_total), not sent. Offsets are committed
// once every event of a record is delivered or dead-lettered, so a
// restart delivers again what was in flight, never less.
func Run(ctx context.Context, p Params) error {
	if _, err := kafkax.EnsureTopic(ctx, p.Conn, kafkax.TopicSpec{Name: p.DeadLetterTopic, Partitions: 1}); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	consumer, err := kafka.NewConsumer(p.Conn.Config(map[string]any{
		"group.id":             p.Group,
		"enable.auto.commit":   false,
		"auto.offset.reset":    "earliest",
		"isolation.level":      "read_committed",
		"enable.partition.eof": false,
	}))
	if err != nil {
		return fmt.Errorf("notify consumer: %w", err)
	}
	defer consumer.Close()
	if err := assign(ctx, p.Conn, consumer, p.Topic); err != nil {
		return err
	}
	producer, err := kafka.NewProducer(p.Conn.Config(map[string]any{
		"enable.idempotence":  true,
		"acks":                "all",
		"linger.ms":           5,
		"message.max.bytes":   pipeline.MaxRecordBytes,
		"go.delivery.reports": true,
	}))
	if err != nil {
		return fmt.Errorf("notify dead-letter producer: %w", err)
	}
	defer producer.Close()
	dl := deadLetterTo(producer, p.DeadLetterTopic)

	prog := newProgress()
	tracker := NewTracker(p.FrameURL)
	dctx, stopDelivery := context.WithCancel(ctx)
	var wg sync.WaitGroup
	deliverers := make([]*deliverer, 0, len(p.Targets))
	for _, t := range p.Targets {
		d := newDeliverer(t, p.Policy, dl, p.Logger, p.Metrics)
		deliverers = append(deliverers, d)
		wg.Add(1)
		go func() { defer wg.Done(); d.run(dctx) }()
	}
	defer func() { stopDelivery(); wg.Wait() }()
	p.Logger.Info("notifier running", "topic", p.Topic, "group", p.Group, "targets", len(p.Targets))

	lastCommit := time.Now()
	for ctx.Err() == nil {
		msg, err := consumer.ReadMessage(100 * time.Millisecond)
		if err != nil {
			var kerr kafka.Error
			if errors.As(err, &kerr) && (kerr.Code() == kafka.ErrTimedOut || !kerr.IsFatal()) {
				err = nil
			} else {
				return fmt.Errorf("notify: consume: %w", err)
			}
		}
		if msg != nil {
			events := p.fresh(observe(tracker, msg, p.Logger))
			pt := partition{topic: *msg.TopicPartition.Topic, index: msg.TopicPartition.Partition}
			done := prog.add(pt, int64(msg.TopicPartition.Offset), len(events)*len(deliverers))
			now := time.Now()
			for _, ev := range events {
				for _, d := range deliverers {
					d.offer(ctx, job{ev: ev, enqueued: now, done: done})
				}
			}
		}
		if time.Since(lastCommit) >= commitEvery {
			lastCommit = time.Now()
			commit(consumer, prog, p.Logger)
		}
	}
	stopDelivery()
	wg.Wait()
	commit(consumer, prog, p.Logger)
	return nil
}

// assign takes every partition of topic at the group's committed offset
// (the start of the partition where none is). There is no group
// membership to wait for: the scheduler runs one enrich workload, and its
// notifier with it.
func assign(ctx context.Context, conn kafkax.Conn, consumer *kafka.Consumer, topic string) error {
	partitions, err := kafkax.EnsureTopic(ctx, conn, kafkax.TopicSpec{Name: topic, Partitions: pipeline.DefaultPartitions})
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	tps := make([]kafka.TopicPartition, partitions)
	for i := range tps {
		tps[i] = kafka.TopicPartition{Topic: &topic, Partition: int32(i)}
	}
	committed, err := consumer.Committed(tps, 30000)
	if err != nil {
		return fmt.Errorf("notify: committed offsets of %s: %w", topic, err)
	}
	for i, tp := range committed {
		if tp.Offset < 0 {
			committed[i].Offset = kafka.OffsetBeginning
		}
	}
	if err := consumer.Assign(committed); err != nil {
		return fmt.Errorf("notify: assign %s: %w", topic, err)
	}
	return nil
}

// fresh drops (and counts) the events too old to be news.
func (p Params) fresh(events []Event) []Event {
	maxAge := p.Policy.withDefaults().MaxAge
	out := events[:0]
	for _, ev := range events {
		at := ev.StartTime
		if ev.EndTime != nil {
			at = *ev.EndTime
		}
		if time.Since(at) > maxAge {
			p.Metrics.stale.Inc()
			continue
		}
		out = append(out, ev)
	}
	return out
}

// observe decodes one enriched frame and returns its events. Enrich wrote
// the record, so it decodes; one that does not gives no event.
func observe(t *Tracker, msg *kafka.Message, logger *slog.Logger) []Event {
	var ef cefiotv1.EnrichedFrame
	if err := proto.Unmarshal(msg.Value, &ef); err != nil {
		logger.Warn("not an enriched frame; no event from it", "at", kafkax.Where(msg), "err", err)
		return nil
	}
	return t.Observe(&ef, time.Now())
}

// commit commits the offsets whose events are all finished.
func commit(c *kafka.Consumer, prog *progress, logger *slog.Logger) {
	offsets := prog.take()
	if len(offsets) == 0 {
		return
	}
	tps := make([]kafka.TopicPartition, 0, len(offsets))
	for pt, off := range offsets {
		topic := pt.topic
		tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: pt.index, Offset: kafka.Offset(off)})
	}
	if _, err := c.CommitOffsets(tps); err != nil {
		prog.undo(offsets)
		logger.Warn("notify offsets not committed; retrying", "err", err)
	}
}

// deadLetterTo writes undeliverable events to topic: the event as JSON,
// keyed by camera, with the reason in the dead-letter headers, and waits
// for the write to be acknowledged.
func deadLetterTo(p *kafka.Producer, topic string) DeadLetterFunc {
	return func(ctx context.Context, ev Event, target, code, reason string) error {
		body, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
		delivered := make(chan kafka.Event, 1)
		msg := &kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
			Key:            []byte(ev.Camera),
			Value:          body,
			Headers: []kafka.Header{
				{Key: pipeline.HeaderDLQReason, Value: []byte(target + ": " + reason)},
				{Key: pipeline.HeaderDLQCode, Value: []byte(code)},
				{Key: pipeline.HeaderDLQStage, Value: []byte("notify")},
				{Key: pipeline.HeaderDLQTime, Value: []byte(time.Now().UTC().Format(time.RFC3339Nano))},
				{Key: pipeline.HeaderEventID, Value: []byte(ev.EventID)},
			},
		}
		if err := p.Produce(msg, delivered); err != nil {
			return fmt.Errorf("dead letter: %w", err)
		}
		select {
		case e := <-delivered:
			if m, ok := e.(*kafka.Message); ok && m.TopicPartition.Error != nil {
				return fmt.Errorf("dead letter: %w", m.TopicPartition.Error)
			}
			return nil
		case <-ctx.Done():
			return fmt.Errorf("dead letter: %w", ctx.Err())
		}
	}
}
