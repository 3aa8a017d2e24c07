package capture

import (
	"fmt"
	"image"
	"math"
	"strconv"
	"time"

	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/libs/redact"
	"github.com/cefiot/cefiot/services/capture/internal/event"
	"github.com/cefiot/cefiot/services/capture/internal/motion"
	"github.com/cefiot/cefiot/services/capture/internal/source"
)

// Settings are one camera's effective settings.
type Settings struct {
	Source string
	// DetectSource is the camera's sub-stream, when motion is detected on
	// it and the stored pictures come from Source; "" for one stream.
	DetectSource    string
	FPS             float64 // cap on frames looked at per second; 0: all
	Realtime        bool
	Watch           bool
	DetectWidth     int
	Threshold       int
	MinArea         float64
	Blur            int
	Mask            [][]image.Point
	PreCapture      int
	PostCapture     int
	MinMotionFrames int
	Cooldown        time.Duration
	GlobalChange    float64
}

// DefaultSettings are the settings of a camera nobody configured. They
// publish exactly the motion frames (no pre/post capture, one frame
// starts an event) and treat a change of 60% of the pixels as a global
// change, not motion.
func DefaultSettings() Settings {
	m := motion.DefaultConfig()
	return Settings{
		DetectWidth: m.DetectWidth, Threshold: m.Threshold, MinArea: m.MinArea, Blur: m.BlurSize,
		MinMotionFrames: 1, GlobalChange: 0.6,
	}
}

// Overrides are settings given for a camera in the settings file or an
// update; nil fields are not given.
type Overrides struct {
	Source          *string        `yaml:"source,omitempty"`
	DetectSource    *string        `yaml:"detect_source,omitempty"`
	FPS             *float64       `yaml:"fps,omitempty"`
	Realtime        *bool          `yaml:"realtime,omitempty"`
	Watch           *bool          `yaml:"watch,omitempty"`
	DetectWidth     *int           `yaml:"detect_width,omitempty"`
	Threshold       *int           `yaml:"threshold,omitempty"`
	MinArea         *float64       `yaml:"min_area,omitempty"`
	Blur            *int           `yaml:"blur,omitempty"`
	Mask            *[][][2]int    `yaml:"mask,omitempty"`
	PreCapture      *int           `yaml:"pre_capture,omitempty"`
	PostCapture     *int           `yaml:"post_capture,omitempty"`
	MinMotionFrames *int           `yaml:"min_motion_frames,omitempty"`
	Cooldown        *time.Duration `yaml:"cooldown,omitempty"`
	GlobalChange    *float64       `yaml:"global_change,omitempty"`
}

// Merge returns o with the fields given in u replaced.
func (o Overrides) Merge(u Overrides) Overrides {
	if u.Source != nil {
		o.Source = u.Source
	}
	if u.DetectSource != nil {
		o.DetectSource = u.DetectSource
	}
	if u.FPS != nil {
		o.FPS = u.FPS
	}
	if u.Realtime != nil {
		o.Realtime = u.Realtime
	}
	if u.Watch != nil {
		o.Watch = u.Watch
	}
	if u.DetectWidth != nil {
		o.DetectWidth = u.DetectWidth
	}
	if u.Threshold != nil {
		o.Threshold = u.Threshold
	}
	if u.MinArea != nil {
		o.MinArea = u.MinArea
	}
	if u.Blur != nil {
		o.Blur = u.Blur
	}
	if u.Mask != nil {
		o.Mask = u.Mask
	}
	if u.PreCapture != nil {
		o.PreCapture = u.PreCapture
	}
	if u.PostCapture != nil {
		o.PostCapture = u.PostCapture
	}
	if u.MinMotionFrames != nil {
		o.MinMotionFrames = u.MinMotionFrames
	}
	if u.Cooldown != nil {
		o.Cooldown = u.Cooldown
	}
	if u.GlobalChange != nil {
		o.GlobalChange = u.GlobalChange
	}
	return o
}

// Apply returns s with o's fields set.
func (s Settings) Apply(o Overrides) Settings {
	set := func(p *int, v *int) {
		if v != nil {
			*p = *v
		}
	}
	if o.Source != nil {
		s.Source = *o.Source
	}
	if o.DetectSource != nil {
		s.DetectSource = *o.DetectSource
	}
	if o.FPS != nil {
		s.FPS = *o.FPS
	}
	if o.Realtime != nil {
		s.Realtime = *o.Realtime
	}
	if o.Watch != nil {
		s.Watch = *o.Watch
	}
	set(&s.DetectWidth, o.DetectWidth)
	set(&s.Threshold, o.Threshold)
	set(&s.Blur, o.Blur)
	set(&s.PreCapture, o.PreCapture)
	set(&s.PostCapture, o.PostCapture)
	set(&s.MinMotionFrames, o.MinMotionFrames)
	if o.MinArea != nil {
		s.MinArea = *o.MinArea
	}
	if o.Mask != nil {
		s.Mask = nil
		for _, poly := range *o.Mask {
			pts := make([]image.Point, len(poly))
			for i, p := range poly {
				pts[i] = image.Pt(p[0], p[1])
			}
			s.Mask = append(s.Mask, pts)
		}
	}
	if o.Cooldown != nil {
		s.Cooldown = *o.Cooldown
	}
	if o.GlobalChange != nil {
		s.GlobalChange = *o.GlobalChange
	}
	return s
}

// Motion is the detector configuration of s.
func (s Settings) Motion() motion.Config {
	m := motion.DefaultConfig()
	m.DetectWidth, m.Threshold, m.MinArea, m.BlurSize = s.DetectWidth, s.Threshold, s.MinArea, s.Blur
	m.Mask, m.GlobalChange = s.Mask, s.GlobalChange
	return m
}

// Events is the event tracker configuration of s.
func (s Settings) Events() event.Config {
	return event.Config{PreCapture: s.PreCapture, PostCapture: s.PostCapture, MinMotionFrames: s.MinMotionFrames, Cooldown: s.Cooldown}
}

// Validate names the first bad setting as its file/API field name.
func (s Settings) Validate() error {
	switch {
	case s.Source == "":
		return fmt.Errorf("source: must not be empty")
	case s.DetectSource != "" && !source.IsStreamURL(s.DetectSource):
		return fmt.Errorf("detect_source: must be the rtsp:// or http(s):// URL of the camera's sub-stream, got %q", redact.URL(s.DetectSource))
	case s.DetectSource != "" && s.Source != "-" && !source.IsStreamURL(s.Source):
		return fmt.Errorf("detect_source: needs source to be the camera's main stream URL, got %q", redact.URL(s.Source))
	case math.IsNaN(s.FPS) || s.FPS < 0 || s.FPS > 1000:
		return fmt.Errorf("fps: must be 0..1000, got %v", s.FPS)
	case s.DetectWidth < 16 || s.DetectWidth > 4096:
		return fmt.Errorf("detect_width: must be 16..4096, got %d", s.DetectWidth)
	case s.Threshold < 1 || s.Threshold > 254:
		return fmt.Errorf("threshold: must be 1..254, got %d", s.Threshold)
	case math.IsNaN(s.MinArea) || s.MinArea <= 0 || s.MinArea > 1:
		return fmt.Errorf("min_area: must be in (0, 1], got %v", s.MinArea)
	case s.Blur != 0 && (s.Blur < 3 || s.Blur > 31 || s.Blur%2 == 0):
		return fmt.Errorf("blur: must be 0 or odd 3..31, got %d", s.Blur)
	case math.IsNaN(s.GlobalChange) || s.GlobalChange < 0 || s.GlobalChange > 1:
		return fmt.Errorf("global_change: must be 0 (off) or in (0, 1], got %v", s.GlobalChange)
	case s.GlobalChange > 0 && s.GlobalChange <= s.MinArea:
		return fmt.Errorf("global_change: %v must be above min_area %v", s.GlobalChange, s.MinArea)
	}
	for i, p := range s.Mask {
		if len(p) < 3 {
			return fmt.Errorf("mask[%d]: a polygon needs at least 3 points, got %d", i, len(p))
		}
	}
	if err := s.Events().Validate(); err != nil {
		return err
	}
	return nil
}

// paramOverrides reads the settings a capture workload's params may carry
// (the pipeline spec): source, detect-source, realtime, fps, detect-width, threshold,
// blur, min-area, pre-capture, post-capture, min-motion-frames, cooldown,
// global-change, watch. Errors name the param.
func paramOverrides(params map[string]string) (Overrides, error) {
	var o Overrides
	var err error
	str := func(v string) *string { return &v }
	num := func(key string, dst **int) {
		if v, ok := params[key]; ok && err == nil {
			n, e := strconv.Atoi(v)
			if e != nil {
				err = fmt.Errorf("param %s %q: %w", key, v, e)
			}
			*dst = &n
		}
	}
	flt := func(key string, dst **float64) {
		if v, ok := params[key]; ok && err == nil {
			n, e := strconv.ParseFloat(v, 64)
			if e != nil {
				err = fmt.Errorf("param %s %q: %w", key, v, e)
			}
			*dst = &n
		}
	}
	boolean := func(key string, dst **bool) {
		if v, ok := params[key]; ok && err == nil {
			b, e := strconv.ParseBool(v)
			if e != nil {
				err = fmt.Errorf("param %s %q: %w", key, v, e)
			}
			*dst = &b
		}
	}
	if v, ok := params[pipeline.ParamSource]; ok {
		o.Source = str(v)
	}
	if v, ok := params["detect-source"]; ok {
		o.DetectSource = str(v)
	}
	boolean(pipeline.ParamRealtime, &o.Realtime)
	boolean("watch", &o.Watch)
	flt("fps", &o.FPS)
	num("detect-width", &o.DetectWidth)
	num("threshold", &o.Threshold)
	num("blur", &o.Blur)
	flt("min-area", &o.MinArea)
	num("pre-capture", &o.PreCapture)
	num("post-capture", &o.PostCapture)
	num("min-motion-frames", &o.MinMotionFrames)
	flt("global-change", &o.GlobalChange)
	if v, ok := params["cooldown"]; ok && err == nil {
		d, e := time.ParseDuration(v)
		if e != nil {
			err = fmt.Errorf("param cooldown %q: %w", v, e)
		}
		o.Cooldown = &d
	}
	return o, err
}
