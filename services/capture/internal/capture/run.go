package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"gocv.io/x/gocv"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/libs/redact"
	"github.com/cefiot/cefiot/libs/service"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
	"github.com/cefiot/cefiot/services/capture/internal/event"
	"github.com/cefiot/cefiot/services/capture/internal/motion"
	"github.com/cefiot/cefiot/services/capture/internal/source"
)

// Run runs the capture service until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	logger := cfg.Common.Logger("capture")
	if err := service.RequireKafka(ctx, cfg.KafkaWait, map[string]kafkax.Conn{"kafka-bootstrap": cfg.Kafka(cfg.KafkaBootstrap)}); err != nil {
		return err
	}
	reg, err := NewRegistry(cfg.CamerasFile, logger)
	if err != nil {
		return fmt.Errorf("config key cameras: %w", err)
	}
	proc, err := service.New("capture", cfg.Common, logger, cefiotv1.CaptureService_ServiceDesc.ServiceName,
		cefiotv1.CaptureService_UpdateCamera_FullMethodName)
	if err != nil {
		return err
	}
	if err := proc.AuditTo(ctx, cfg.Kafka(cfg.KafkaBootstrap)); err != nil {
		return err
	}
	// A camera's run is not restarted for new credentials: that would
	// reconnect a live camera and miss its frames. Its publisher renews
	// its producer instead.
	creds := proc.WatchKafkaCredentials(cfg.Kafka(cfg.KafkaBootstrap))
	m := newMetrics(proc.Registry)
	c := &capturer{cfg: cfg, logger: logger, metrics: m, registry: reg, creds: creds}
	cefiotv1.RegisterCaptureServiceServer(proc.Admin.GRPC(), &adminServer{proc: proc, metrics: m, registry: reg})
	proc.Admin.AddGateway(cefiotv1.RegisterCaptureServiceHandlerFromEndpoint)
	go reg.Watch(ctx, 2*time.Second)
	// Frame ids come from the content (a file's, or a live picture's): a
	// second capture of the camera makes the same ids, which the sink
	// stores once, so capture keeps running while the site's etcd is away.
	proc.KeepRunningWhenFenced(func(*cefiotv1.Workload) bool { return true })
	return proc.Run(ctx, []string{pipeline.KindCapture}, c.run)
}

type metrics struct {
	frames, motion, published, failed prometheus.Counter
	online                            *prometheus.GaugeVec
	reconnects, events, globals       *prometheus.CounterVec
	subStreamPictures                 *prometheus.CounterVec
	statusChanges, producerRenewals   prometheus.Counter
	// The disk spool (see spooler.go).
	spooled, drained, spoolDropped prometheus.Counter
	spoolFrames, spoolBytes        *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		frames:           service.Counter(reg, "cefiot_capture_frames_total", "Frames read from sources."),
		motion:           service.Counter(reg, "cefiot_capture_motion_frames_total", "Frames with motion."),
		published:        service.Counter(reg, "cefiot_capture_frames_published_total", "Frames acknowledged by the site's Kafka cluster."),
		failed:           service.Counter(reg, "cefiot_capture_publish_errors_total", "Frames Kafka refused."),
		statusChanges:    service.Counter(reg, "cefiot_capture_camera_status_changes_total", "Camera online/offline changes published."),
		producerRenewals: service.Counter(reg, "cefiot_capture_producer_renewals_total", "Kafka producers replaced with new credentials (the camera kept running)."),
		spooled:          service.Counter(reg, "cefiot_capture_spooled_frames_total", "Frames written to the disk spool because the site's Kafka cluster did not acknowledge in time."),
		drained:          service.Counter(reg, "cefiot_capture_spool_drained_frames_total", "Spooled frames Kafka acknowledged (and left the spool)."),
		spoolDropped:     service.Counter(reg, "cefiot_capture_spool_dropped_frames_total", "Frames dropped from a full spool, the oldest first: lost, a gap in what reaches the cloud."),
		spoolFrames: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cefiot_capture_spool_frames", Help: "Frames waiting in the camera's disk spool.",
		}, []string{"camera"}),
		spoolBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cefiot_capture_spool_bytes", Help: "Bytes of the frames waiting in the camera's disk spool.",
		}, []string{"camera"}),
		online: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cefiot_capture_camera_online", Help: "1 while the camera's source delivers frames, 0 while it is offline.",
		}, []string{"camera"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cefiot_capture_camera_reconnects_total", Help: "Times a camera's source went offline.",
		}, []string{"camera"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cefiot_capture_events_total", Help: "Motion events started.",
		}, []string{"camera"}),
		globals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cefiot_capture_global_changes_total", Help: "Frames where too much changed at once to be motion (light switch, exposure jump).",
		}, []string{"camera"}),
		subStreamPictures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cefiot_capture_substream_pictures_total", Help: "Two-stream cameras: frames kept with the sub-stream's picture, the main stream having none of their moment (down, connecting, or the detector far behind).",
		}, []string{"camera"}),
	}
	reg.MustRegister(m.online, m.reconnects, m.events, m.globals, m.subStreamPictures, m.spoolFrames, m.spoolBytes)
	return m
}

type capturer struct {
	cfg      Config
	logger   *slog.Logger
	metrics  *metrics
	registry *Registry
	creds    *kafkax.CredentialWatch
}

// run is one camera's workload. It returns nil when a finite source (a file
// or an unwatched folder) is exhausted and every frame is acknowledged.
func (c *capturer) run(ctx context.Context, a *cefiotv1.Assignment, wl *cefiotv1.Workload) error {
	id, params, err := ParseCamera(wl.GetParams())
	if err != nil {
		return fmt.Errorf("workload %s: %w", wl.GetName(), err)
	}
	cam, err := c.registry.Attach(id, params)
	if err != nil {
		return fmt.Errorf("workload %s: %w", wl.GetName(), err)
	}
	defer c.registry.Detach(cam)
	logger := c.logger.With("workload", wl.GetName(), "camera", id, "epoch", a.GetEpoch())
	for _, t := range []string{c.cfg.Topic, c.cfg.StatusTopic} {
		if _, err := kafkax.EnsureTopic(ctx, c.cfg.Kafka(c.cfg.KafkaBootstrap), kafkax.TopicSpec{Name: t, Partitions: c.cfg.Partitions}); err != nil {
			return err
		}
	}
	pub, err := newPublisher(c.cfg.Kafka(c.cfg.KafkaBootstrap), c.cfg.Topic, c.metrics)
	if err != nil {
		return err
	}
	defer pub.close()
	sp, err := newSpooler(pub, filepath.Join(c.cfg.SpoolDir, id), c.cfg.SpoolMaxBytes, c.cfg.SpoolAfter, id, cam, logger, c.metrics)
	if err != nil {
		return err
	}
	pub.spool.Store(sp)
	renewing, stopRenewing := context.WithCancel(ctx)
	defer stopRenewing()
	go pub.renewOnChange(renewing, c.creds, logger)
	// A change of source (through the API or the file) starts a new
	// session; other changes apply at the next frame.
	for {
		err := c.session(ctx, logger, id, cam, pub)
		if errors.Is(err, errSourceChanged) {
			continue
		}
		if err != nil {
			cam.update(func(s *CameraState) { s.LastError = err.Error() })
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		if err := pub.flush(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		logger.Info("source finished; every frame acknowledged")
		return nil
	}
}

var errSourceChanged = errors.New("source changed")

// endOfSource is the offline reason of a file or folder that was read to
// its end (not a reconnect).
const endOfSource = "end of source"

// session reads one source until it ends, ctx ends or the source setting
// changes (errSourceChanged).
func (c *capturer) session(ctx context.Context, logger *slog.Logger, id string, cam *CameraRun, pub *publisher) error {
	version := cam.Version()
	set := cam.Settings()
	epoch, err := sessionEpoch(set)
	if err != nil {
		return fmt.Errorf("camera %s: %w", id, err)
	}
	status := func(online bool, reason string) {
		c.publishStatus(ctx, pub, cam, id, set.Source, online, reason)
	}
	srcOpts := source.Options{Realtime: set.Realtime, Logger: logger, Watch: set.Watch, Accel: c.cfg.Accel()}
	var src source.Source
	if set.DetectSource != "" {
		src, err = source.OpenPaired(set.DetectSource, set.Source, srcOpts, source.StreamOptions{OnStatus: status})
	} else {
		src, err = source.Open(set.Source, srcOpts, source.StreamOptions{OnStatus: status})
	}
	if err != nil {
		status(false, err.Error())
		return fmt.Errorf("camera %s: %w", id, err)
	}
	defer src.Close()
	if !source.IsStream(set.Source) {
		status(true, "")
	}
	det, err := motion.NewDetector(set.Motion())
	if err != nil {
		return fmt.Errorf("camera %s: %w", id, err)
	}
	defer func() { det.Close() }()
	pool := &shotPool{}
	defer pool.close()
	tr, err := event.New[*shot](set.Events(), pool.put)
	if err != nil {
		return fmt.Errorf("camera %s: %w", id, err)
	}
	// A detection rate cap thins the source: frames not looked at are
	// decoded but not converted.
	thin, _ := src.(source.Thinner)
	if thin != nil {
		thin.SetMinInterval(frameInterval(set.FPS))
	}
	live := source.IsStream(set.Source) // frame ids from the picture
	logger.Info("capturing", "source", src.Describe(), "session_epoch", epoch)
	cam.update(func(s *CameraState) { s.Source = src.Describe(); s.LastError = "" })

	var nextDue time.Duration // fps cap
	decoding, _ := src.(source.Decoding)
	decoder := ""
	paired, _ := src.(*source.Paired)
	var fallbacks int64
	publish := func(outs []event.Out[*shot]) error {
		for _, o := range outs {
			err := c.publishFrame(ctx, pub, id, epoch, live, src.Describe(), o)
			pool.put(o.P)
			if err != nil {
				return err
			}
			if o.Phase == event.PhaseStart || (o.Phase == event.PhaseEnd && o.FrameIndex == 0) {
				c.metrics.events.WithLabelValues(id).Inc()
				cam.update(func(s *CameraState) { s.Events++ })
			}
		}
		return nil
	}
	for {
		if err := pub.Err(); err != nil {
			return err
		}
		if v := cam.Version(); v != version {
			version = v
			n := cam.Settings()
			if n.Source != set.Source || n.DetectSource != set.DetectSource || n.Watch != set.Watch || n.Realtime != set.Realtime {
				logger.Info("source settings changed; starting a new session", "source", redact.URL(n.Source))
				return errors.Join(publish(tr.Flush()), errSourceChanged)
			}
			nd, err := motion.NewDetector(n.Motion())
			if err != nil {
				logger.Error("new detector settings refused", "err", err)
			} else {
				det.Close()
				det = nd
			}
			if err := tr.SetConfig(n.Events()); err != nil {
				logger.Error("new event settings refused", "err", err)
			}
			if thin != nil && n.FPS != set.FPS {
				thin.SetMinInterval(frameInterval(n.FPS))
			}
			set = n
			logger.Info("camera settings applied", "fps", set.FPS, "threshold", set.Threshold, "min_area", set.MinArea,
				"mask_zones", len(set.Mask), "pre_capture", set.PreCapture, "post_capture", set.PostCapture)
		}
		f, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			status(false, endOfSource)
			return publish(tr.Flush())
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("camera %s: read %s: %w", id, redact.URL(set.Source), err)
		}
		c.metrics.frames.Inc()
		cam.frameArrived(f.CaptureTime)
		if decoding != nil && decoding.Decoder() != decoder {
			decoder = decoding.Decoder()
			cam.update(func(s *CameraState) { s.Decoder = decoder })
		}
		if set.FPS > 0 { // for sources that cannot thin themselves
			if f.Offset < nextDue {
				continue
			}
			nextDue = f.Offset + frameInterval(set.FPS)
		}
		res, err := det.Detect(f.Mat)
		if err != nil {
			return fmt.Errorf("camera %s frame %d: %w", id, f.Index, err)
		}
		if res.Global {
			c.metrics.globals.WithLabelValues(id).Inc()
			cam.update(func(s *CameraState) { s.GlobalChanges++ })
		}
		if res.Motion {
			c.metrics.motion.Inc()
			cam.update(func(s *CameraState) { s.MotionFrames++ })
		}
		fr := event.Frame[*shot]{Index: f.Index, At: f.Offset, Motion: res.Motion, Score: res.Score, Boxes: res.Boxes}
		if tr.Needs(res.Motion, f.Offset) {
			// A two-stream camera keeps the main stream's picture of the
			// moment; the boxes found on the sub-stream are scaled to it.
			fr.P = pool.clone(f.Picture(), f.CaptureTime)
			fr.P.cameraAt = f.CameraTime
			fr.P.scaleX, fr.P.scaleY = float64(fr.P.mat.Cols())/float64(f.Mat.Cols()), float64(fr.P.mat.Rows())/float64(f.Mat.Rows())
			if paired != nil {
				n := paired.Fallbacks()
				c.metrics.subStreamPictures.WithLabelValues(id).Add(float64(n - fallbacks))
				fallbacks = n
			}
		}
		if err := publish(tr.Push(fr)); err != nil {
			return err
		}
	}
}

// frameInterval is the time between frames at fps (0: no cap).
func frameInterval(fps float64) time.Duration {
	if fps <= 0 {
		return 0
	}
	return time.Duration(float64(time.Second) / fps)
}

// sessionEpoch: content-derived for files and folders (re-reading gives the
// same frame ids), path-derived for watched folders, the start time in
// milliseconds for live streams (whose frame ids come from the camera's
// time of the picture or from the picture, CameraTimeFrameID and
// LiveFrameID; the epoch names the session's events).
func sessionEpoch(s Settings) (uint64, error) {
	switch {
	case source.IsStream(s.Source):
		return uint64(time.Now().UnixMilli()), nil
	case s.Watch:
		return source.WatchEpoch(s.Source)
	default:
		return source.SessionEpoch(s.Source)
	}
}

func (c *capturer) publishFrame(ctx context.Context, pub *publisher, camera string, epoch uint64, live bool, desc string, o event.Out[*shot]) error {
	img := &o.P.mat
	id := FrameID(camera, epoch, o.Index)
	switch {
	case live && !o.P.cameraAt.IsZero():
		id = CameraTimeFrameID(camera, o.P.cameraAt)
	case live:
		fp, err := Fingerprint(*img)
		if err != nil {
			return fmt.Errorf("camera %s frame %d: %w", camera, o.Index, err)
		}
		id = LiveFrameID(camera, fp)
	}
	jpeg, err := motion.EncodeJPEG(*img, c.cfg.JPEGQuality)
	if err != nil {
		return fmt.Errorf("camera %s frame %d: %w", camera, o.Index, err)
	}
	frame := &cefiotv1.Frame{
		FrameId:         id,
		CameraId:        camera,
		SessionEpoch:    epoch,
		Sequence:        o.Index,
		CaptureTime:     timestamppb.New(o.P.at),
		Width:           int32(img.Cols()),
		Height:          int32(img.Rows()),
		MotionScore:     o.Score,
		Jpeg:            jpeg,
		Source:          desc,
		CaptureNode:     c.cfg.Node,
		EventId:         EventID(camera, epoch, o.EventStart),
		EventPhase:      cefiotv1.EventPhase(o.Phase),
		EventFrameIndex: o.FrameIndex,
		Motion:          o.Motion,
	}
	sx, sy := o.P.scaleX, o.P.scaleY
	for _, b := range o.Boxes {
		frame.Boxes = append(frame.Boxes, &cefiotv1.Box{X: int32(float64(b.Min.X) * sx), Y: int32(float64(b.Min.Y) * sy),
			Width: int32(float64(b.Dx())*sx + 0.5), Height: int32(float64(b.Dy())*sy + 0.5)})
	}
	if c.cfg.ThumbnailWidth > 0 {
		th, w, h, err := motion.Thumbnail(*img, c.cfg.ThumbnailWidth, c.cfg.ThumbnailQuality)
		if err != nil {
			return fmt.Errorf("camera %s frame %d: %w", camera, o.Index, err)
		}
		frame.ThumbnailJpeg, frame.ThumbnailWidth, frame.ThumbnailHeight = th, int32(w), int32(h)
	}
	value, err := proto.Marshal(frame)
	if err != nil {
		return fmt.Errorf("encode frame %s: %w", frame.FrameId, err)
	}
	err = pub.sendFrame(ctx, frame, value)
	if err != nil && ctx.Err() != nil {
		return nil
	}
	return err
}

// publishStatus records an online/offline change: state, metrics and a
// CameraStatusChange record on the status topic (key = camera id).
func (c *capturer) publishStatus(ctx context.Context, pub *publisher, cam *CameraRun, id, src string, online bool, reason string) {
	var reconnects int64
	var offlineFor *durationpb.Duration
	if !online {
		cam.sourceStopped()
	}
	cam.update(func(s *CameraState) {
		if !online && s.Online && reason != endOfSource {
			s.Reconnects++
			c.metrics.reconnects.WithLabelValues(id).Inc()
		}
		now := time.Now()
		if online && !s.Online && !s.StatusChanged.IsZero() {
			offlineFor = durationpb.New(now.Sub(s.StatusChanged)) // the gap in its frames
		}
		s.Online, s.StatusChanged = online, now
		if reason != "" {
			s.LastError = reason
		}
		reconnects = s.Reconnects
	})
	v := 0.0
	if online {
		v = 1
	}
	c.metrics.online.WithLabelValues(id).Set(v)
	c.metrics.statusChanges.Inc()
	rec := &cefiotv1.CameraStatusChange{
		CameraId: id, Online: online, Time: timestamppb.Now(), Reason: reason,
		Source: redact.URL(src), CaptureNode: c.cfg.Node, Reconnects: reconnects, OfflineFor: offlineFor,
	}
	value, err := proto.Marshal(rec)
	if err != nil {
		return
	}
	topic := c.cfg.StatusTopic
	if err := pub.produce(ctx, &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Key:            []byte(id), Value: value, Timestamp: rec.Time.AsTime(),
	}); err != nil && ctx.Err() == nil {
		c.logger.Warn("cannot publish camera status", "camera", id, "err", err)
	}
}

// shot is a copy of a frame the event tracker keeps: the image and when
// it was captured.
type shot struct {
	mat gocv.Mat
	at  time.Time
	// cameraAt is the picture's time by the camera's clock (zero when the
	// stream gives none): what a live frame's id comes from.
	cameraAt time.Time
	// scaleX and scaleY take the detector's boxes to mat's pixels (1 but
	// for a two-stream camera, whose boxes are found on the sub-stream).
	scaleX, scaleY float64
}

// shotPool recycles the frame copies the event tracker keeps.
type shotPool struct {
	free []*shot
	all  []*shot
}

func (p *shotPool) clone(m gocv.Mat, at time.Time) *shot {
	var s *shot
	if n := len(p.free); n > 0 {
		s, p.free = p.free[n-1], p.free[:n-1]
	} else {
		s = &shot{mat: gocv.NewMat()}
		p.all = append(p.all, s)
	}
	m.CopyTo(&s.mat)
	s.at, s.cameraAt, s.scaleX, s.scaleY = at, time.Time{}, 1, 1
	return s
}

func (p *shotPool) put(s *shot) {
	if s != nil {
		p.free = append(p.free, s)
	}
}

func (p *shotPool) close() {
	for _, s := range p.all {
		s.mat.Close()
	}
	p.free, p.all = nil, nil
}
