// Package sink is the sink service: it consumes the cloud copies of the
// sites' enriched frames, stores each frame once (keyed by frame id, so
// replays are idempotent) and serves the store over gRPC and REST.
package sink

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cefiot/cefiot/services/sink/internal/store"

	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/libs/service"
)

// Config is the sink configuration.
type Config struct {
	service.Common
	KafkaBootstrap string
	TopicPattern   string
	StoreDir       string
	// StoreBackend is "filesystem" (frames under StoreDir) or "s3" (frames
	// in a bucket, the index still under StoreDir).
	StoreBackend string
	S3           store.S3Config
	// Index is "bbolt" (a file under StoreDir: one sink) or "postgres"
	// (shared by sink replicas; IndexPostgres says where).
	Index         string
	IndexPostgres store.PostgresConfig
	// Retention is the default policy plus per-camera overrides.
	Retention         store.Retention
	RetentionFile     string
	RetentionInterval time.Duration
	DeadLetterTopic   string
	MaxFrameBytes     int64
	BatchSize         int
	StoreConcurrency  int
	BatchWait         time.Duration
	KafkaWait         time.Duration
}

// ParseConfig reads flags and CEFIOT_* environment variables and validates.
func ParseConfig(args []string, lookupEnv func(string) (string, bool)) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	c.Common.Register(fs, "127.0.0.1:9104", "127.0.0.1:8104")
	fs.StringVar(&c.KafkaBootstrap, "kafka-bootstrap", "127.0.0.1:29092", "bootstrap servers of the cloud Kafka cluster")
	fs.StringVar(&c.TopicPattern, "topic-pattern", pipeline.CloudTopicPattern(pipeline.TopicFramesEnriched), "regular expression of the topics to store")
	fs.StringVar(&c.StoreDir, "store-dir", "./data/sink", "directory of the frame store's index (and of the frames with -store-backend filesystem)")
	fs.StringVar(&c.StoreBackend, "store-backend", "filesystem", "where frames go: filesystem or s3")
	fs.StringVar(&c.S3.Endpoint, "s3-endpoint", "", "S3 endpoint host:port (with -store-backend s3)")
	fs.BoolVar(&c.S3.Secure, "s3-secure", false, "use https for S3")
	fs.StringVar(&c.S3.Region, "s3-region", "", "S3 region (empty: discovered)")
	fs.StringVar(&c.S3.Bucket, "s3-bucket", "", "S3 bucket of the frames")
	fs.StringVar(&c.S3.Prefix, "s3-prefix", "", "key prefix inside the bucket")
	fs.StringVar(&c.S3.AccessKey, "s3-access-key", "", "S3 access key")
	fs.StringVar(&c.S3.SecretKey, "s3-secret-key", "", "S3 secret key (prefer the env CEFIOT_S3_SECRET_KEY)")
	fs.BoolVar(&c.S3.CreateBucket, "s3-create-bucket", false, "create the bucket at start if it does not exist")
	fs.StringVar(&c.Index, "index", "bbolt", "where the frame index lives: bbolt (a file under -store-dir, one sink) or postgres (shared by sink replicas)")
	fs.StringVar(&c.IndexPostgres.DSN, "index-dsn", "", "PostgreSQL connection string of the index, with sslmode=verify-full (prefer the env CEFIOT_INDEX_DSN: it holds a password)")
	fs.StringVar(&c.IndexPostgres.Schema, "index-schema", "cefiot", "PostgreSQL schema of the index's tables")
	fs.DurationVar(&c.Retention.Default.MaxAge, "retention-max-age", 0, "delete frames captured longer ago than this, per camera (0: keep)")
	maxBytes := fs.String("retention-max-bytes", "0", "keep at most this many JPEG bytes per camera, oldest deleted first (e.g. 20GiB; 0: no limit)")
	fs.StringVar(&c.RetentionFile, "retention-file", "", "YAML file with per-camera retention overrides (see docs/data-plane.md)")
	fs.DurationVar(&c.RetentionInterval, "retention-interval", time.Minute, "how often retention runs")
	fs.StringVar(&c.DeadLetterTopic, "dead-letter-topic", pipeline.TopicSinkDeadLetter, "topic of the cloud cluster that records the sink refuses go to")
	maxFrame := fs.String("max-frame-bytes", "16MiB", "largest JPEG the sink stores; larger records are dead-lettered")
	fs.IntVar(&c.BatchSize, "batch-size", 200, "records stored between offset commits at most")
	fs.IntVar(&c.StoreConcurrency, "store-concurrency", 8, "records of a batch stored at once (their disk flushes and index commits overlap)")
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
	switch c.StoreBackend {
	case "filesystem":
	case "s3":
		ch.NotEmpty("s3-endpoint", c.S3.Endpoint)
		ch.Check(!strings.Contains(c.S3.Endpoint, "://"), "s3-endpoint", c.S3.Endpoint, "must be host:port without a scheme (use -s3-secure for https)")
		ch.NotEmpty("s3-bucket", c.S3.Bucket)
		ch.NotEmpty("s3-access-key", c.S3.AccessKey)
		ch.Check(c.S3.SecretKey != "", "s3-secret-key", "", "must not be empty")
	default:
		ch.Add(config.Invalid("store-backend", c.StoreBackend, "must be filesystem or s3"))
	}
	switch c.Index {
	case "bbolt":
	case "postgres":
		ch.NotEmpty("index-dsn", c.IndexPostgres.DSN)
		ch.Check(c.IndexPostgres.DSN == "" || !insecureDSN(c.IndexPostgres.DSN), "index-dsn", "",
			"must ask for a verified TLS connection (sslmode=verify-full)")
		ch.Check(store.ValidSchemaName(c.IndexPostgres.Schema), "index-schema", c.IndexPostgres.Schema, "must be lowercase letters, digits and _")
	default:
		ch.Add(config.Invalid("index", c.Index, "must be bbolt or postgres"))
	}
	ch.Check(c.Retention.Default.MaxAge >= 0, "retention-max-age", c.Retention.Default.MaxAge.String(), "must not be negative")
	if n, err := config.ParseBytes(*maxBytes); err != nil {
		ch.Add(config.Invalid("retention-max-bytes", *maxBytes, err.Error()))
	} else {
		c.Retention.Default.MaxBytes = n
	}
	if n, err := config.ParseBytes(*maxFrame); err != nil || n <= 0 {
		ch.Add(config.Invalid("max-frame-bytes", *maxFrame, "must be a positive size such as 16MiB"))
	} else {
		c.MaxFrameBytes = n
	}
	if c.RetentionFile != "" {
		cams, err := LoadRetentionFile(c.RetentionFile)
		if err != nil {
			ch.Add(config.Invalid("retention-file", c.RetentionFile, err.Error()))
		}
		c.Retention.Cameras = cams
	}
	ch.Check(c.RetentionInterval >= time.Second, "retention-interval", c.RetentionInterval.String(), "must be at least 1s")
	ch.NotEmpty("dead-letter-topic", c.DeadLetterTopic)
	ch.Check(c.BatchSize >= 1 && c.BatchSize <= 10000, "batch-size", strconv.Itoa(c.BatchSize), "must be 1..10000")
	ch.Check(c.StoreConcurrency >= 1 && c.StoreConcurrency <= 64, "store-concurrency", strconv.Itoa(c.StoreConcurrency), "must be 1..64")
	ch.Check(c.BatchWait > 0, "batch-wait", c.BatchWait.String(), "must be positive")
	ch.Check(c.KafkaWait > 0, "kafka-wait", c.KafkaWait.String(), "must be positive")
	return c, ch.Err()
}

// insecureDSN reports a PostgreSQL connection string that does not ask
// for a verified TLS connection: the index travels over the network, and
// a sink must not accept a server it cannot authenticate.
func insecureDSN(dsn string) bool {
	return !strings.Contains(dsn, "sslmode=verify-full")
}

// retentionFile is the YAML of -retention-file:
//
//	cameras:
//	  cam-1: {max_age: 72h, max_bytes: 10GiB}
//	  door:  {max_age: 720h}
type retentionFile struct {
	Cameras map[string]struct {
		MaxAge   string `yaml:"max_age"`
		MaxBytes string `yaml:"max_bytes"`
	} `yaml:"cameras"`
}

// LoadRetentionFile reads per-camera retention policies; errors name the
// camera and field.
func LoadRetentionFile(path string) (map[string]store.RetentionPolicy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f retentionFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	out := map[string]store.RetentionPolicy{}
	for cam, p := range f.Cameras {
		var pol store.RetentionPolicy
		if p.MaxAge != "" {
			d, err := time.ParseDuration(p.MaxAge)
			if err != nil || d < 0 {
				return nil, fmt.Errorf("cameras.%s.max_age %q: want a duration such as 72h", cam, p.MaxAge)
			}
			pol.MaxAge = d
		}
		if p.MaxBytes != "" {
			n, err := config.ParseBytes(p.MaxBytes)
			if err != nil {
				return nil, fmt.Errorf("cameras.%s.max_bytes %q: %v", cam, p.MaxBytes, err)
			}
			pol.MaxBytes = n
		}
		out[cam] = pol
	}
	return out, nil
}
