// Package scheduler is the scheduler service: leader election among replicas
// through the site's etcd, and placement of workloads on live workers.
package scheduler

import (
	"flag"
	"os"
	"strings"
	"time"

	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/logging"
	"github.com/cefiot/cefiot/libs/placement"
	"github.com/cefiot/cefiot/libs/tlsx"
	"github.com/cefiot/cefiot/services/scheduler/internal/boardsigner"
)

// Config is the scheduler configuration.
type Config struct {
	Site          string
	ReplicaID     string
	EtcdEndpoints string // empty: run an embedded etcd
	EtcdDir       string
	EtcdClient    string
	EtcdPeer      string
	SpecPath      string
	SessionTTL    time.Duration
	Resync        time.Duration
	GRPCAddr      string
	HTTPAddr      string
	LogLevel      string
	LogFormat     string
	TLS           tlsx.Flags
	EtcdObservers string
	// KafkaBootstrap is the site's Kafka cluster, where the audit trail of
	// the scheduler's admin API goes (empty: the log only).
	KafkaBootstrap string
	// BoardSignerCA is the site CA (tls.crt, tls.key) with which the leader
	// issues each board its cloud credential (empty: it issues none).
	BoardSignerCA string
}

// ParseConfig reads flags and CEFIOT_* environment variables and validates.
func ParseConfig(args []string, lookupEnv func(string) (string, bool)) (Config, error) {
	var c Config
	host, _ := os.Hostname()
	fs := flag.NewFlagSet("scheduler", flag.ContinueOnError)
	fs.StringVar(&c.Site, "site", "edge", "site this scheduler governs")
	fs.StringVar(&c.ReplicaID, "replica-id", "scheduler-"+host, "id of this scheduler replica")
	fs.StringVar(&c.EtcdEndpoints, "etcd-endpoints", "", "comma-separated endpoints of the site's etcd; empty runs an embedded etcd")
	fs.StringVar(&c.EtcdDir, "etcd-dir", "./data/etcd", "data directory of the embedded etcd")
	fs.StringVar(&c.EtcdClient, "etcd-client-addr", "127.0.0.1:2379", "client address of the embedded etcd")
	fs.StringVar(&c.EtcdPeer, "etcd-peer-addr", "127.0.0.1:2380", "peer address of the embedded etcd")
	fs.StringVar(&c.SpecPath, "spec", "", "pipeline spec (YAML) applied when this replica becomes leader")
	fs.DurationVar(&c.SessionTTL, "session-ttl", 3*time.Second, "leader session TTL")
	fs.DurationVar(&c.Resync, "resync", 2*time.Second, "interval of a full reconcile besides watch events")
	fs.StringVar(&c.GRPCAddr, "grpc-addr", "127.0.0.1:9100", "admin gRPC listen address")
	fs.StringVar(&c.HTTPAddr, "http-addr", "127.0.0.1:8100", "admin HTTP (REST, /metrics) listen address")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "text or json")
	c.TLS.Register(fs)
	fs.StringVar(&c.KafkaBootstrap, "kafka-bootstrap", "", "bootstrap servers of the site's Kafka cluster: the audit trail of every state-changing call goes to its audit topic (empty: to the log only)")
	fs.StringVar(&c.EtcdObservers, "etcd-observers", "", "comma-separated identities (operator/alice) that may read the site's etcd keys (etcdctl); the scheduler is etcd's root, workers write only their registrations and claims")
	fs.StringVar(&c.BoardSignerCA, "board-signer-ca", "", "directory of the site CA (tls.crt, tls.key: the Secret cefiot-site-ca) with which the leader answers the Kubernetes pod certificate requests of signer "+boardsigner.SignerName+", giving each enrolled board its own cloud credential node/<board>; empty: none are answered. Needs the pod's service account token")
	if err := config.Parse(fs, args, lookupEnv); err != nil {
		return c, err
	}
	var ch config.Checker
	if _, err := placement.NewKeys(c.Site); err != nil {
		ch.Add(config.Invalid("site", c.Site, err.Error()))
	}
	ch.Check(placement.ValidName(c.ReplicaID), "replica-id", c.ReplicaID, "must be letters, digits, '.', '_', ':' or '-'")
	if strings.TrimSpace(c.EtcdEndpoints) == "" {
		ch.NotEmpty("etcd-dir", c.EtcdDir)
		ch.NotEmpty("etcd-client-addr", c.EtcdClient)
		ch.NotEmpty("etcd-peer-addr", c.EtcdPeer)
	}
	if c.SpecPath != "" {
		if spec, err := placement.LoadSpec(c.SpecPath); err != nil {
			ch.Add(config.Invalid("spec", c.SpecPath, err.Error()))
		} else if spec.Site != c.Site {
			ch.Add(config.Invalid("spec", c.SpecPath, "spec is for site "+spec.Site+", this scheduler governs "+c.Site))
		}
	}
	ch.Check(c.SessionTTL >= time.Second, "session-ttl", c.SessionTTL.String(), "must be at least 1s")
	ch.Check(c.Resync > 0, "resync", c.Resync.String(), "must be positive")
	ch.NotEmpty("grpc-addr", c.GRPCAddr)
	ch.NotEmpty("http-addr", c.HTTPAddr)
	if _, err := logging.New(os.Stderr, c.LogLevel, c.LogFormat); err != nil {
		ch.Add(config.Invalid("log-level/log-format", c.LogLevel+"/"+c.LogFormat, err.Error()))
	}
	if c.BoardSignerCA != "" {
		if err := boardsigner.CheckCA(c.BoardSignerCA, c.Site); err != nil {
			ch.Add(config.Invalid("board-signer-ca", c.BoardSignerCA, err.Error()))
		}
	}
	c.TLS.Validate(&ch)
	return c, ch.Err()
}

// kafka is how the scheduler reaches its site's Kafka cluster: as itself,
// trusting the site's bundle (plaintext with -insecure-plaintext).
func (c Config) kafka() kafkax.Conn {
	if c.TLS.InsecurePlaintext {
		return kafkax.Conn{Bootstrap: c.KafkaBootstrap}
	}
	files := c.TLS.Files()
	return kafkax.Conn{Bootstrap: c.KafkaBootstrap, TLS: &files}
}
