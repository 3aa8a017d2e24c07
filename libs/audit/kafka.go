package audit

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/pipeline"
)

// Kafka appends records to the site's audit topic with an idempotent
// producer, without making the audited call wait: a record is queued (and
// logged at once); one the producer cannot take or deliver is counted and
// logged as lost, never silently dropped.
type Kafka struct {
	producer *kafka.Producer
	topic    string
	logger   *slog.Logger
	written  *prometheus.CounterVec
	done     chan struct{}
}

// NewKafka connects to the site's cluster at conn and registers
// cefiot_audit_records_total{result="written|lost"} on reg.
func NewKafka(conn kafkax.Conn, logger *slog.Logger, reg prometheus.Registerer) (*Kafka, error) {
	p, err := kafka.NewProducer(kafkax.Config(conn, map[string]any{
		"enable.idempotence": true,
		"acks":               "all",
		"linger.ms":          20,
		// A record waits up to ten minutes for a broker that is away.
		"message.timeout.ms": 600000,
	}))
	if err != nil {
		return nil, fmt.Errorf("audit producer: %w", err)
	}
	k := &Kafka{
		producer: p, topic: pipeline.TopicAudit, logger: logger, done: make(chan struct{}),
		written: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cefiot_audit_records_total", Help: "Audit records of state-changing calls, by whether they reached the audit topic.",
		}, []string{"result"}),
	}
	if reg != nil {
		if err := reg.Register(k.written); err != nil {
			p.Close()
			return nil, fmt.Errorf("register audit metrics: %w", err)
		}
	}
	go k.deliveries()
	return k, nil
}

func (k *Kafka) deliveries() {
	defer close(k.done)
	for ev := range k.producer.Events() {
		m, ok := ev.(*kafka.Message)
		if !ok {
			continue
		}
		if m.TopicPartition.Error != nil {
			k.written.WithLabelValues("lost").Inc()
			k.logger.Error("audit record lost", "record", string(m.Value), "err", m.TopicPartition.Error)
			continue
		}
		k.written.WithLabelValues("written").Inc()
	}
}

// Append queues r for the audit topic and logs it.
func (k *Kafka) Append(ctx context.Context, r Record) {
	logRecord(ctx, k.logger, r)
	b, err := r.Encode()
	if err == nil {
		topic := k.topic
		err = k.producer.Produce(&kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
			Key:            []byte(r.Service), Value: b, Timestamp: r.Time,
		}, nil)
	}
	if err != nil {
		k.written.WithLabelValues("lost").Inc()
		k.logger.Error("audit record lost", "action", r.Action, "who", r.Who, "err", err)
	}
}

// Close delivers what is queued (for up to ten seconds) and stops.
func (k *Kafka) Close() {
	if left := k.producer.Flush(10000); left > 0 {
		k.logger.Error("audit records not delivered at shutdown", "records", left)
	}
	k.producer.Close()
	<-k.done
}

// Retention is how long the audit topic keeps its records.
const Retention = 90 * 24 * time.Hour

// EnsureTopic creates the site's audit topic unless it exists: one
// partition (one order for the whole trail), kept for Retention.
func EnsureTopic(ctx context.Context, conn kafkax.Conn) error {
	_, err := kafkax.EnsureTopic(ctx, conn, kafkax.TopicSpec{
		Name: pipeline.TopicAudit, Partitions: 1,
		Configs: map[string]string{"retention.ms": strconv.FormatInt(Retention.Milliseconds(), 10), "cleanup.policy": "delete"},
	})
	if err != nil {
		return fmt.Errorf("audit topic: %w", err)
	}
	return nil
}

// Start returns the writer of the site's audit trail at conn, and creates
// the audit topic in the background (retrying until it exists or ctx
// ends), so a process does not wait for Kafka to serve its admin API.
// Records of the first seconds wait in the producer for the topic.
func Start(ctx context.Context, conn kafkax.Conn, logger *slog.Logger, reg prometheus.Registerer) (*Kafka, error) {
	k, err := NewKafka(conn, logger, reg)
	if err != nil {
		return nil, err
	}
	go func() {
		wait := time.Second
		for {
			err := EnsureTopic(ctx, conn)
			if err == nil || ctx.Err() != nil {
				return
			}
			logger.Warn("cannot create the audit topic yet; retrying", "err", err, "in", wait)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, 30*time.Second)
		}
	}()
	return k, nil
}
