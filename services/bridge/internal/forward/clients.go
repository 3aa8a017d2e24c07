package forward

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/services/bridge/internal/checkpoint"
)

func (s *session) close() {
	if s.consumer != nil {
		_ = s.consumer.Close()
	}
	if s.producer != nil {
		kafkax.AbandonOrClose(s.producer, s.producerHung)
	}
	if s.edgeAdmin != nil {
		s.edgeAdmin.Close()
	}
	if s.cloudAdmin != nil {
		s.cloudAdmin.Close()
	}
}

func (s *session) open(ctx context.Context) error {
	var err error
	if s.cloudAdmin, err = kafka.NewAdminClient(kafkax.Config(s.cfg.CloudBootstrap, nil)); err != nil {
		return fmt.Errorf("cloud admin client: %w", err)
	}
	if s.edgeAdmin, err = kafka.NewAdminClient(kafkax.Config(s.cfg.EdgeBootstrap, nil)); err != nil {
		return fmt.Errorf("edge admin client: %w", err)
	}
	for _, spec := range []kafkax.TopicSpec{
		{Name: s.cpTopic, Partitions: 1, Configs: checkpoint.TopicConfig},
		{Name: s.gapTopic, Partitions: 1},
	} {
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := kafkax.EnsureTopicWith(tctx, s.cloudAdmin, spec)
		cancel()
		if err != nil {
			return err
		}
	}
	txnMs := int(s.cfg.TransactionTimeout / time.Millisecond)
	s.producer, err = kafka.NewProducer(kafkax.Config(s.cfg.CloudBootstrap, map[string]any{
		"transactional.id":                   s.cfg.TransactionID,
		"enable.idempotence":                 true,
		"transaction.timeout.ms":             txnMs,
		"message.timeout.ms":                 txnMs,
		"linger.ms":                          5,
		"batch.size":                         1 << 20,
		"batch.num.messages":                 10000,
		"message.max.bytes":                  pipeline.MaxRecordBytes,
		"queue.buffering.max.kbytes":         20 << 10, // above the largest record (16 MiB)
		"compression.type":                   "none",
		"socket.timeout.ms":                  min(20000, txnMs),
		"socket.connection.setup.timeout.ms": 3000,
		"reconnect.backoff.ms":               100,
		"reconnect.backoff.max.ms":           1000,
		"go.delivery.reports":                false,
	}))
	if err != nil {
		return fmt.Errorf("cloud producer: %w", err)
	}
	go func(ev chan kafka.Event) {
		for e := range ev {
			if kerr, ok := e.(kafka.Error); ok {
				s.logger.Debug("cloud producer", "err", kerr)
			}
		}
	}(s.producer.Events())
	if err := s.initTransactions(ctx); err != nil {
		return err
	}
	s.consumer, err = kafka.NewConsumer(kafkax.Config(s.cfg.EdgeBootstrap, map[string]any{
		"group.id":                   s.cfg.TransactionID,
		"enable.auto.commit":         false,
		"enable.auto.offset.store":   false,
		"isolation.level":            "read_committed",
		"auto.offset.reset":          "earliest",
		"fetch.max.bytes":            32 << 20,
		"max.partition.fetch.bytes":  pipeline.MaxRecordBytes,
		"queued.max.messages.kbytes": 64 << 10,
		// Fetch again soon after the local queue drains below its limit
		// (the default waits up to a second, which starves the producer).
		"fetch.queue.backoff.ms":             5,
		"topic.metadata.refresh.interval.ms": 10000,
	}))
	if err != nil {
		return fmt.Errorf("edge consumer: %w", err)
	}
	v, err := s.readEdge(ctx)
	if err != nil {
		return err
	}
	if err := s.applyView(ctx, v); err != nil {
		return err
	}
	s.findIdleGaps(v)
	return nil
}

// initTransactions retries while the cloud cluster does not answer.
func (s *session) initTransactions(ctx context.Context) error {
	err := kafkax.InitTransactions(ctx, s.producer, txnCallTimeout, func(err error) {
		s.logger.Warn("cloud cluster does not complete InitTransactions yet; retrying", "err", err)
	})
	if err != nil {
		if errors.Is(err, kafkax.ErrCallHung) {
			s.producerHung = err
		}
		return fmt.Errorf("init transactions at the cloud cluster: %w", err)
	}
	return nil
}
