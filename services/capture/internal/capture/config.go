// Package capture is the capture service: one workload per camera reads its
// source, detects motion and publishes motion frames with the idempotent
// producer, key = camera id.
package capture

import (
	"flag"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/service"
	"github.com/cefiot/cefiot/services/capture/internal/motion"
)

// Config is the capture service configuration. Per-camera settings come
// from the workload's params (see CameraConfig).
type Config struct {
	service.Common
	KafkaBootstrap string
	Topic          string
	Partitions     int
	JPEGQuality    int
	KafkaWait      time.Duration
}

// ParseConfig reads flags and CEFIOT_* environment variables and validates.
func ParseConfig(args []string, lookupEnv func(string) (string, bool)) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("capture", flag.ContinueOnError)
	c.Common.Register(fs, "127.0.0.1:9101", "127.0.0.1:8101")
	fs.StringVar(&c.KafkaBootstrap, "kafka-bootstrap", "127.0.0.1:19092", "bootstrap servers of the site's Kafka cluster")
	fs.StringVar(&c.Topic, "topic", "frames.raw", "topic motion frames are published to")
	fs.IntVar(&c.Partitions, "partitions", 3, "partitions of the topic when capture creates it")
	fs.IntVar(&c.JPEGQuality, "jpeg-quality", 90, "JPEG quality of published frames, 1..100")
	fs.DurationVar(&c.KafkaWait, "kafka-wait", 30*time.Second, "how long to wait for Kafka at start before giving up")
	if err := config.Parse(fs, args, lookupEnv); err != nil {
		return c, err
	}
	var ch config.Checker
	c.Common.Validate("capture", &ch)
	ch.NotEmpty("kafka-bootstrap", c.KafkaBootstrap)
	ch.NotEmpty("topic", c.Topic)
	ch.Check(c.Partitions >= 1, "partitions", strconv.Itoa(c.Partitions), "must be at least 1")
	ch.Check(c.JPEGQuality >= 1 && c.JPEGQuality <= 100, "jpeg-quality", strconv.Itoa(c.JPEGQuality), "must be 1..100")
	ch.Check(c.KafkaWait > 0, "kafka-wait", c.KafkaWait.String(), "must be positive")
	return c, ch.Err()
}

var cameraRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$`)

// CameraConfig is one camera's settings, from a capture workload's params.
type CameraConfig struct {
	Camera   string
	Source   string
	Realtime bool
	FPS      float64
	Motion   motion.Config
}

// ParseCamera reads workload params: camera, source, and optionally
// realtime, fps, detect-width, threshold, min-area, blur. Errors name the
// param.
func ParseCamera(params map[string]string) (CameraConfig, error) {
	cc := CameraConfig{Camera: params["camera"], Source: params["source"], Motion: motion.DefaultConfig()}
	if !cameraRE.MatchString(cc.Camera) {
		return cc, fmt.Errorf("param camera %q: must match %s", cc.Camera, cameraRE)
	}
	if cc.Source == "" {
		return cc, fmt.Errorf("param source: must not be empty")
	}
	var err error
	parse := func(key string, set func(string) error) {
		if v, ok := params[key]; ok && err == nil {
			if e := set(v); e != nil {
				err = fmt.Errorf("param %s %q: %w", key, v, e)
			}
		}
	}
	parse("realtime", func(v string) (e error) { cc.Realtime, e = strconv.ParseBool(v); return })
	parse("fps", func(v string) (e error) { cc.FPS, e = strconv.ParseFloat(v, 64); return })
	parse("detect-width", func(v string) (e error) { cc.Motion.DetectWidth, e = strconv.Atoi(v); return })
	parse("threshold", func(v string) (e error) { cc.Motion.Threshold, e = strconv.Atoi(v); return })
	parse("blur", func(v string) (e error) { cc.Motion.BlurSize, e = strconv.Atoi(v); return })
	parse("min-area", func(v string) (e error) { cc.Motion.MinArea, e = strconv.ParseFloat(v, 64); return })
	if err != nil {
		return cc, err
	}
	if err := cc.Motion.Validate(); err != nil {
		return cc, fmt.Errorf("camera %s: %w", cc.Camera, err)
	}
	return cc, nil
}

// FrameID formats the unique, stable id of a frame.
func FrameID(camera string, epoch, sequence uint64) string {
	return fmt.Sprintf("%s_%d_%08d", camera, epoch, sequence)
}
