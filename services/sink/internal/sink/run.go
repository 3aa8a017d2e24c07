package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/service"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
	"github.com/cefiot/cefiot/services/sink/internal/store"
)

// Run runs the sink service until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	logger := cfg.Common.Logger("sink")
	if err := service.RequireKafka(ctx, cfg.KafkaWait, map[string]string{"kafka-bootstrap": cfg.KafkaBootstrap}); err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.StoreDir, logger)
	if err != nil {
		return fmt.Errorf("config key store-dir: %w", err)
	}
	defer st.Close()
	proc, err := service.New("sink", cfg.Common, logger)
	if err != nil {
		return err
	}
	m := newMetrics(proc.Registry)
	s := &sink{cfg: cfg, logger: logger, metrics: m, store: st}
	api := &api{proc: proc, metrics: m, store: st}
	cefiotv1.RegisterSinkServiceServer(proc.Admin.GRPC(), api)
	proc.Admin.AddGateway(cefiotv1.RegisterSinkServiceHandlerFromEndpoint)
	proc.Admin.Handle("GET /v1/frames/{frame_id}/jpeg", api.jpegHandler())
	return proc.Run(ctx, []string{"sink"}, s.run)
}

type metrics struct {
	in, stored, duplicates, bad prometheus.Counter
	bytes                       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		in:         service.Counter(reg, "cefiot_sink_records_in_total", "Records read from the cloud topics."),
		stored:     service.Counter(reg, "cefiot_sink_frames_stored_total", "Frames written to the store."),
		duplicates: service.Counter(reg, "cefiot_sink_frames_duplicate_total", "Frames already in the store (replays), not written again."),
		bad:        service.Counter(reg, "cefiot_sink_bad_records_total", "Records that could not be decoded (skipped, logged with their offset)."),
		bytes:      service.Counter(reg, "cefiot_sink_bytes_stored_total", "JPEG bytes written to the store."),
	}
}

type sink struct {
	cfg     Config
	logger  *slog.Logger
	metrics *metrics
	store   *store.Store
}

// run is the sink workload: at-least-once consumption (offsets committed
// after the frames are durable) into an idempotent store gives each frame
// exactly once in the store.
func (s *sink) run(ctx context.Context, a *cefiotv1.Assignment, wl *cefiotv1.Workload) error {
	logger := s.logger.With("workload", wl.GetName(), "epoch", a.GetEpoch())
	consumer, err := kafka.NewConsumer(kafkax.Config(s.cfg.KafkaBootstrap, map[string]any{
		"group.id":                           "cefiot-sink-" + s.cfg.Site,
		"enable.auto.commit":                 false,
		"auto.offset.reset":                  "earliest",
		"isolation.level":                    "read_committed",
		"topic.metadata.refresh.interval.ms": 5000,
		"max.partition.fetch.bytes":          16 << 20,
	}))
	if err != nil {
		return fmt.Errorf("sink consumer: %w", err)
	}
	defer consumer.Close()
	if err := consumer.SubscribeTopics([]string{s.cfg.TopicPattern}, nil); err != nil {
		return fmt.Errorf("subscribe %s: %w", s.cfg.TopicPattern, err)
	}
	logger.Info("sink running", "pattern", s.cfg.TopicPattern, "store", s.cfg.StoreDir)
	for ctx.Err() == nil {
		batch, err := kafkax.ReadBatch(ctx, consumer, s.cfg.BatchSize, s.cfg.BatchWait)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			continue
		}
		for _, msg := range batch {
			if err := s.storeRecord(ctx, logger, msg); err != nil {
				return err
			}
		}
		if _, err := consumer.Commit(); err != nil {
			var kerr kafka.Error
			if errors.As(err, &kerr) && kerr.Code() == kafka.ErrNoOffset {
				continue
			}
			return fmt.Errorf("commit offsets: %w", err)
		}
	}
	return nil
}

func (s *sink) storeRecord(ctx context.Context, logger *slog.Logger, msg *kafka.Message) error {
	s.metrics.in.Inc()
	var ef cefiotv1.EnrichedFrame
	if err := proto.Unmarshal(msg.Value, &ef); err != nil || ef.GetFrame().GetFrameId() == "" {
		s.metrics.bad.Inc()
		if err == nil {
			err = errors.New("no frame id")
		}
		logger.Error("skipping record that is not an enriched frame", "at", kafkax.Where(msg), "err", err)
		return nil
	}
	meta := metaFromProto(&ef, msg)
	meta.StoredTime = time.Now()
	stored, err := s.store.Put(ctx, meta, ef.GetFrame().GetJpeg())
	if errors.Is(err, store.ErrInvalidID) || errors.Is(err, store.ErrInvalidFrame) {
		// A record the store refuses would be refused forever: count and
		// log it with its position instead of blocking the partition.
		s.metrics.bad.Inc()
		logger.Error("skipping frame the store refuses", "at", kafkax.Where(msg), "frame", meta.FrameID, "err", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("store frame %s from %s: %w", meta.FrameID, kafkax.Where(msg), err)
	}
	if stored {
		s.metrics.stored.Inc()
		s.metrics.bytes.Add(float64(len(ef.GetFrame().GetJpeg())))
	} else {
		s.metrics.duplicates.Inc()
	}
	return nil
}
