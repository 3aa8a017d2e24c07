package enrich

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
	"github.com/cefiot/cefiot/services/enrich/internal/detect"
)

// Labeler runs the object detector on motion frames: the first motion
// frame of each event and every Every-th after it, so that its cost
// follows the events, not the frame rate.
type Labeler struct {
	Detector detect.Detector
	// Every: look at one motion frame in Every of an event (1: all).
	Every int

	seen    map[string]int // motion frames seen per open event
	metrics *labelMetrics
}

type labelMetrics struct {
	seconds prometheus.Histogram
	labels  *prometheus.CounterVec
	skipped prometheus.Counter
}

// NewLabeler prepares a labeler and registers its metrics with reg.
func NewLabeler(d detect.Detector, every int, reg prometheus.Registerer) *Labeler {
	m := &labelMetrics{
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cefiot_enrich_detect_seconds", Help: "Object detection time per frame looked at (decode included).", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}),
		labels:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cefiot_enrich_labels_total", Help: "Objects found, by label."}, []string{"label"}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "cefiot_enrich_detect_skipped_total", Help: "Motion frames not looked at (the detection rate, -detect-every)."}),
	}
	reg.MustRegister(m.seconds, m.labels, m.skipped)
	return &Labeler{Detector: d, Every: max(every, 1), seen: map[string]int{}, metrics: m}
}

// newLabeler builds the configured detector, or returns nil when
// detection is off.
func newLabeler(cfg Config, reg prometheus.Registerer) (*Labeler, error) {
	d, err := cfg.Detect.New()
	if err != nil || d == nil {
		return nil, err
	}
	return NewLabeler(d, cfg.Detect.Every, reg), nil
}

// maxOpenEvents bounds the events the labeler counts frames of.
const maxOpenEvents = 10000

// Label returns the objects in f, or nil when f is not looked at (no
// motion, or skipped by the rate). A JPEG that does not decode is an error.
func (l *Labeler) Label(f *cefiotv1.Frame) ([]*cefiotv1.ObjectLabel, bool, error) {
	if !f.GetMotion() {
		return nil, false, nil
	}
	event := f.GetEventId()
	n := l.seen[event]
	if len(l.seen) >= maxOpenEvents && n == 0 {
		l.seen = map[string]int{}
	}
	l.seen[event] = n + 1
	if f.GetEventPhase() == cefiotv1.EventPhase_EVENT_PHASE_END {
		delete(l.seen, event)
	}
	if n%l.Every != 0 {
		l.metrics.skipped.Inc()
		return nil, false, nil
	}
	start := time.Now()
	found, err := detect.DetectJPEG(l.Detector, f.GetJpeg(), int(f.GetWidth()), detect.Width(l.Detector))
	if err != nil {
		return nil, false, fmt.Errorf("frame %s: %w", f.GetFrameId(), err)
	}
	l.metrics.seconds.Observe(time.Since(start).Seconds())
	out := make([]*cefiotv1.ObjectLabel, 0, len(found))
	for _, o := range found {
		l.metrics.labels.WithLabelValues(o.Name).Inc()
		out = append(out, &cefiotv1.ObjectLabel{Name: o.Name, Score: o.Score, Box: &cefiotv1.Box{
			X: int32(o.Box.Min.X), Y: int32(o.Box.Min.Y), Width: int32(o.Box.Dx()), Height: int32(o.Box.Dy()),
		}})
	}
	return out, true, nil
}
