package enrich

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/libs/service"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// Run runs the enrich service until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	logger := cfg.Common.Logger("enrich")
	if err := service.RequireKafka(ctx, cfg.KafkaWait, map[string]kafkax.Conn{"kafka-bootstrap": cfg.Kafka(cfg.KafkaBootstrap)}); err != nil {
		return err
	}
	proc, err := service.New("enrich", cfg.Common, logger, cefiotv1.EnrichService_ServiceDesc.ServiceName)
	if err != nil {
		return err
	}
	if err := proc.AuditTo(ctx, cfg.Kafka(cfg.KafkaBootstrap)); err != nil {
		return err
	}
	proc.RestartOnNewKafkaCredentials(cfg.Kafka(cfg.KafkaBootstrap))
	m := newMetrics(proc.Registry)
	n, err := newNotifier(cfg, logger, proc.Registry)
	if err != nil {
		return err
	}
	defer n.close()
	labeler, err := newLabeler(cfg, proc.Registry)
	if err != nil {
		return err
	}
	if labeler != nil {
		defer func() { _ = labeler.Detector.Close() }()
		logger.Info("labelling motion frames", "detector", labeler.Detector.Name(), "every", labeler.Every)
	}
	e := &enricher{cfg: cfg, logger: logger, metrics: m, notifier: n, labeler: labeler}
	srv := &adminServer{proc: proc, metrics: m}
	cefiotv1.RegisterEnrichServiceServer(proc.Admin.GRPC(), srv)
	proc.Admin.AddGateway(cefiotv1.RegisterEnrichServiceHandlerFromEndpoint)
	// Enrich's transactions are fenced by Kafka (its transactional id comes
	// from the workload): a second owner is harmless, so it keeps running
	// while the site's etcd is away.
	proc.KeepRunningWhenFenced(func(*cefiotv1.Workload) bool { return true })
	return proc.Run(ctx, []string{pipeline.KindEnrich}, e.run)
}

type metrics struct {
	in, out, bad prometheus.Counter
	deadLetters  *prometheus.CounterVec
	thumbnails   prometheus.Histogram
	txns         prometheus.Counter
	aborts       prometheus.Counter
	commit       prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		in:  prometheus.NewCounter(prometheus.CounterOpts{Name: "cefiot_enrich_records_in_total", Help: "Records read from the input topic."}),
		out: prometheus.NewCounter(prometheus.CounterOpts{Name: "cefiot_enrich_records_out_total", Help: "Enriched records committed."}),
		bad: prometheus.NewCounter(prometheus.CounterOpts{Name: "cefiot_enrich_bad_records_total", Help: "Input records enrich refused (each goes to the dead-letter topic in the same transaction)."}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cefiot_enrich_dead_letters_total", Help: "Records committed to the dead-letter topic, by reason code.",
		}, []string{"code"}),
		thumbnails: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cefiot_enrich_thumbnail_bytes", Help: "Size of the thumbnails made.", Buckets: prometheus.ExponentialBuckets(512, 2, 10)}),
		txns:       prometheus.NewCounter(prometheus.CounterOpts{Name: "cefiot_enrich_transactions_total", Help: "Committed transactions."}),
		aborts:     prometheus.NewCounter(prometheus.CounterOpts{Name: "cefiot_enrich_transaction_aborts_total", Help: "Aborted transactions."}),
		commit:     prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cefiot_enrich_commit_seconds", Help: "Transaction commit latency.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
	}
	reg.MustRegister(m.in, m.out, m.bad, m.deadLetters, m.thumbnails, m.txns, m.aborts, m.commit)
	return m
}

type enricher struct {
	cfg      Config
	logger   *slog.Logger
	metrics  *metrics
	notifier *notifier // nil: no event targets configured
	labeler  *Labeler  // nil: detection off
}

// run is the enrich workload: a consumer assigned every input partition at
// the site enrich group's committed offsets and a transactional producer
// whose id is derived from the workload, so a stale owner of the workload
// is fenced by the broker. It returns nil once a handoff to another site
// is complete.
func (e *enricher) run(ctx context.Context, a *cefiotv1.Assignment, wl *cefiotv1.Workload) error {
	logger := e.logger.With("workload", wl.GetName(), "epoch", a.GetEpoch())
	params, err := ParseWorkloadParams(wl.GetParams(), WorkloadParams{
		ThumbnailWidth: e.cfg.ThumbnailWidth, InputTopic: e.cfg.InputTopic, OutputTopic: e.cfg.OutputTopic, OriginSite: e.cfg.Site,
	})
	if err != nil {
		return fmt.Errorf("workload %s: %w", wl.GetName(), err)
	}
	// Topics may come from the workload (an enrich moved to another site).
	e = e.withTopics(params.InputTopic, params.OutputTopic)
	if e.notifier == nil {
		return e.transform(ctx, logger, wl, params)
	}
	// The notifier reads what this workload commits. It stops with the
	// workload, and its failure restarts the workload.
	nctx, stop := context.WithCancel(ctx)
	defer stop()
	failed := make(chan error, 1)
	go func() {
		err := e.notifier.run(nctx, e, logger.With("part", "notify"))
		stop()
		failed <- err
	}()
	err = e.transform(nctx, logger, wl, params)
	stop()
	if nerr := <-failed; nerr != nil && err == nil && ctx.Err() == nil {
		return nerr
	}
	return err
}

// transform is the enrich loop of one workload.
func (e *enricher) transform(ctx context.Context, logger *slog.Logger, wl *cefiotv1.Workload, params WorkloadParams) (err error) {
	if _, err := kafkax.EnsureTopic(ctx, e.cfg.Kafka(e.cfg.KafkaBootstrap), kafkax.TopicSpec{Name: e.cfg.DeadLetterTopic, Partitions: 1}); err != nil {
		return err
	}
	inputPartitions, err := e.inputPartitions(ctx, wl.GetHomeSite() != "")
	if err != nil {
		return err
	}
	if _, err := kafkax.EnsureTopic(ctx, e.cfg.Kafka(e.cfg.KafkaBootstrap), kafkax.TopicSpec{Name: e.cfg.OutputTopic, Partitions: e.cfg.Partitions}); err != nil {
		return err
	}
	group := pipeline.EnrichGroup(e.cfg.Site)
	consumer, err := kafka.NewConsumer(kafkax.Config(e.cfg.Kafka(e.cfg.KafkaBootstrap), map[string]any{
		"group.id":             group,
		"enable.auto.commit":   false,
		"auto.offset.reset":    "earliest",
		"isolation.level":      "read_committed",
		"enable.partition.eof": false,
	}))
	if err != nil {
		return fmt.Errorf("enrich consumer: %w", err)
	}
	defer consumer.Close()
	producer, err := kafka.NewProducer(kafkax.Config(e.cfg.Kafka(e.cfg.KafkaBootstrap), map[string]any{
		"transactional.id":   pipeline.EnrichTransactionalID(e.cfg.Site, wl.GetName()),
		"enable.idempotence": true,
		// A transaction open when the site's brokers lose min.insync
		// must outlive the outage: one the coordinator aborts for its
		// age meanwhile leaves the resumed commit to a fenced producer,
		// which librdkafka may not report within the call's timeout.
		"transaction.timeout.ms": int(e.cfg.TransactionTimeout / time.Millisecond),
		"linger.ms":              5,
		"message.max.bytes":      pipeline.MaxRecordBytes,
		"go.delivery.reports":    false,
	}))
	if err != nil {
		return fmt.Errorf("enrich producer: %w", err)
	}
	// A producer stuck in a call is abandoned, not closed; the workload's
	// next run fences it.
	defer func() { kafkax.AbandonOrClose(producer, err) }()
	if err := kafkax.InitTransactions(ctx, producer, txnCallTimeout, func(err error) {
		logger.Warn("init transactions not complete yet; retrying", "err", err)
	}); err != nil {
		if ctx.Err() != nil {
			return nil // stopped
		}
		return fmt.Errorf("init transactions: %w", err)
	}
	h, err := e.assignInput(ctx, consumer, producer, e.cfg.InputTopic, inputPartitions, params.Handoff, wl.GetHomeSite() == "")
	if err != nil {
		return err
	}
	logger.Info("enrich running", "input", e.cfg.InputTopic, "output", e.cfg.OutputTopic, "group", group)
	tr := Transformer{Site: params.OriginSite, Node: e.cfg.Node, MaxRecordBytes: e.cfg.MaxRecordBytes, MaxPixels: e.cfg.MaxPixels,
		ThumbnailWidth: params.ThumbnailWidth, ThumbnailQuality: e.cfg.ThumbnailQuality, Labeler: e.labeler}
	for ctx.Err() == nil {
		if h.finished() {
			logger.Info("handoff complete: every partition reached the marker", "handoff", params.Handoff.ID, "to", params.Handoff.To)
			return nil
		}
		batch, err := kafkax.ReadBatch(ctx, consumer, e.cfg.BatchSize, e.cfg.BatchWait)
		if err != nil {
			return err
		}
		if len(batch) == 0 || ctx.Err() != nil {
			continue // stopping: the next owner reads the batch again
		}
		if err := e.commitBatch(ctx, logger, tr, consumer, producer, batch, h); err != nil {
			// Stopping (ctx ended) or failed: nothing of the batch is
			// committed. The abort is bounded by the lease; one that does
			// not finish in time is completed by the next owner's
			// InitTransactions.
			e.metrics.aborts.Inc()
			if errors.Is(err, kafkax.ErrCallHung) {
				return fmt.Errorf("transaction of %d records: %w", len(batch), err)
			}
			if aerr := kafkax.AbortTransaction(ctx, producer, txnCallTimeout); aerr != nil {
				logger.Warn("abort not complete; the next InitTransactions of this transactional id completes it", "err", aerr)
			}
			if ctx.Err() != nil {
				return nil // stopped
			}
			// Restarting the workload rewinds to the committed offsets.
			return fmt.Errorf("transaction of %d records: %w", len(batch), err)
		}
	}
	return nil
}

// txnCallTimeout bounds each transactional call (and the lease bounds it
// further, see leasebound).
const txnCallTimeout = 10 * time.Second

func (e *enricher) commitBatch(ctx context.Context, logger *slog.Logger, tr Transformer, consumer *kafka.Consumer, producer *kafka.Producer, batch []*kafka.Message, h *handoff) error {
	if err := producer.BeginTransaction(); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	next := map[partitionKey]kafka.TopicPartition{}
	produced := 0
	dead := map[string]int{}
	for _, msg := range batch {
		if err := ctx.Err(); err != nil {
			return err // stopping: abort rather than finish the batch
		}
		tp := msg.TopicPartition
		r := h.route(msg)
		if r == routeDrop {
			continue // after this enrich's handoff marker: the other site's
		}
		next[partitionKey{*tp.Topic, tp.Partition}] = kafka.TopicPartition{Topic: tp.Topic, Partition: tp.Partition, Offset: tp.Offset + 1}
		if r == routePass {
			continue // a handoff marker, or a record the other site enriched
		}
		e.metrics.in.Inc()
		value, ef, err := tr.Enrich(msg.Value)
		var br *BadRecordError
		if errors.As(err, &br) {
			// The dead letter is part of this transaction: it is committed
			// exactly when the input offset moves past the record.
			logger.Error("refusing record; sent to the dead-letter topic", "at", kafkax.Where(msg), "code", br.Code, "err", br.Reason)
			if err := kafkax.Produce(ctx, producer, kafkax.DeadLetter(msg, e.cfg.DeadLetterTopic, "enrich", br.Code, br.Reason, time.Now())); err != nil {
				return err
			}
			dead[br.Code]++
			continue
		}
		if err != nil {
			return err
		}
		out := &kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &e.cfg.OutputTopic, Partition: kafka.PartitionAny},
			Key:            []byte(ef.GetFrame().GetCameraId()),
			Value:          value,
			Timestamp:      ef.GetFrame().GetCaptureTime().AsTime(),
			// Enrich owns these two on an enriched record: the frame id
			// from the payload it validated, and the site.
			Headers: kafkax.SetHeaders(msg.Headers,
				kafka.Header{Key: pipeline.HeaderFrameID, Value: []byte(ef.GetFrame().GetFrameId())},
				kafka.Header{Key: pipeline.HeaderSite, Value: []byte(tr.Site)}),
		}
		if err := kafkax.Produce(ctx, producer, out); err != nil {
			return err
		}
		produced++
		e.metrics.thumbnails.Observe(float64(len(ef.GetThumbnailJpeg())))
	}
	offsets := make([]kafka.TopicPartition, 0, len(next))
	for _, tp := range next {
		tp.Metadata = h.metadata(tp.Partition)
		offsets = append(offsets, tp)
	}
	meta, err := consumer.GetConsumerGroupMetadata()
	if err != nil {
		return fmt.Errorf("group metadata: %w", err)
	}
	if err := kafkax.SendOffsetsToTransaction(ctx, producer, offsets, meta, txnCallTimeout); err != nil {
		return fmt.Errorf("send offsets: %w", err)
	}
	start := time.Now()
	if err := kafkax.CommitTransaction(ctx, producer, txnCallTimeout, func(err error) {
		logger.Warn("commit not complete yet; retrying", "err", err)
	}); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	e.metrics.commit.Observe(time.Since(start).Seconds())
	e.metrics.txns.Inc()
	e.metrics.out.Add(float64(produced))
	for code, n := range dead {
		e.metrics.bad.Add(float64(n))
		e.metrics.deadLetters.WithLabelValues(code).Add(float64(n))
	}
	return nil
}

type partitionKey struct {
	topic     string
	partition int32
}
