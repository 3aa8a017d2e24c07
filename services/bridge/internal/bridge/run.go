package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/service"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// Run runs the bridge service until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	logger := cfg.Common.Logger("bridge")
	if err := service.RequireKafka(ctx, cfg.KafkaWait, map[string]string{"edge-bootstrap": cfg.EdgeBootstrap, "cloud-bootstrap": cfg.CloudBootstrap}); err != nil {
		return err
	}
	proc, err := service.New("bridge", cfg.Common, logger)
	if err != nil {
		return err
	}
	m := newMetrics(proc.Registry)
	b := &bridge{cfg: cfg, logger: logger, metrics: m}
	cefiotv1.RegisterBridgeServiceServer(proc.Admin.GRPC(), &adminServer{proc: proc, metrics: m})
	proc.Admin.AddGateway(cefiotv1.RegisterBridgeServiceHandlerFromEndpoint)
	return proc.Run(ctx, []string{"bridge"}, b.run)
}

type metrics struct {
	records, bytes prometheus.Counter
	txns, aborts   prometheus.Counter
	commit         prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		records: service.Counter(reg, "cefiot_bridge_records_forwarded_total", "Records committed to the cloud cluster."),
		bytes:   service.Counter(reg, "cefiot_bridge_bytes_forwarded_total", "Key and value bytes committed to the cloud cluster."),
		txns:    service.Counter(reg, "cefiot_bridge_transactions_total", "Committed transactions."),
		aborts:  service.Counter(reg, "cefiot_bridge_transaction_aborts_total", "Aborted transactions."),
		commit:  prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cefiot_bridge_commit_seconds", Help: "Transaction commit latency.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
	}
	reg.MustRegister(m.commit)
	return m
}

type bridge struct {
	cfg     Config
	logger  *slog.Logger
	metrics *metrics
}

// run is the bridge workload. Its transactional id is derived from the site,
// so starting a new instance fences the old one at the cloud brokers.
func (b *bridge) run(ctx context.Context, a *cefiotv1.Assignment, wl *cefiotv1.Workload) error {
	logger := b.logger.With("workload", wl.GetName(), "epoch", a.GetEpoch())
	cloudAdmin, err := kafka.NewAdminClient(kafkax.Config(b.cfg.CloudBootstrap, nil))
	if err != nil {
		return fmt.Errorf("cloud admin client: %w", err)
	}
	defer cloudAdmin.Close()
	edgeAdmin, err := kafka.NewAdminClient(kafkax.Config(b.cfg.EdgeBootstrap, nil))
	if err != nil {
		return fmt.Errorf("edge admin client: %w", err)
	}
	defer edgeAdmin.Close()

	if _, err := kafkax.EnsureTopicWith(ctx, cloudAdmin, kafkax.TopicSpec{
		Name: b.cfg.CheckpointTopic, Partitions: 1,
		Configs: map[string]string{"cleanup.policy": "compact"},
	}); err != nil {
		return err
	}
	producer, err := kafka.NewProducer(kafkax.Config(b.cfg.CloudBootstrap, map[string]any{
		"transactional.id":       "cefiot-bridge-" + b.cfg.Site,
		"enable.idempotence":     true,
		"linger.ms":              10,
		"batch.size":             4 << 20,
		"message.max.bytes":      16 << 20,
		"compression.type":       "none",
		"go.delivery.reports":    false,
		"transaction.timeout.ms": 120000,
	}))
	if err != nil {
		return fmt.Errorf("cloud producer: %w", err)
	}
	defer producer.Close()
	if err := producer.InitTransactions(ctx); err != nil {
		return fmt.Errorf("init transactions at the cloud cluster: %w", err)
	}
	next, err := loadCheckpoints(ctx, b.cfg.CloudBootstrap, b.cfg.CheckpointTopic, b.cfg.Site)
	if err != nil {
		return err
	}

	var assign []kafka.TopicPartition
	for _, topic := range b.cfg.Topics {
		n, err := kafkax.PartitionCount(edgeAdmin, topic)
		if err != nil {
			return fmt.Errorf("edge topic %s: %w", topic, err)
		}
		target := kafkax.CloudTopic(b.cfg.Site, topic)
		got, err := kafkax.EnsureTopicWith(ctx, cloudAdmin, kafkax.TopicSpec{Name: target, Partitions: n})
		if err != nil {
			return err
		}
		if got != n {
			return fmt.Errorf("cloud topic %s has %d partitions, edge topic %s has %d: partitions must match", target, got, topic, n)
		}
		for p := int32(0); p < int32(n); p++ {
			off := kafka.Offset(kafka.OffsetBeginning)
			if o, ok := next[sourcePartition{topic, p}]; ok {
				off = kafka.Offset(o)
			}
			t := topic
			assign = append(assign, kafka.TopicPartition{Topic: &t, Partition: p, Offset: off})
		}
	}
	consumer, err := kafka.NewConsumer(kafkax.Config(b.cfg.EdgeBootstrap, map[string]any{
		"group.id":                  "cefiot-bridge-" + b.cfg.Site,
		"enable.auto.commit":        false,
		"enable.auto.offset.store":  false,
		"isolation.level":           "read_committed",
		"auto.offset.reset":         "earliest",
		"fetch.max.bytes":           64 << 20,
		"max.partition.fetch.bytes": 16 << 20,
	}))
	if err != nil {
		return fmt.Errorf("edge consumer: %w", err)
	}
	defer consumer.Close()
	if err := consumer.Assign(assign); err != nil {
		return fmt.Errorf("assign edge partitions: %w", err)
	}
	logger.Info("bridge running", "topics", b.cfg.Topics, "partitions", len(assign), "resumed", len(next))

	for ctx.Err() == nil {
		batch, err := kafkax.ReadBatch(ctx, consumer, b.cfg.BatchSize, b.cfg.BatchWait)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			continue
		}
		if err := b.forward(ctx, producer, batch); err != nil {
			b.metrics.aborts.Inc()
			var kerr kafka.Error
			if errors.As(err, &kerr) && kerr.Code() == kafka.ErrFenced {
				return fmt.Errorf("%w: %v", errFenced, err)
			}
			abortCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = producer.AbortTransaction(abortCtx)
			cancel()
			// Restarting the workload resumes from the committed checkpoints.
			return fmt.Errorf("transaction of %d records: %w", len(batch), err)
		}
	}
	return nil
}

// forward writes batch and the advanced checkpoints in one transaction.
func (b *bridge) forward(ctx context.Context, producer *kafka.Producer, batch []*kafka.Message) error {
	if err := producer.BeginTransaction(); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	advanced := map[sourcePartition]int64{}
	var bytes int
	for _, msg := range batch {
		tp := msg.TopicPartition
		target := kafkax.CloudTopic(b.cfg.Site, *tp.Topic)
		out := &kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &target, Partition: tp.Partition},
			Key:            msg.Key,
			Value:          msg.Value,
			Headers:        msg.Headers,
			Timestamp:      msg.Timestamp,
		}
		if err := kafkax.Produce(ctx, producer, out); err != nil {
			return err
		}
		advanced[sourcePartition{*tp.Topic, tp.Partition}] = int64(tp.Offset) + 1
		bytes += len(msg.Key) + len(msg.Value)
	}
	for sp, nextOffset := range advanced {
		v, _ := json.Marshal(checkpoint{Site: b.cfg.Site, Topic: sp.Topic, Partition: sp.Partition, Next: nextOffset})
		if err := kafkax.Produce(ctx, producer, &kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &b.cfg.CheckpointTopic, Partition: 0},
			Key:            []byte(checkpointKey(b.cfg.Site, sp)),
			Value:          v,
		}); err != nil {
			return err
		}
	}
	start := time.Now()
	commitCtx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	if err := producer.CommitTransaction(commitCtx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	b.metrics.commit.Observe(time.Since(start).Seconds())
	b.metrics.txns.Inc()
	b.metrics.records.Add(float64(len(batch)))
	b.metrics.bytes.Add(float64(bytes))
	return nil
}
