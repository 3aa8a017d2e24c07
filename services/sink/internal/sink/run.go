package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"

	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/leasebound"
	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/libs/service"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
	"github.com/cefiot/cefiot/services/sink/internal/sites"
	"github.com/cefiot/cefiot/services/sink/internal/store"
)

// Run runs the sink service until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	logger := cfg.Common.Logger("sink")
	if err := service.RequireKafka(ctx, cfg.KafkaWait, map[string]kafkax.Conn{"kafka-bootstrap": cfg.Kafka(cfg.KafkaBootstrap)}); err != nil {
		return err
	}
	st, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			logger.Error("closing the frame store", "err", err)
		}
	}()
	proc, err := service.New("sink", cfg.Common, logger, cefiotv1.SinkService_ServiceDesc.ServiceName)
	if err != nil {
		return err
	}
	if err := proc.AuditTo(ctx, cfg.Kafka(cfg.KafkaBootstrap)); err != nil {
		return err
	}
	proc.RestartOnNewKafkaCredentials(cfg.Kafka(cfg.KafkaBootstrap))
	m := newMetrics(proc.Registry)
	s := &sink{cfg: cfg, logger: logger, metrics: m, store: st,
		// While the store's disk is full the sink's gRPC health says
		// NOT_SERVING (its reads still answer).
		serving: func(ok bool) { proc.Admin.SetServing(cefiotv1.SinkService_ServiceDesc.ServiceName, ok) }}
	// The edge sites, as their bridges' status reports tell them.
	known := sites.NewRegistry(nil)
	go func() {
		if err := sites.Follow(ctx, cfg.Kafka(cfg.KafkaBootstrap), pipeline.SinkGroup(cfg.Site), known, 5*time.Second, logger); err != nil {
			logger.Error("reading the sites' status reports stopped", "err", err)
		}
	}()
	api := &api{proc: proc, metrics: m, store: st, sites: known}
	cefiotv1.RegisterSinkServiceServer(proc.Admin.GRPC(), api)
	proc.Admin.AddGateway(cefiotv1.RegisterSinkServiceHandlerFromEndpoint)
	proc.Admin.Handle("GET /v1/frames/{frame_id}/jpeg", api.jpegHandler())
	proc.Admin.Handle("GET /v1/frames/{frame_id}/thumbnail", api.thumbnailHandler())
	if cfg.Index == "postgres" {
		// Replicas sharing the index all work at once: the consumer group
		// shares the partitions out and the index stores a frame once,
		// whichever replica gets it.
		logger.Info("running as one replica of the sink (shared index; no scheduler placement)")
		return proc.RunReplica(ctx, func(ctx context.Context) error {
			return s.run(ctx, nil, &cefiotv1.Workload{Name: pipeline.KindSink, Kind: pipeline.KindSink})
		})
	}
	return proc.Run(ctx, []string{pipeline.KindSink}, s.run)
}

// openStore opens the configured backend; errors name the config key.
func openStore(ctx context.Context, cfg Config, logger *slog.Logger) (*store.Store, error) {
	var objs store.Objects
	switch cfg.StoreBackend {
	case "s3":
		o, err := store.NewS3Objects(ctx, cfg.S3)
		if err != nil {
			return nil, fmt.Errorf("config keys s3-*: %w", err)
		}
		objs = o
	default:
		o, err := store.NewFSObjects(cfg.StoreDir)
		if err != nil {
			return nil, fmt.Errorf("config key store-dir: %w", err)
		}
		objs = o
	}
	if cfg.Index == "postgres" {
		idx, err := store.OpenPostgres(ctx, cfg.IndexPostgres)
		if err != nil {
			return nil, fmt.Errorf("config key index-dsn: %w", err)
		}
		st, err := store.New(ctx, idx, objs, logger)
		if err != nil {
			_ = idx.Close()
			return nil, fmt.Errorf("config key index-dsn: %w", err)
		}
		return st, nil
	}
	st, err := store.OpenWith(ctx, cfg.StoreDir, objs, logger)
	if err != nil {
		return nil, fmt.Errorf("config key store-dir: %w", err)
	}
	return st, nil
}

type metrics struct {
	in, stored, duplicates, bad prometheus.Counter
	bytes, storeErrors          prometheus.Counter
	diskFull                    prometheus.Gauge
	expired, expiredBytes       prometheus.Counter
	deadLetters                 *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		in:           service.Counter(reg, "cefiot_sink_records_in_total", "Records read from the cloud topics."),
		stored:       service.Counter(reg, "cefiot_sink_frames_stored_total", "Frames written to the store."),
		duplicates:   service.Counter(reg, "cefiot_sink_frames_duplicate_total", "Frames already in the store (replays), not written again."),
		bad:          service.Counter(reg, "cefiot_sink_bad_records_total", "Records the sink refused (each also goes to the dead-letter topic)."),
		bytes:        service.Counter(reg, "cefiot_sink_bytes_stored_total", "JPEG bytes written to the store."),
		storeErrors:  service.Counter(reg, "cefiot_sink_store_errors_total", "Failed writes to the store (the batch is retried; nothing is committed)."),
		expired:      service.Counter(reg, "cefiot_sink_frames_expired_total", "Frames deleted by retention."),
		expiredBytes: service.Counter(reg, "cefiot_sink_bytes_expired_total", "JPEG bytes deleted by retention."),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cefiot_sink_dead_letters_total", Help: "Records sent to the dead-letter topic, by reason code.",
		}, []string{"code"}),
	}
	m.diskFull = prometheus.NewGauge(prometheus.GaugeOpts{Name: "cefiot_sink_disk_full",
		Help: "1 while the store's disk is full: consumption stops, nothing is committed, and it starts again once a frame fits."})
	reg.MustRegister(m.deadLetters, m.diskFull)
	return m
}

type sink struct {
	cfg     Config
	logger  *slog.Logger
	metrics *metrics
	store   *store.Store
	serving func(bool) // the sink service's health
	// fullMu orders the disk-full transitions of concurrent stores, so
	// the gauge and the health always end with the last one.
	fullMu sync.Mutex
	full   bool
}

// run is the sink workload: at-least-once consumption (offsets committed
// after the frames are durable and refused records are in the dead-letter
// topic) into an idempotent store gives each frame exactly once in the
// store.
func (s *sink) run(ctx context.Context, a *cefiotv1.Assignment, wl *cefiotv1.Workload) error {
	logger := s.logger.With("workload", wl.GetName(), "epoch", a.GetEpoch())
	if _, err := kafkax.EnsureTopic(ctx, s.cfg.Kafka(s.cfg.KafkaBootstrap), kafkax.TopicSpec{Name: s.cfg.DeadLetterTopic, Partitions: 1}); err != nil {
		return err
	}
	consumer, err := kafka.NewConsumer(kafkax.Config(s.cfg.Kafka(s.cfg.KafkaBootstrap), map[string]any{
		"group.id":                           pipeline.SinkGroup(s.cfg.Site),
		"enable.auto.commit":                 false,
		"auto.offset.reset":                  "earliest",
		"isolation.level":                    "read_committed",
		"topic.metadata.refresh.interval.ms": 5000,
		// A replica that dies leaves its partitions to the others within
		// 10 s (the broker's minimum is 6 s), not librdkafka's 45 s.
		"session.timeout.ms":        10000,
		"heartbeat.interval.ms":     1000,
		"max.partition.fetch.bytes": pipeline.MaxRecordBytes,
	}))
	if err != nil {
		return fmt.Errorf("sink consumer: %w", err)
	}
	defer consumer.Close()
	dlq, err := newDeadLetters(s.cfg.Kafka(s.cfg.KafkaBootstrap), s.cfg.DeadLetterTopic, "sink", s.metrics.deadLetters, logger)
	if err != nil {
		return err
	}
	defer dlq.Close()
	if err := consumer.SubscribeTopics([]string{s.cfg.TopicPattern}, nil); err != nil {
		return fmt.Errorf("subscribe %s: %w", s.cfg.TopicPattern, err)
	}
	rctx, stopRetention := context.WithCancel(ctx)
	defer stopRetention()
	go s.retentionLoop(rctx, logger)
	logger.Info("sink running", "pattern", s.cfg.TopicPattern, "store", s.cfg.StoreDir, "backend", s.store.Objects().Describe(),
		"dead_letter_topic", s.cfg.DeadLetterTopic)
	for ctx.Err() == nil {
		batch, err := kafkax.ReadBatch(ctx, consumer, s.cfg.BatchSize, s.cfg.BatchWait)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			continue
		}
		if err := s.finishBatch(ctx, logger, consumer, dlq, batch); err != nil {
			return err
		}
	}
	return nil
}

// batchGrace is how long a batch in hand may take to finish after the run
// was asked to stop.
const batchGrace = 10 * time.Second

// finishBatch stores a batch and commits its offsets. A stop asked
// meanwhile (new credentials, the workload moving) lets it finish, for
// batchGrace at most and within the lease: stopping halfway would leave
// frames stored but uncommitted, read again by the next run.
func (s *sink) finishBatch(ctx context.Context, logger *slog.Logger, consumer *kafka.Consumer, dlq *deadLetters, batch []*kafka.Message) error {
	bctx, done := leasebound.GraceContext(ctx, batchGrace)
	defer done()
	if err := s.storeBatch(bctx, logger, dlq, batch); err != nil {
		s.metrics.storeErrors.Inc()
		return err
	}
	// Dead letters must be durable before the offsets move past them.
	if err := dlq.Wait(bctx); err != nil {
		return err
	}
	if _, err := consumer.Commit(); err != nil {
		var kerr kafka.Error
		if errors.As(err, &kerr) && kerr.Code() == kafka.ErrNoOffset {
			return nil
		}
		return fmt.Errorf("commit offsets: %w", err)
	}
	return nil
}

func (s *sink) retentionLoop(ctx context.Context, logger *slog.Logger) {
	if !s.cfg.Retention.Enabled() {
		return
	}
	t := time.NewTicker(s.cfg.RetentionInterval)
	defer t.Stop()
	for {
		res, err := s.store.ApplyRetention(ctx, s.cfg.Retention, time.Now())
		s.metrics.expired.Add(float64(res.Frames))
		s.metrics.expiredBytes.Add(float64(res.Bytes))
		if err != nil && ctx.Err() == nil {
			logger.Error("retention failed; retrying at the next interval", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// storeBatch stores a batch's records, up to StoreConcurrency at once:
// the store's writes wait on disk flushes and index commits, which
// overlap. The first error stops the batch; nothing of it is committed.
// A batch that wrote frames (duplicates write nothing) and stored all of
// them shows that a full disk has room again.
func (s *sink) storeBatch(ctx context.Context, logger *slog.Logger, dlq *deadLetters, batch []*kafka.Message) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.StoreConcurrency)
	var written atomic.Int64
	for _, msg := range batch {
		g.Go(func() error {
			wrote, err := s.storeRecord(gctx, logger, dlq, msg)
			if wrote {
				written.Add(1)
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if written.Load() > 0 {
		s.reportRoom(logger)
	}
	return nil
}

// storeRecord stores one record, or dead-letters it when it can never be
// stored, and says whether it wrote a frame. It returns an error only for
// failures worth retrying (the store or Kafka), which restart the
// workload without committing.
func (s *sink) storeRecord(ctx context.Context, logger *slog.Logger, dlq *deadLetters, msg *kafka.Message) (bool, error) {
	s.metrics.in.Inc()
	refuse := func(code string, err error) (bool, error) {
		s.metrics.bad.Inc()
		logger.Error("refusing record; sent to the dead-letter topic", "at", kafkax.Where(msg), "code", code, "err", err)
		return false, dlq.Send(ctx, msg, code, err.Error())
	}
	var ef cefiotv1.EnrichedFrame
	if err := proto.Unmarshal(msg.Value, &ef); err != nil {
		return refuse("decode", fmt.Errorf("not an enriched frame: %w", err))
	}
	if ef.GetFrame().GetFrameId() == "" {
		return refuse("invalid", errors.New("enriched frame has no frame id"))
	}
	if n := int64(len(ef.GetFrame().GetJpeg())); n > s.cfg.MaxFrameBytes {
		return refuse("too-large", fmt.Errorf("JPEG of %d bytes is over max-frame-bytes %d", n, s.cfg.MaxFrameBytes))
	}
	meta := metaFromProto(&ef, msg)
	meta.StoredTime = time.Now()
	stored, err := s.store.PutFrame(ctx, meta, ef.GetFrame().GetJpeg(), ef.GetThumbnailJpeg())
	if errors.Is(err, store.ErrInvalidID) || errors.Is(err, store.ErrInvalidFrame) {
		// A record the store refuses would be refused forever: dead-letter
		// it instead of blocking the partition.
		return refuse("invalid", err)
	}
	if err != nil {
		if isDiskFull(err) {
			s.reportDiskFull(logger, err)
		}
		return false, fmt.Errorf("store frame %s from %s: %w", meta.FrameID, kafkax.Where(msg), err)
	}
	if !stored {
		s.metrics.duplicates.Inc()
		return false, nil
	}
	s.metrics.stored.Inc()
	s.metrics.bytes.Add(float64(len(ef.GetFrame().GetJpeg())))
	return true, nil
}
