package capture

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"google.golang.org/protobuf/proto"

	"github.com/cefiot/cefiot/libs/pipeline"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
	"github.com/cefiot/cefiot/services/capture/internal/spool"
)

// drainBatch is how many spooled frames are in flight at once while the
// spool drains.
const drainBatch = 32

// gapLogEvery spaces the warnings about frames dropped from a full spool
// (each drop is counted; the log says the totals).
const gapLogEvery = 10 * time.Second

// spooler keeps a camera's motion frames in a disk spool while the site's
// Kafka cluster does not acknowledge them, and sends them on, in order,
// when it does.
//
// Frames go straight to the producer while Kafka keeps up. When the
// oldest unacknowledged frame is older than `after` (the cluster is away,
// or cannot meet min.insync.replicas), every new frame is appended to the
// spool instead, and stays behind the spool for as long as it holds any,
// so the camera's frames keep their order. The frames already handed to
// the producer stay there (in memory, at most `after` of them) and go
// first. A drainer sends spooled frames a batch at a time through the
// same producer and removes them from the spool only once Kafka has
// acknowledged them; when the spool is empty frames go straight again. A
// spool left from before a restart is drained first.
//
// A full spool drops its oldest frames: they are counted
// (cefiot_capture_spool_dropped_frames_total), logged and shown in the
// camera's state (spool_dropped_frames, last_spool_gap). A frame the
// drainer has already handed to the producer leaves the disk when it is
// dropped but is still sent: it counts as lost only if Kafka never
// acknowledges it (the drainer stops first).
type spooler struct {
	pub     *publisher
	sp      *spool.Spool
	camera  string
	after   time.Duration
	logger  *slog.Logger
	metrics *metrics
	cam     *CameraRun // may be nil
	now     func() time.Time

	mu       sync.Mutex
	inflight []time.Time // when each frame produced straight was sent, oldest first
	spooling bool
	since    time.Time // this spooling episode began
	episode  int       // frames spooled in this episode
	dropped  int64     // frames lost since start
	logged   time.Time // the last gap warning
	unlogged int64     // frames dropped since that warning
	flying   []*flight // the drainer's batch, oldest first

	wake chan struct{}
	stop context.CancelFunc
	done chan struct{}
}

// drainAcks collects the delivery reports of a drained batch.
type drainAcks struct{ ch chan error }

// flight is a spooled frame the drainer has handed to the producer.
type flight struct {
	seq     uint64
	id      string
	dropped bool // no longer in the spool: the producer holds the only copy
}

// newSpooler opens the camera's spool in dir and starts draining what it
// holds.
func newSpooler(pub *publisher, dir string, maxBytes int64, after time.Duration, camera string, cam *CameraRun, logger *slog.Logger, m *metrics) (*spooler, error) {
	sp, rec, err := spool.Open(dir, maxBytes)
	if err != nil {
		return nil, fmt.Errorf("camera %s: %w", camera, err)
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &spooler{pub: pub, sp: sp, camera: camera, after: after, logger: logger, metrics: m, cam: cam, now: time.Now,
		wake: make(chan struct{}, 1), stop: stop, done: make(chan struct{})}
	if rec.TornBytes > 0 {
		logger.Warn("spool: cut the torn end of a write a crash interrupted", "bytes", rec.TornBytes, "dir", dir)
	}
	s.mu.Lock()
	s.lost(rec.Dropped, "the spool is over its bound")
	if rec.Records > 0 {
		s.spooling, s.since, s.episode = true, s.now(), rec.Records
		logger.Info("spool holds frames from before; sending them first", "frames", rec.Records, "bytes", sp.Bytes(), "dir", dir)
	}
	s.gauges()
	s.mu.Unlock()
	s.signal()
	go s.drain(ctx)
	return s, nil
}

// frameMessage is the Kafka record of a frame whose encoding is value.
func frameMessage(topic string, f *cefiotv1.Frame, value []byte, opaque any) *kafka.Message {
	return &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Key:            []byte(f.GetCameraId()),
		Value:          value,
		Timestamp:      f.GetCaptureTime().AsTime(),
		Headers:        []kafka.Header{{Key: pipeline.HeaderFrameID, Value: []byte(f.GetFrameId())}, {Key: pipeline.HeaderEventID, Value: []byte(f.GetEventId())}},
		Opaque:         opaque,
	}
}

// send publishes frame f (encoded as value): straight to the producer, or
// into the spool (see spooler). Only the camera's capture loop calls it.
func (s *spooler) send(ctx context.Context, f *cefiotv1.Frame, value []byte) error {
	s.mu.Lock()
	now := s.now()
	if !s.spooling && len(s.inflight) > 0 && now.Sub(s.inflight[0]) > s.after {
		s.spooling, s.since, s.episode = true, now, 0
		s.logger.Warn("the site's Kafka cluster does not acknowledge frames; spooling them to disk until it does",
			"unacknowledged", len(s.inflight), "oldest", now.Sub(s.inflight[0]).Round(time.Millisecond))
	}
	if s.spooling {
		defer s.mu.Unlock()
		s.append(f, value)
		return nil
	}
	s.inflight = append(s.inflight, now)
	s.mu.Unlock()
	if err := s.pub.produce(ctx, frameMessage(s.pub.frameTopic, f, value, nil)); err != nil {
		s.mu.Lock()
		s.inflight = s.inflight[:len(s.inflight)-1]
		s.mu.Unlock()
		return err
	}
	return nil
}

// append spools a frame. A frame the spool cannot take (a disk error) is
// lost and reported like a dropped one, never the end of the camera.
func (s *spooler) append(f *cefiotv1.Frame, value []byte) {
	dropped, err := s.sp.Append(value)
	s.lost(dropped, "the spool is full")
	if err != nil {
		s.gap(1, f.GetFrameId(), f.GetFrameId(), err.Error())
	} else {
		s.episode++
		s.metrics.spooled.Inc()
	}
	s.gauges()
	s.signal()
}

// acked is called for every frame produced straight that Kafka answered.
func (s *spooler) acked() {
	s.mu.Lock()
	if len(s.inflight) > 0 {
		s.inflight = s.inflight[1:]
	}
	s.mu.Unlock()
}

func (s *spooler) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// drain sends spooled frames until ctx ends.
func (s *spooler) drain(ctx context.Context) {
	defer close(s.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		for s.drainOnce(ctx) {
		}
		s.mu.Lock()
		if s.spooling && s.sp.Len() == 0 && ctx.Err() == nil {
			s.spooling = false
			s.logger.Info("spool drained: Kafka acknowledged every spooled frame; frames go straight again",
				"frames", s.episode, "after", s.now().Sub(s.since).Round(time.Millisecond), "lost_since_start", s.dropped)
		}
		s.mu.Unlock()
	}
}

// drainOnce sends the oldest spooled frames and removes them once Kafka
// acknowledged them. It reports whether it removed any.
func (s *spooler) drainOnce(ctx context.Context) bool {
	// The batch is taken and marked in flight at once: an append that
	// drops one of these frames from here on knows it is still sent.
	s.mu.Lock()
	recs, err := s.sp.Peek(drainBatch)
	frames := make([]*cefiotv1.Frame, len(recs))
	for i, r := range recs {
		f := &cefiotv1.Frame{}
		switch err := proto.Unmarshal(r.Data, f); {
		case r.Data == nil:
			s.gap(1, "?", "?", "a spooled frame cannot be read back")
		case err != nil:
			s.gap(1, "?", "?", fmt.Sprintf("a spooled frame does not decode: %v", err))
		case f.GetFrameId() == "" || f.GetCameraId() != s.camera:
			s.gap(1, "?", "?", fmt.Sprintf("a spooled record is not a frame of this camera (frame id %q, camera %q)", f.GetFrameId(), f.GetCameraId()))
		default:
			frames[i] = f
			s.flying = append(s.flying, &flight{seq: r.Seq, id: f.GetFrameId()})
		}
	}
	s.mu.Unlock()
	if err != nil || len(recs) == 0 {
		return false
	}
	acks := &drainAcks{ch: make(chan error, len(recs))}
	sent, acked := 0, 0
	defer func() { s.land(acked) }()
	for i, r := range recs {
		f := frames[i]
		if f == nil {
			continue
		}
		if err := s.pub.produce(ctx, frameMessage(s.pub.frameTopic, f, r.Data, acks)); err != nil {
			if ctx.Err() == nil {
				s.pub.fail(fmt.Errorf("camera %s: send spooled frame %s: %w", s.camera, f.GetFrameId(), err))
			}
			return false
		}
		sent++
	}
	for range sent {
		select {
		case err := <-acks.ch:
			if err != nil {
				return false // the publisher has failed with it
			}
			acked++
		case <-ctx.Done():
			return false
		}
	}
	if err := s.sp.Remove(recs[len(recs)-1].Seq); err != nil {
		s.pub.fail(fmt.Errorf("camera %s: %w", s.camera, err))
		return false
	}
	s.metrics.drained.Add(float64(sent))
	s.mu.Lock()
	s.gauges()
	s.mu.Unlock()
	return true
}

// land ends the drainer's batch, of which the first acked frames were
// acknowledged: a frame dropped from the spool while in flight and not
// acknowledged is lost after all.
func (s *spooler) land(acked int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lost []*flight
	for _, f := range s.flying[min(acked, len(s.flying)):] {
		if f.dropped {
			lost = append(lost, f)
		}
	}
	if len(lost) > 0 {
		s.gap(len(lost), lost[0].id, lost[len(lost)-1].id, "dropped from the full spool and never acknowledged")
	}
	s.flying = nil
}

// lost reports records dropped from the spool, except those the drainer
// has in flight (see land). s.mu is held.
func (s *spooler) lost(recs []spool.Record, why string) {
	var gone []spool.Record
	for _, r := range recs {
		if f := s.inFlight(r.Seq); f != nil {
			f.dropped = true
			continue
		}
		gone = append(gone, r)
	}
	if len(gone) == 0 {
		return
	}
	s.gap(len(gone), frameIDOf(gone[0].Data), frameIDOf(gone[len(gone)-1].Data), why)
}

// inFlight is the drainer's flight of record seq, or nil. s.mu is held.
func (s *spooler) inFlight(seq uint64) *flight {
	for _, f := range s.flying {
		if f.seq == seq {
			return f
		}
	}
	return nil
}

// flights is how many frames the drainer has in flight and how many of
// those are no longer in the spool.
func (s *spooler) flights() (n, dropped int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.flying {
		if f.dropped {
			dropped++
		}
	}
	return len(s.flying), dropped
}

func frameIDOf(data []byte) string {
	f := &cefiotv1.Frame{}
	if err := proto.Unmarshal(data, f); err != nil || f.GetFrameId() == "" {
		return "?"
	}
	return f.GetFrameId()
}

// gap counts n lost frames, first..last, in the metrics, the camera's
// state and (at most every gapLogEvery) the log. s.mu is held.
func (s *spooler) gap(n int, first, last, why string) {
	s.dropped += int64(n)
	s.unlogged += int64(n)
	s.metrics.spoolDropped.Add(float64(n))
	ids, noun := first+" .. "+last, "frames"
	if first == last {
		ids = first
	}
	if n == 1 {
		noun = "frame"
	}
	desc := fmt.Sprintf("%d %s lost at %s (%s): %s", n, noun, s.now().UTC().Format(time.RFC3339), why, ids)
	if s.cam != nil {
		s.cam.update(func(st *CameraState) { st.SpoolDropped, st.LastSpoolGap = s.dropped, desc })
	}
	if now := s.now(); now.Sub(s.logged) >= gapLogEvery {
		s.logger.Warn("frames lost: a gap in what reaches the cloud", "frames", s.unlogged, "total", s.dropped, "latest", desc)
		s.logged, s.unlogged = now, 0
	}
}

// gauges publishes the spool's size. s.mu is held.
func (s *spooler) gauges() {
	n, b := s.sp.Len(), s.sp.Bytes()
	s.metrics.spoolFrames.WithLabelValues(s.camera).Set(float64(n))
	s.metrics.spoolBytes.WithLabelValues(s.camera).Set(float64(b))
	if s.cam != nil {
		s.cam.update(func(st *CameraState) { st.SpoolFrames, st.SpoolBytes = int64(n), b })
	}
}

// empty reports whether no frame waits in the spool.
func (s *spooler) empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.spooling && s.sp.Len() == 0
}
