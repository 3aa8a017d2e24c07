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
// ends. Offsets are committed once every event of a record is delivered or
// dead-lettered, so a restart delivers again what was in flight, never
// less.
//
// An event older than the policy's MaxAge when read is not news, and is
// not sent. In a partition the group never committed (a new notifier
// reading history) it is only counted (cefiot_notify_stale_total); after
// a restart or an outage it goes to the dead-letter topic with code
// "stale", since a target may not have taken it before.
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
	history, start, err := assign(ctx, p.Conn, consumer, p.Topic)
	if err != nil {
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

	n := &loop{params: p, consumer: consumer, deadLetter: dl, tracker: NewTracker(p.FrameURL), history: history, start: start, committed: map[partition]string{}}
	dctx, stopDelivery := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, t := range p.Targets {
		d := newDeliverer(t, p.Policy, dl, p.Logger, p.Metrics)
		n.deliverers = append(n.deliverers, d)
		n.progress = append(n.progress, newProgress())
		n.names = append(n.names, t.Name())
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
			if !errors.As(err, &kerr) || (kerr.Code() != kafka.ErrTimedOut && kerr.IsFatal()) {
				return fmt.Errorf("notify: consume: %w", err)
			}
		}
		if msg != nil {
			if err := n.handle(ctx, msg); err != nil {
				return err
			}
		}
		if time.Since(lastCommit) >= commitEvery {
			lastCommit = time.Now()
			n.commit()
		}
	}
	stopDelivery()
	wg.Wait()
	n.commit()
	return nil
}

// loop is the state of one notifier run.
type loop struct {
	params     Params
	consumer   *kafka.Consumer
	deadLetter DeadLetterFunc
	tracker    *Tracker
	// history: the partitions the group had no committed offset in;
	// start: each target's position per partition at the start.
	history map[int32]bool
	start   map[int32]map[string]int64
	// Per target, in the order of params.Targets.
	deliverers []*deliverer
	progress   []*progress
	names      []string
	// committed is the last checkpoint committed per partition (its
	// metadata, which includes every position).
	committed map[partition]string
}

// handle turns one record into events and hands each to the targets that
// have not taken it yet.
func (n *loop) handle(ctx context.Context, msg *kafka.Message) error {
	pt := partition{topic: *msg.TopicPartition.Topic, index: msg.TopicPartition.Partition}
	offset := int64(msg.TopicPartition.Offset)
	events, stale := n.params.fresh(observe(n.tracker, msg, n.params.Logger))
	now := time.Now()
	for i, d := range n.deliverers {
		// A target whose position is past this record took its events
		// before a restart: it is not sent them again.
		taken := offset < n.start[pt.index][n.names[i]]
		count := len(events)
		if taken {
			count = 0
		}
		done := n.progress[i].add(pt, offset, count)
		if taken {
			continue
		}
		for _, ev := range events {
			d.offer(ctx, job{ev: ev, enqueued: now, done: done})
		}
		for _, ev := range stale {
			n.params.Metrics.stale.Inc()
			if n.history[pt.index] {
				continue // from before this notifier's first commit
			}
			reason := fmt.Sprintf("older than %s when read again after a restart or an outage", n.params.Policy.withDefaults().MaxAge)
			if err := n.deadLetter(ctx, ev, n.names[i], CodeStale, reason); err != nil {
				return fmt.Errorf("notify: %w", err) // read again after the restart
			}
		}
	}
	return nil
}

// commit commits, per partition, the offset every target is past, with
// each target's own position in the metadata.
func (n *loop) commit() {
	if len(n.progress) == 0 {
		return
	}
	var tps []kafka.TopicPartition
	for _, pt := range n.progress[0].partitions() {
		cp, ok := checkpointOf(pt, n.names, n.progress)
		if !ok {
			continue
		}
		meta := cp.metadata()
		if n.committed[pt] == meta {
			continue
		}
		topic := pt.topic
		tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: pt.index, Offset: kafka.Offset(cp.offset), Metadata: &meta})
	}
	if len(tps) == 0 {
		return
	}
	if _, err := n.consumer.CommitOffsets(tps); err != nil {
		n.params.Logger.Warn("notify offsets not committed; retrying", "err", err)
		return
	}
	for _, tp := range tps {
		n.committed[partition{topic: *tp.Topic, index: tp.Partition}] = *tp.Metadata
	}
}

// assign takes every partition of topic at the group's committed offset
// (the start of the partition where none is), and returns the partitions
// that had none and each target's position from the commit metadata.
// There is no group membership to wait for: the scheduler runs one enrich
// workload, and its notifier with it.
func assign(ctx context.Context, conn kafkax.Conn, consumer *kafka.Consumer, topic string) (map[int32]bool, map[int32]map[string]int64, error) {
	partitions, err := kafkax.EnsureTopic(ctx, conn, kafkax.TopicSpec{Name: topic, Partitions: pipeline.DefaultPartitions})
	if err != nil {
		return nil, nil, fmt.Errorf("notify: %w", err)
	}
	tps := make([]kafka.TopicPartition, partitions)
	for i := range tps {
		tps[i] = kafka.TopicPartition{Topic: &topic, Partition: int32(i)}
	}
	committed, err := consumer.Committed(tps, 30000)
	if err != nil {
		return nil, nil, fmt.Errorf("notify: committed offsets of %s: %w", topic, err)
	}
	history := map[int32]bool{}
	start := map[int32]map[string]int64{}
	for i, tp := range committed {
		start[tp.Partition] = positionsFrom(tp.Metadata)
		if tp.Offset < 0 {
			committed[i].Offset = kafka.OffsetBeginning
			history[tp.Partition] = true
		}
	}
	if err := consumer.Assign(committed); err != nil {
		return nil, nil, fmt.Errorf("notify: assign %s: %w", topic, err)
	}
	return history, start, nil
}

// fresh splits events into the news and those too old to be news.
func (p Params) fresh(events []Event) (news, stale []Event) {
	maxAge := p.Policy.withDefaults().MaxAge
	for _, ev := range events {
		at := ev.StartTime
		if ev.EndTime != nil {
			at = *ev.EndTime
		}
		if time.Since(at) > maxAge {
			stale = append(stale, ev)
			continue
		}
		news = append(news, ev)
	}
	return news, stale
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
