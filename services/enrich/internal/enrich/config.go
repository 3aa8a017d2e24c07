// Package enrich is the enrich service: a stateless, transactional
// frames.raw -> frames.enriched transform.
package enrich

import (
	"flag"
	"time"

	"strconv"

	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/service"
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
	KafkaWait      time.Duration
}

// ParseConfig reads flags and CEFIOT_* environment variables and validates.
func ParseConfig(args []string, lookupEnv func(string) (string, bool)) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("enrich", flag.ContinueOnError)
	c.Common.Register(fs, "127.0.0.1:9102", "127.0.0.1:8102")
	fs.StringVar(&c.KafkaBootstrap, "kafka-bootstrap", "127.0.0.1:19092", "bootstrap servers of the site's Kafka cluster")
	fs.StringVar(&c.InputTopic, "input-topic", "frames.raw", "topic of captured frames")
	fs.StringVar(&c.OutputTopic, "output-topic", "frames.enriched", "topic of enriched frames")
	fs.IntVar(&c.Partitions, "partitions", 3, "partitions of the output topic when enrich creates it")
	fs.IntVar(&c.BatchSize, "batch-size", 200, "records per transaction at most")
	fs.DurationVar(&c.BatchWait, "batch-wait", 100*time.Millisecond, "longest wait to fill a transaction")
	fs.DurationVar(&c.KafkaWait, "kafka-wait", 30*time.Second, "how long to wait for Kafka at start before giving up")
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
	ch.Check(c.KafkaWait > 0, "kafka-wait", c.KafkaWait.String(), "must be positive")
	return c, ch.Err()
}
