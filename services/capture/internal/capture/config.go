// Package capture is the capture service: one workload per camera reads its
// source, detects motion and publishes motion frames with the idempotent
// producer, key = camera id.
package capture

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/libs/service"
	"github.com/cefiot/cefiot/services/capture/internal/videoio"
)

// Config is the capture service configuration. Per-camera settings come
// from the workload's params (see CameraConfig).
type Config struct {
	service.Common
	KafkaBootstrap string
	Topic          string
	Partitions     int
	JPEGQuality    int
	// ThumbnailWidth and ThumbnailQuality shape the thumbnail each frame
	// carries (width 0: none; enrich then makes one).
	ThumbnailWidth   int
	ThumbnailQuality int
	KafkaWait        time.Duration
	// CamerasFile holds per-camera settings (see Registry); "" keeps
	// updates from the admin API in memory only.
	CamerasFile string
	StatusTopic string
	// SpoolDir holds one disk spool per camera (<dir>/<camera>), each
	// bounded to SpoolMaxBytes; frames go there once Kafka has not
	// acknowledged one for SpoolAfter (see spooler).
	SpoolDir      string
	SpoolMaxBytes int64
	SpoolAfter    time.Duration
	// HWAccel is how videos and camera streams are decoded: any (the
	// machine's accelerator if it has one, else software), none, or a
	// required one (vaapi, mfx).
	HWAccel string
	accel   videoio.Accel
}

// Accel is the parsed HWAccel.
func (c Config) Accel() videoio.Accel { return c.accel }

// minSpoolBytes is the smallest spool bound: room for the largest frame.
const minSpoolBytes = pipeline.MaxRecordBytes + 8

// ParseConfig reads flags and CEFIOT_* environment variables and validates.
func ParseConfig(args []string, lookupEnv func(string) (string, bool)) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("capture", flag.ContinueOnError)
	c.Common.Register(fs, "127.0.0.1:9101", "127.0.0.1:8101")
	fs.StringVar(&c.KafkaBootstrap, "kafka-bootstrap", "127.0.0.1:19092", "bootstrap servers of the site's Kafka cluster")
	fs.StringVar(&c.Topic, "topic", pipeline.TopicFramesRaw, "topic motion frames are published to")
	fs.IntVar(&c.Partitions, "partitions", pipeline.DefaultPartitions, "partitions of the topic when capture creates it")
	fs.IntVar(&c.JPEGQuality, "jpeg-quality", 90, "JPEG quality of published frames, 1..100")
	fs.IntVar(&c.ThumbnailWidth, "thumbnail-width", pipeline.DefaultThumbnailWidth, "width of the thumbnail each frame carries, 16..1024 (0: none; enrich then decodes the frame to make one)")
	fs.IntVar(&c.ThumbnailQuality, "thumbnail-quality", pipeline.DefaultThumbnailQuality, "JPEG quality of thumbnails, 1..100")
	fs.StringVar(&c.CamerasFile, "cameras", "", "YAML file of per-camera settings, reloaded when it changes and written by the admin API (see docs/data-plane.md)")
	fs.StringVar(&c.StatusTopic, "status-topic", pipeline.TopicCameraStatus, "topic camera online/offline changes are published to")
	fs.StringVar(&c.SpoolDir, "spool-dir", "./data/capture-spool", "directory of the cameras' disk spools (one subdirectory per camera), where motion frames wait while the site's Kafka cluster does not acknowledge them")
	fs.Int64Var(&c.SpoolMaxBytes, "spool-max-bytes", 1<<30, "bytes each camera's spool holds at most; when full the oldest frames are dropped (counted and reported as a gap)")
	fs.DurationVar(&c.SpoolAfter, "spool-after", 5*time.Second, "spool new frames once the oldest frame Kafka has not acknowledged is this old")
	fs.StringVar(&c.HWAccel, "hwaccel", "any", "video decoding: any (the machine's hardware decoder through FFmpeg if it has one, else software), none (software), or a required one: vaapi (Intel and AMD GPUs, /dev/dri) or mfx (Intel Media SDK); the decoder in use is in each camera's state")
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
	ch.Check(c.ThumbnailWidth == 0 || (c.ThumbnailWidth >= 16 && c.ThumbnailWidth <= 1024), "thumbnail-width", strconv.Itoa(c.ThumbnailWidth), "must be 0 or 16..1024")
	ch.Check(c.ThumbnailQuality >= 1 && c.ThumbnailQuality <= 100, "thumbnail-quality", strconv.Itoa(c.ThumbnailQuality), "must be 1..100")
	ch.NotEmpty("status-topic", c.StatusTopic)
	if c.CamerasFile != "" {
		if _, _, err := readCameraFile(c.CamerasFile); err != nil {
			ch.Add(config.Invalid("cameras", c.CamerasFile, err.Error()))
		}
	}
	ch.NotEmpty("spool-dir", c.SpoolDir)
	if c.SpoolDir != "" {
		if err := checkWritableDir(c.SpoolDir); err != nil {
			ch.Add(config.Invalid("spool-dir", c.SpoolDir, err.Error()))
		}
	}
	ch.Check(c.SpoolMaxBytes >= minSpoolBytes, "spool-max-bytes", strconv.FormatInt(c.SpoolMaxBytes, 10),
		fmt.Sprintf("must be at least %d (room for the largest frame)", minSpoolBytes))
	ch.Check(c.SpoolAfter > 0, "spool-after", c.SpoolAfter.String(), "must be positive")
	ch.Check(c.KafkaWait > 0, "kafka-wait", c.KafkaWait.String(), "must be positive")
	accel, err := videoio.ParseAccel(c.HWAccel)
	if err != nil {
		ch.Add(config.Invalid("hwaccel", c.HWAccel, err.Error()))
	}
	c.accel = accel
	return c, ch.Err()
}

var cameraRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$`)

// ParseCamera reads a capture workload's params: camera (required) and
// the settings params (see paramOverrides). Errors name the param.
func ParseCamera(params map[string]string) (string, Overrides, error) {
	id := params[pipeline.ParamCamera]
	if !cameraRE.MatchString(id) {
		return id, Overrides{}, fmt.Errorf("param camera %q: must match %s", id, cameraRE)
	}
	o, err := paramOverrides(params)
	return id, o, err
}

// checkWritableDir creates dir if needed and proves a file can be written
// in it.
func checkWritableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".check-*")
	if err != nil {
		return err
	}
	name := f.Name()
	err = f.Close()
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	return err
}
