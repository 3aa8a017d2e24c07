package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/service"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
	"github.com/cefiot/cefiot/services/capture/internal/motion"
	"github.com/cefiot/cefiot/services/capture/internal/source"
)

// Run runs the capture service until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	logger := cfg.Common.Logger("capture")
	if err := service.RequireKafka(ctx, cfg.KafkaWait, map[string]string{"kafka-bootstrap": cfg.KafkaBootstrap}); err != nil {
		return err
	}
	proc, err := service.New("capture", cfg.Common, logger)
	if err != nil {
		return err
	}
	m := newMetrics(proc.Registry)
	c := &capturer{cfg: cfg, logger: logger, metrics: m}
	cefiotv1.RegisterCaptureServiceServer(proc.Admin.GRPC(), &adminServer{proc: proc, metrics: m})
	proc.Admin.AddGateway(cefiotv1.RegisterCaptureServiceHandlerFromEndpoint)
	return proc.Run(ctx, []string{"capture"}, c.run)
}

type metrics struct {
	frames, motion, published, failed prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		frames:    service.Counter(reg, "cefiot_capture_frames_total", "Frames read from sources."),
		motion:    service.Counter(reg, "cefiot_capture_motion_frames_total", "Frames with motion."),
		published: service.Counter(reg, "cefiot_capture_frames_published_total", "Motion frames acknowledged by the site's Kafka cluster."),
		failed:    service.Counter(reg, "cefiot_capture_publish_errors_total", "Motion frames Kafka refused."),
	}
}

type capturer struct {
	cfg     Config
	logger  *slog.Logger
	metrics *metrics
}

// run is one camera's workload. It returns nil when a finite source (a file
// or folder) is exhausted and every frame is acknowledged.
func (c *capturer) run(ctx context.Context, a *cefiotv1.Assignment, wl *cefiotv1.Workload) error {
	cc, err := ParseCamera(wl.GetParams())
	if err != nil {
		return fmt.Errorf("workload %s: %w", wl.GetName(), err)
	}
	logger := c.logger.With("workload", wl.GetName(), "camera", cc.Camera, "epoch", a.GetEpoch())
	if _, err := kafkax.EnsureTopic(ctx, c.cfg.KafkaBootstrap, kafkax.TopicSpec{Name: c.cfg.Topic, Partitions: c.cfg.Partitions}); err != nil {
		return err
	}
	epoch, err := source.SessionEpoch(cc.Source)
	if err != nil {
		return fmt.Errorf("camera %s: %w", cc.Camera, err)
	}
	src, err := source.Open(cc.Source, source.Options{Realtime: cc.Realtime, FPS: cc.FPS, Logger: logger})
	if err != nil {
		return fmt.Errorf("camera %s: %w", cc.Camera, err)
	}
	defer src.Close()
	det, err := motion.NewDetector(cc.Motion)
	if err != nil {
		return fmt.Errorf("camera %s: %w", cc.Camera, err)
	}
	defer det.Close()

	// Idempotent producer; messages never time out, so a broker that is
	// briefly away delays frames instead of duplicating or dropping them.
	producer, err := kafka.NewProducer(kafkax.Config(c.cfg.KafkaBootstrap, map[string]any{
		"enable.idempotence": true,
		"acks":               "all",
		"message.timeout.ms": 0,
		"linger.ms":          5,
		"message.max.bytes":  16 << 20,
	}))
	if err != nil {
		return fmt.Errorf("capture producer: %w", err)
	}
	defer producer.Close()
	var deliveryErr error
	var mu sync.Mutex
	deliveries := make(chan struct{})
	go func() {
		defer close(deliveries)
		for ev := range producer.Events() {
			switch e := ev.(type) {
			case *kafka.Message:
				if e.TopicPartition.Error != nil {
					c.metrics.failed.Inc()
					mu.Lock()
					deliveryErr = fmt.Errorf("publish %s: %w", kafkax.Where(e), e.TopicPartition.Error)
					mu.Unlock()
				} else {
					c.metrics.published.Inc()
				}
			case kafka.Error:
				if e.IsFatal() {
					mu.Lock()
					deliveryErr = fmt.Errorf("producer: %w", e)
					mu.Unlock()
				}
			}
		}
	}()
	logger.Info("capturing", "source", src.Describe(), "session_epoch", epoch)
	node := c.cfg.Node
	for {
		mu.Lock()
		derr := deliveryErr
		mu.Unlock()
		if derr != nil {
			return derr
		}
		f, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("camera %s: read %s: %w", cc.Camera, cc.Source, err)
		}
		c.metrics.frames.Inc()
		res, err := det.Detect(f.Mat)
		if err != nil {
			return fmt.Errorf("camera %s frame %d: %w", cc.Camera, f.Index, err)
		}
		if !res.Motion {
			continue
		}
		c.metrics.motion.Inc()
		jpeg, err := motion.EncodeJPEG(f.Mat, c.cfg.JPEGQuality)
		if err != nil {
			return fmt.Errorf("camera %s frame %d: %w", cc.Camera, f.Index, err)
		}
		frame := &cefiotv1.Frame{
			FrameId:      FrameID(cc.Camera, epoch, f.Index),
			CameraId:     cc.Camera,
			SessionEpoch: epoch,
			Sequence:     f.Index,
			CaptureTime:  timestamppb.New(f.CaptureTime),
			Width:        int32(f.Mat.Cols()),
			Height:       int32(f.Mat.Rows()),
			MotionScore:  res.Score,
			Jpeg:         jpeg,
			Source:       src.Describe(),
			CaptureNode:  node,
		}
		for _, b := range res.Boxes {
			frame.Boxes = append(frame.Boxes, &cefiotv1.Box{X: int32(b.Min.X), Y: int32(b.Min.Y), Width: int32(b.Dx()), Height: int32(b.Dy())})
		}
		value, err := proto.Marshal(frame)
		if err != nil {
			return fmt.Errorf("encode frame %s: %w", frame.FrameId, err)
		}
		if err := kafkax.Produce(ctx, producer, &kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &c.cfg.Topic, Partition: kafka.PartitionAny},
			Key:            []byte(cc.Camera),
			Value:          value,
			Timestamp:      f.CaptureTime,
			Headers:        []kafka.Header{{Key: "cefiot-frame-id", Value: []byte(frame.FrameId)}},
		}); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	// Wait until every frame is acknowledged before calling the source done.
	for producer.Flush(500) > 0 {
		if ctx.Err() != nil {
			return nil
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if deliveryErr != nil {
		return deliveryErr
	}
	logger.Info("source finished; every motion frame acknowledged")
	return nil
}
