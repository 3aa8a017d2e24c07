// Package bridge is the edge-to-cloud bridge service: it runs the bridge
// workloads the site's scheduler assigns to this worker, each a loop of
// forwarding sessions (package forward), and serves the admin API (status
// with link state, backlog, gaps and drain estimate; pause, resume, rate
// limit; topic list) and the Prometheus metrics.
//
// A workload's topic set comes from its params ("topics", a comma-separated
// list, or "topic-regex") and defaults to the -topics / -topic-regex flags.
// Its transactional id is cefiot-bridge.<site>.<workload>, so a replaced
// owner of the same workload is fenced by the cloud cluster.
package bridge

import (
	"flag"
	"strconv"
	"strings"
	"time"

	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/libs/service"
	"github.com/cefiot/cefiot/libs/tlsx"
	"github.com/cefiot/cefiot/services/bridge/internal/selection"
	"github.com/cefiot/cefiot/services/bridge/internal/sitestatus"
)

// Config is the bridge configuration.
type Config struct {
	service.Common
	EdgeBootstrap      string
	EdgeTLSCA          string
	EdgeTopicPrefix    string
	CloudBootstrap     string
	CloudTLSCA         string
	CloudTLSCert       string
	CloudTLSKey        string
	Topics             string
	TopicRegex         string
	BatchSize          int
	BatchBytes         int
	BatchWait          time.Duration
	TopicRefresh       time.Duration
	RateLimit          int64
	TransactionTimeout time.Duration
	ProbeInterval      time.Duration
	StatusInterval     time.Duration
	KafkaWait          time.Duration
}

// ParseConfig reads flags and CEFIOT_* environment variables and validates.
func ParseConfig(args []string, lookupEnv func(string) (string, bool)) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("bridge", flag.ContinueOnError)
	c.Common.Register(fs, "127.0.0.1:9103", "127.0.0.1:8103")
	fs.StringVar(&c.EdgeBootstrap, "edge-bootstrap", "127.0.0.1:19092", "bootstrap servers of the edge (source) cluster")
	fs.StringVar(&c.EdgeTLSCA, "edge-tls-ca", "", "the edge cluster's trust bundle (PEM) when its brokers' certificates are not from the site's CA (an edge cluster several sites share); default: -tls-ca")
	fs.StringVar(&c.EdgeTopicPrefix, "edge-topic-prefix", "", "where the site's topics live in an edge cluster several sites share: only topics under it are forwarded, and it is dropped in the cloud (site-a.frames.enriched becomes edge-<site>.frames.enriched)")
	fs.StringVar(&c.CloudBootstrap, "cloud-bootstrap", "127.0.0.1:29092", "bootstrap servers of the cloud (target) cluster")
	fs.StringVar(&c.CloudTLSCA, "cloud-tls-ca", "", "the cloud's trust bundle (PEM): the cloud brokers' certificates must chain to it (the bridge shows its own site certificate, which the cloud trusts)")
	fs.StringVar(&c.CloudTLSCert, "cloud-tls-cert", "", "the board's own certificate for the cloud cluster (node/<node>: one board can be revoked alone); default: -tls-cert")
	fs.StringVar(&c.CloudTLSKey, "cloud-tls-key", "", "the key of -cloud-tls-cert")
	fs.StringVar(&c.Topics, "topics", strings.Join(pipeline.DefaultBridgeTopics(), ","), "comma-separated edge topics to forward (a workload's \"topics\" param overrides it)")
	fs.StringVar(&c.TopicRegex, "topic-regex", "", "regular expression (RE2, whole name) of edge topics to forward; wins over -topics (a workload's \"topic-regex\" param overrides it)")
	fs.IntVar(&c.BatchSize, "batch-size", 5000, "records per transaction at most")
	fs.IntVar(&c.BatchBytes, "batch-bytes", 16<<20, "bytes (keys and values) per transaction at most")
	fs.DurationVar(&c.BatchWait, "batch-wait", 250*time.Millisecond, "longest time a transaction stays open to fill")
	fs.DurationVar(&c.TopicRefresh, "topic-refresh", 2*time.Second, "how often new edge topics and partitions are looked for")
	fs.Int64Var(&c.RateLimit, "rate-limit", 0, "forwarded bytes per second at most at start (0: no cap; SetRateLimit changes it live)")
	fs.DurationVar(&c.TransactionTimeout, "transaction-timeout", 60*time.Second, "transaction timeout at the cloud cluster (aborts a vanished bridge's transaction)")
	fs.DurationVar(&c.ProbeInterval, "probe-interval", time.Second, "how often the WAN link to the cloud cluster is probed")
	fs.DurationVar(&c.StatusInterval, "status-interval", sitestatus.DefaultInterval, "how often the bridge reports the site's status to the cloud (a site silent for three intervals is shown stale)")
	fs.DurationVar(&c.KafkaWait, "kafka-wait", 30*time.Second, "how long to wait for both clusters at start before giving up")
	if err := config.Parse(fs, args, lookupEnv); err != nil {
		return c, err
	}
	var ch config.Checker
	c.Common.Validate("bridge", &ch)
	ch.NotEmpty("edge-bootstrap", c.EdgeBootstrap)
	ch.NotEmpty("cloud-bootstrap", c.CloudBootstrap)
	ch.Check(c.TLS.InsecurePlaintext || c.CloudTLSCA != "", "cloud-tls-ca", c.CloudTLSCA, "required (TLS is on by default; -insecure-plaintext turns it off)")
	ch.Check((c.CloudTLSCert == "") == (c.CloudTLSKey == ""), "cloud-tls-key", c.CloudTLSKey, "give -cloud-tls-cert and -cloud-tls-key together")
	if !c.TLS.InsecurePlaintext && c.CloudTLSCert != "" && c.CloudTLSKey != "" && c.TLS.CA != "" {
		// The board's certificate is issued by the site's CA.
		board := tlsx.Files{Cert: c.CloudTLSCert, Key: c.CloudTLSKey, CA: c.TLS.CA}
		if err := board.Check(); err != nil {
			ch.Add(config.Invalid("cloud-tls-cert", c.CloudTLSCert, err.Error()))
		}
	}
	if !c.TLS.InsecurePlaintext && c.EdgeTLSCA != "" && c.TLS.Cert != "" && c.TLS.Key != "" {
		// Another trust domain's bundle: it must hold a certificate.
		if err := c.Edge().TLS.Usable(); err != nil {
			ch.Add(config.Invalid("edge-tls-ca", c.EdgeTLSCA, err.Error()))
		}
	}
	if err := selection.ValidEdgePrefix(c.EdgeTopicPrefix); err != nil {
		ch.Add(config.Invalid("edge-topic-prefix", c.EdgeTopicPrefix, err.Error()))
	}
	if c.TopicRegex != "" {
		if _, err := selection.FromRegex(c.TopicRegex); err != nil {
			ch.Add(config.Invalid("topic-regex", c.TopicRegex, err.Error()))
		}
	} else if _, err := selection.FromList(c.Topics); err != nil {
		ch.Add(config.Invalid("topics", c.Topics, err.Error()))
	}
	ch.Check(c.BatchSize >= 1 && c.BatchSize <= 100000, "batch-size", strconv.Itoa(c.BatchSize), "must be 1..100000")
	ch.Check(c.BatchBytes >= 1<<10 && c.BatchBytes <= 1<<30, "batch-bytes", strconv.Itoa(c.BatchBytes), "must be 1KiB..1GiB")
	ch.Check(c.BatchWait > 0, "batch-wait", c.BatchWait.String(), "must be positive")
	ch.Check(c.TopicRefresh >= 100*time.Millisecond, "topic-refresh", c.TopicRefresh.String(), "must be at least 100ms")
	ch.Check(c.RateLimit >= 0, "rate-limit", strconv.FormatInt(c.RateLimit, 10), "must be 0 (no cap) or positive")
	ch.Check(c.TransactionTimeout >= 10*time.Second && c.TransactionTimeout <= 15*time.Minute, "transaction-timeout", c.TransactionTimeout.String(), "must be 10s..15m")
	ch.Check(c.ProbeInterval >= 100*time.Millisecond, "probe-interval", c.ProbeInterval.String(), "must be at least 100ms")
	ch.Check(c.StatusInterval >= time.Second && c.StatusInterval <= 10*time.Second, "status-interval", c.StatusInterval.String(), "must be 1s..10s (the cloud shows a site stale after three intervals, within 30 s)")
	ch.Check(c.KafkaWait > 0, "kafka-wait", c.KafkaWait.String(), "must be positive")
	return c, ch.Err()
}

// Edge is the connection to the site's edge cluster: trusting the site's
// bundle, or -edge-tls-ca when given.
func (c Config) Edge() kafkax.Conn {
	if c.EdgeTLSCA != "" {
		return c.KafkaTrusting(c.EdgeBootstrap, c.EdgeTLSCA)
	}
	return c.Kafka(c.EdgeBootstrap)
}

// Cloud is the connection to the cloud cluster: the board's own
// certificate (or the bridge's site certificate), and the cloud's trust
// bundle.
func (c Config) Cloud() kafkax.Conn {
	conn := c.KafkaTrusting(c.CloudBootstrap, c.CloudTLSCA)
	if conn.TLS != nil && c.CloudTLSCert != "" {
		conn.TLS.Cert, conn.TLS.Key = c.CloudTLSCert, c.CloudTLSKey
	}
	return conn
}
