// Package enrich is the enrich service: a stateless, transactional
// frames.raw -> frames.enriched transform.
package enrich

import (
	"flag"
	"time"

	"strconv"

	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/libs/service"
	"github.com/cefiot/cefiot/services/enrich/internal/detect"
	"github.com/cefiot/cefiot/services/enrich/internal/notify"
)

// Config is the enrich service configuration.
type Config struct {
	service.Common
	KafkaBootstrap string
	InputTopic     string
	OutputTopic    string
	Partitions     int
	BatchSize      int
	BatchWait      time.Duration
	// TransactionTimeout is the producer's transaction.timeout.ms.
	TransactionTimeout time.Duration
	KafkaWait          time.Duration
	// DeadLetterTopic receives the records enrich refuses.
	DeadLetterTopic  string
	MaxRecordBytes   int
	MaxPixels        int
	ThumbnailWidth   int
	ThumbnailQuality int
	// Notify sends the motion events to MQTT and webhooks.
	Notify notify.Config
	// Detect labels motion frames with objects.
	Detect detect.Config
}

// ParseConfig reads flags and CEFIOT_* environment variables and validates.
func ParseConfig(args []string, lookupEnv func(string) (string, bool)) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("enrich", flag.ContinueOnError)
	c.Common.Register(fs, "127.0.0.1:9102", "127.0.0.1:8102")
	fs.StringVar(&c.KafkaBootstrap, "kafka-bootstrap", "127.0.0.1:19092", "bootstrap servers of the site's Kafka cluster")
	fs.StringVar(&c.InputTopic, "input-topic", pipeline.TopicFramesRaw, "topic of captured frames")
	fs.StringVar(&c.OutputTopic, "output-topic", pipeline.TopicFramesEnriched, "topic of enriched frames")
	fs.IntVar(&c.Partitions, "partitions", pipeline.DefaultPartitions, "partitions of the output topic when enrich creates it")
	fs.IntVar(&c.BatchSize, "batch-size", 200, "records per transaction at most")
	fs.DurationVar(&c.BatchWait, "batch-wait", 100*time.Millisecond, "longest wait to fill a transaction")
	fs.StringVar(&c.DeadLetterTopic, "dead-letter-topic", pipeline.TopicFramesDeadLetter, "topic that records enrich cannot enrich go to, with the reason in headers")
	fs.IntVar(&c.MaxRecordBytes, "max-record-bytes", pipeline.MaxRecordBytes, "larger input records are dead-lettered")
	fs.IntVar(&c.MaxPixels, "max-pixels", 8192*8192, "frames with more pixels are dead-lettered")
	fs.IntVar(&c.ThumbnailWidth, "thumbnail-width", pipeline.DefaultThumbnailWidth, "width of the thumbnail added to each frame, 16..1024 (0: none; only JPEG headers are read)")
	fs.IntVar(&c.ThumbnailQuality, "thumbnail-quality", pipeline.DefaultThumbnailQuality, "JPEG quality of thumbnails, 1..100")
	fs.DurationVar(&c.KafkaWait, "kafka-wait", 30*time.Second, "how long to wait for Kafka at start before giving up")
	fs.DurationVar(&c.TransactionTimeout, "transaction-timeout", 5*time.Minute, "transaction timeout at the site's Kafka: longer than the broker outages enrich should ride through with a transaction open (a restarted enrich aborts its own at once)")
	c.Notify.Register(fs)
	c.Detect.Register(fs)
	if err := config.Parse(fs, args, lookupEnv); err != nil {
		return c, err
	}
	var ch config.Checker
	c.Common.Validate("enrich", &ch)
	ch.NotEmpty("kafka-bootstrap", c.KafkaBootstrap)
	ch.NotEmpty("input-topic", c.InputTopic)
	ch.NotEmpty("output-topic", c.OutputTopic)
	ch.Check(c.InputTopic != c.OutputTopic, "output-topic", c.OutputTopic, "must differ from input-topic")
	ch.Check(c.Partitions >= 1, "partitions", strconv.Itoa(c.Partitions), "must be at least 1")
	ch.Check(c.BatchSize >= 1 && c.BatchSize <= 10000, "batch-size", strconv.Itoa(c.BatchSize), "must be 1..10000")
	ch.Check(c.BatchWait > 0, "batch-wait", c.BatchWait.String(), "must be positive")
	ch.NotEmpty("dead-letter-topic", c.DeadLetterTopic)
	ch.Check(c.DeadLetterTopic != c.InputTopic && c.DeadLetterTopic != c.OutputTopic, "dead-letter-topic", c.DeadLetterTopic, "must differ from input-topic and output-topic")
	ch.Check(c.MaxRecordBytes >= 1024, "max-record-bytes", strconv.Itoa(c.MaxRecordBytes), "must be at least 1024")
	ch.Check(c.MaxPixels >= 64*64, "max-pixels", strconv.Itoa(c.MaxPixels), "must be at least 4096")
	ch.Check(c.ThumbnailWidth == 0 || (c.ThumbnailWidth >= 16 && c.ThumbnailWidth <= 1024), "thumbnail-width", strconv.Itoa(c.ThumbnailWidth), "must be 0 or 16..1024")
	ch.Check(c.ThumbnailQuality >= 1 && c.ThumbnailQuality <= 100, "thumbnail-quality", strconv.Itoa(c.ThumbnailQuality), "must be 1..100")
	ch.Check(c.KafkaWait > 0, "kafka-wait", c.KafkaWait.String(), "must be positive")
	ch.Check(c.TransactionTimeout >= 10*time.Second && c.TransactionTimeout <= 15*time.Minute, "transaction-timeout", c.TransactionTimeout.String(), "must be 10s..15m (the brokers' transaction.max.timeout.ms)")
	c.Notify.Validate(&ch)
	c.Detect.Validate(&ch)
	return c, ch.Err()
}
