// Package sink is the sink service: it consumes the cloud copies of the
// sites' enriched frames, stores each frame once (keyed by frame id, so
// replays are idempotent) and serves the store over gRPC and REST.
package sink

import (
	"flag"
	"regexp"
	"strconv"
	"time"

	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/service"
)

// Config is the sink configuration.
type Config struct {
	service.Common
	KafkaBootstrap string
	TopicPattern   string
	StoreDir       string
	BatchSize      int
	BatchWait      time.Duration
	KafkaWait      time.Duration
}

// ParseConfig reads flags and CEFIOT_* environment variables and validates.
func ParseConfig(args []string, lookupEnv func(string) (string, bool)) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	c.Common.Register(fs, "127.0.0.1:9104", "127.0.0.1:8104")
	fs.StringVar(&c.KafkaBootstrap, "kafka-bootstrap", "127.0.0.1:29092", "bootstrap servers of the cloud Kafka cluster")
	fs.StringVar(&c.TopicPattern, "topic-pattern", `^edge-.+\.frames\.enriched$`, "regular expression of the topics to store")
	fs.StringVar(&c.StoreDir, "store-dir", "./data/sink", "directory of the frame store")
	fs.IntVar(&c.BatchSize, "batch-size", 200, "records stored between offset commits at most")
	fs.DurationVar(&c.BatchWait, "batch-wait", 100*time.Millisecond, "longest wait to fill a batch")
	fs.DurationVar(&c.KafkaWait, "kafka-wait", 30*time.Second, "how long to wait for Kafka at start before giving up")
	if err := config.Parse(fs, args, lookupEnv); err != nil {
		return c, err
	}
	var ch config.Checker
	c.Common.Validate("sink", &ch)
	ch.NotEmpty("kafka-bootstrap", c.KafkaBootstrap)
	if _, err := regexp.Compile(c.TopicPattern); err != nil {
		ch.Add(config.Invalid("topic-pattern", c.TopicPattern, err.Error()))
	}
	ch.Check(len(c.TopicPattern) > 0 && c.TopicPattern[0] == '^', "topic-pattern", c.TopicPattern, "must start with ^ (a Kafka regex subscription)")
	ch.NotEmpty("store-dir", c.StoreDir)
	ch.Check(c.BatchSize >= 1 && c.BatchSize <= 10000, "batch-size", strconv.Itoa(c.BatchSize), "must be 1..10000")
	ch.Check(c.BatchWait > 0, "batch-wait", c.BatchWait.String(), "must be positive")
	ch.Check(c.KafkaWait > 0, "kafka-wait", c.KafkaWait.String(), "must be positive")
	return c, ch.Err()
}
