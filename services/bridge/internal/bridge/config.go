// Package bridge is the edge-to-cloud bridge: it forwards edge topics to the
// cloud cluster as edge-<site>.<topic>, keeping key, headers, timestamp and
// partition, and checkpoints the source offsets in the cloud cluster inside
// the same Kafka transaction as the forwarded records.
package bridge

import (
	"flag"
	"strconv"
	"strings"
	"time"

	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/service"
)

// Config is the bridge configuration.
type Config struct {
	service.Common
	EdgeBootstrap   string
	CloudBootstrap  string
	Topics          []string
	CheckpointTopic string
	BatchSize       int
	BatchWait       time.Duration
	KafkaWait       time.Duration
}

// ParseConfig reads flags and CEFIOT_* environment variables and validates.
func ParseConfig(args []string, lookupEnv func(string) (string, bool)) (Config, error) {
	var c Config
	var topics string
	fs := flag.NewFlagSet("bridge", flag.ContinueOnError)
	c.Common.Register(fs, "127.0.0.1:9103", "127.0.0.1:8103")
	fs.StringVar(&c.EdgeBootstrap, "edge-bootstrap", "127.0.0.1:19092", "bootstrap servers of the edge (source) cluster")
	fs.StringVar(&c.CloudBootstrap, "cloud-bootstrap", "127.0.0.1:29092", "bootstrap servers of the cloud (target) cluster")
	fs.StringVar(&topics, "topics", "frames.enriched", "comma-separated edge topics to forward")
	fs.StringVar(&c.CheckpointTopic, "checkpoint-topic", "_cefiot.bridge.checkpoints", "compacted topic in the cloud cluster holding source offsets")
	fs.IntVar(&c.BatchSize, "batch-size", 500, "records per transaction at most")
	fs.DurationVar(&c.BatchWait, "batch-wait", 100*time.Millisecond, "longest wait to fill a transaction")
	fs.DurationVar(&c.KafkaWait, "kafka-wait", 30*time.Second, "how long to wait for both clusters at start before giving up")
	if err := config.Parse(fs, args, lookupEnv); err != nil {
		return c, err
	}
	for _, t := range strings.Split(topics, ",") {
		if t = strings.TrimSpace(t); t != "" {
			c.Topics = append(c.Topics, t)
		}
	}
	var ch config.Checker
	c.Common.Validate("bridge", &ch)
	ch.NotEmpty("edge-bootstrap", c.EdgeBootstrap)
	ch.NotEmpty("cloud-bootstrap", c.CloudBootstrap)
	ch.Check(len(c.Topics) > 0, "topics", topics, "must name at least one topic")
	ch.NotEmpty("checkpoint-topic", c.CheckpointTopic)
	ch.Check(c.BatchSize >= 1 && c.BatchSize <= 100000, "batch-size", strconv.Itoa(c.BatchSize), "must be 1..100000")
	ch.Check(c.BatchWait > 0, "batch-wait", c.BatchWait.String(), "must be positive")
	ch.Check(c.KafkaWait > 0, "kafka-wait", c.KafkaWait.String(), "must be positive")
	return c, ch.Err()
}
