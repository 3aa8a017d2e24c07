// Package service is the process skeleton every cefiot data-plane service
// shares: the common flags (site, node, etcd, admin addresses, logging), the
// admin server, the connection to the site's etcd and the worker that runs
// the workloads the scheduler assigns.
//
// A service's main parses its own config (which embeds Common), builds its
// workload runner and admin API, and calls Run.
package service

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/admin"
	"github.com/cefiot/cefiot/libs/audit"
	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/etcdx"
	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/logging"
	"github.com/cefiot/cefiot/libs/placement"
	"github.com/cefiot/cefiot/libs/tlsx"
	"github.com/cefiot/cefiot/libs/worker"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// Common is the configuration every data-plane service takes.
type Common struct {
	Site          string
	Node          string
	WorkerID      string
	EtcdEndpoints string
	LeaseTTL      time.Duration
	Labels        string
	GRPCAddr      string
	HTTPAddr      string
	LogLevel      string
	LogFormat     string
	TLS           tlsx.Flags
}

// DefaultLeaseTTL is a worker's lease TTL unless -lease-ttl says
// otherwise: a dead node's work moves within about TTL + 1 s (p99 at most
// 3 s, TestFailoverWithinThreeSecondsAtTheDefaultLease). etcd grants it
// only with a 500 ms election timeout (k8s/base/etcd.yaml; otherwise its
// leases are at least 2 s). A worker that cannot renew for TTL − TTL/3
// fences itself; degraded mode keeps the overlap-safe workloads running
// (libs/worker).
const DefaultLeaseTTL = time.Second

// Register adds the common flags to fs with the service's default ports.
func (c *Common) Register(fs *flag.FlagSet, defaultGRPC, defaultHTTP string) {
	host, _ := os.Hostname()
	fs.StringVar(&c.Site, "site", "edge", "site this worker belongs to")
	fs.StringVar(&c.Node, "node", host, "node (machine) name this worker runs on")
	fs.StringVar(&c.WorkerID, "worker-id", "", "worker id, unique in the site (default <service>-<node>)")
	fs.StringVar(&c.EtcdEndpoints, "etcd-endpoints", "127.0.0.1:2379", "comma-separated etcd endpoints of the site")
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", DefaultLeaseTTL, "worker lease TTL in etcd (failover detection time)")
	fs.StringVar(&c.Labels, "labels", "", "node labels as k=v,k=v, matched against workload node selectors")
	fs.StringVar(&c.GRPCAddr, "grpc-addr", defaultGRPC, "admin gRPC listen address")
	fs.StringVar(&c.HTTPAddr, "http-addr", defaultHTTP, "admin HTTP (REST, /metrics) listen address")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "text or json")
	c.TLS.Register(fs)
}

// Validate checks the common keys and fills defaults that depend on others.
func (c *Common) Validate(service string, ch *config.Checker) {
	ch.NotEmpty("site", c.Site)
	if c.Site != "" {
		if _, err := placement.NewKeys(c.Site); err != nil {
			ch.Add(config.Invalid("site", c.Site, err.Error()))
		}
	}
	ch.NotEmpty("node", c.Node)
	if c.WorkerID == "" && c.Node != "" {
		c.WorkerID = service + "-" + c.Node
	}
	ch.Check(placement.ValidName(c.WorkerID), "worker-id", c.WorkerID, "must be letters, digits, '.', '_', ':' or '-'")
	ch.NotEmpty("etcd-endpoints", c.EtcdEndpoints)
	ch.Check(c.LeaseTTL >= time.Second, "lease-ttl", c.LeaseTTL.String(), "must be at least 1s")
	if _, err := ParseLabels(c.Labels); err != nil {
		ch.Add(config.Invalid("labels", c.Labels, err.Error()))
	}
	ch.NotEmpty("grpc-addr", c.GRPCAddr)
	ch.NotEmpty("http-addr", c.HTTPAddr)
	if _, err := logging.New(os.Stderr, c.LogLevel, "text"); err != nil {
		ch.Add(config.Invalid("log-level", c.LogLevel, err.Error()))
	}
	if _, err := logging.New(os.Stderr, "info", c.LogFormat); err != nil {
		ch.Add(config.Invalid("log-format", c.LogFormat, err.Error()))
	}
	c.TLS.Validate(ch)
}

// Logger builds the logger the config asks for.
func (c *Common) Logger(service string) *slog.Logger {
	l, err := logging.New(os.Stderr, c.LogLevel, c.LogFormat)
	if err != nil {
		l = slog.Default()
	}
	return l.With("service", service, "site", c.Site, "node", c.Node)
}

// ParseLabels parses "k=v,k=v".
func ParseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("label %q: want key=value", part)
		}
		out[k] = v
	}
	return out, nil
}

// Process is a running service process.
type Process struct {
	Name     string
	Common   Common
	Logger   *slog.Logger
	Registry *prometheus.Registry
	Admin    *admin.Server
	// TLS is the process's key pair and trust bundle (nil with
	// -insecure-plaintext).
	TLS    *tlsx.Source
	worker *worker.Worker
	// kafka watches the Kafka connections' TLS files; with restartOnKafka
	// a change starts every workload's run again.
	kafka          *kafkax.CredentialWatch
	restartOnKafka bool
	audit          *audit.Kafka
	overlapSafe    func(*cefiotv1.Workload) bool
}

// AuditTo appends the audit trail of the process's state-changing calls
// to the site's Kafka cluster at conn (libs/audit), until Run ends.
func (p *Process) AuditTo(ctx context.Context, conn kafkax.Conn) error {
	k, err := audit.Start(ctx, conn, p.Logger, p.Registry)
	if err != nil {
		return fmt.Errorf("%s: %w", p.Name, err)
	}
	p.audit = k
	p.Admin.SetAudit(k)
	return nil
}

// WatchKafkaCredentials watches the TLS files of the process's Kafka
// connections while Run runs. librdkafka reads them once, when a client is
// made, so the service makes new clients when they change: loops run with
// kafkax.Renewing under the returned watch do, and so must the workloads
// (see RestartOnNewKafkaCredentials).
func (p *Process) WatchKafkaCredentials(conns ...kafkax.Conn) *kafkax.CredentialWatch {
	p.kafka = kafkax.WatchCredentials(p.Logger, conns...)
	return p.kafka
}

// KeepRunningWhenFenced names the workloads that are safe to overlap with a
// second owner (worker.Config.OverlapSafe): they keep running in degraded
// mode while the worker cannot renew its lease (the site's etcd lost its
// quorum, or the node is cut off from it). Call it before Run.
func (p *Process) KeepRunningWhenFenced(safe func(*cefiotv1.Workload) bool) { p.overlapSafe = safe }

// RestartOnNewKafkaCredentials is WatchKafkaCredentials, and when the files
// change Run's worker stops every workload's run and starts it again (with
// new clients) under the same claim: for workloads that stop cleanly at
// any moment (a transaction aborted, offsets not committed).
func (p *Process) RestartOnNewKafkaCredentials(conns ...kafkax.Conn) *kafkax.CredentialWatch {
	p.restartOnKafka = true
	return p.WatchKafkaCredentials(conns...)
}

// New loads the TLS files and listens on the admin addresses. The admin
// API is the gRPC service named api (e.g. cefiotv1.BridgeService_ServiceDesc.ServiceName):
// observers of the site may call its methods, operators also those in
// changes (full method names). Register it on p.Admin before calling Run.
func New(name string, c Common, logger *slog.Logger, api string, changes ...string) (*Process, error) {
	reg := prometheus.NewRegistry()
	src, err := c.TLS.Open(logger, reg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	adm, err := admin.New(admin.Config{
		GRPCAddr: c.GRPCAddr, HTTPAddr: c.HTTPAddr, TLS: src, Policy: access.Policy(c.Site, api, changes...), Service: name,
	}, reg, logger)
	if err != nil {
		return nil, err
	}
	return &Process{Name: name, Common: c, Logger: logger, Registry: reg, Admin: adm, TLS: src}, nil
}

// Status returns the worker part of the service status.
func (p *Process) Status(counters map[string]int64) *cefiotv1.WorkerStatus {
	st := &cefiotv1.WorkerStatus{
		Service: p.Name, WorkerId: p.Common.WorkerID, Node: p.Common.Node, Site: p.Common.Site, Counters: counters,
	}
	if p.worker != nil {
		st.Registered, st.Workloads = p.worker.Status()
	}
	return st
}

// Run connects to the site's etcd, registers the worker for kinds and runs
// the admin server and the assigned workloads until ctx ends.
func (p *Process) Run(ctx context.Context, kinds []string, run worker.Runner) error {
	keys, err := placement.NewKeys(p.Common.Site)
	if err != nil {
		return err
	}
	labels, err := ParseLabels(p.Common.Labels)
	if err != nil {
		return err
	}
	cli, err := etcdx.Connect(ctx, strings.Split(p.Common.EtcdEndpoints, ","), p.TLS.ClientConfigOrNil())
	if err != nil {
		return fmt.Errorf("%s: %w", p.Name, err)
	}
	defer cli.Close()
	w, err := worker.New(cli, worker.Config{
		Keys: keys, ID: p.Common.WorkerID, Node: p.Common.Node, Kinds: kinds, Labels: labels,
		LeaseTTL: p.Common.LeaseTTL, AdminGRPC: p.Admin.GRPCAddr(), AdminHTTP: p.Admin.HTTPAddr(),
		Registerer: p.Registry, OverlapSafe: p.overlapSafe,
		// A worker that cannot show its workloads stopped before its lease
		// could expire must not live on next to their new owner.
		OnFenceOverrun: func(stuck []string) {
			p.Logger.Error("exiting: workloads did not stop before the lease could expire", "workloads", stuck)
			os.Exit(3)
		},
	}, run, p.Logger)
	if err != nil {
		return err
	}
	p.worker = w
	if p.audit != nil {
		defer p.audit.Close()
	}
	p.Admin.SetServing("", true)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return p.Admin.Run(gctx) })
	if p.TLS != nil {
		g.Go(func() error { p.TLS.Watch(gctx, tlsx.ReloadInterval); return nil })
	}
	if p.kafka != nil {
		g.Go(func() error { p.kafka.Run(gctx, tlsx.ReloadInterval); return nil })
	}
	if p.kafka != nil && p.restartOnKafka {
		g.Go(func() error {
			for {
				select {
				case <-gctx.Done():
					return nil
				case <-p.kafka.Changed():
					w.Refresh("Kafka credentials changed")
				}
			}
		})
	}
	g.Go(func() error { return w.Run(gctx) })
	return g.Wait()
}

// Kafka is how this process reaches the Kafka cluster at bootstrap: as
// itself (its key pair), trusting the site's bundle, or plaintext with
// -insecure-plaintext.
func (c Common) Kafka(bootstrap string) kafkax.Conn {
	return c.KafkaTrusting(bootstrap, c.TLS.CA)
}

// KafkaTrusting is Kafka for a cluster of another trust domain, whose
// brokers' certificates the bundle ca signed (the bridge's cloud cluster).
func (c Common) KafkaTrusting(bootstrap, ca string) kafkax.Conn {
	if c.TLS.InsecurePlaintext {
		return kafkax.Conn{Bootstrap: bootstrap}
	}
	files := c.TLS.Files()
	files.CA = ca
	return kafkax.Conn{Bootstrap: bootstrap, TLS: &files}
}

// RequireKafka waits up to wait for each cluster (config key -> cluster)
// to answer, and returns an error naming the key when one does not.
func RequireKafka(ctx context.Context, wait time.Duration, clusters map[string]kafkax.Conn) error {
	for key, conn := range clusters {
		waitCtx, cancel := context.WithTimeout(ctx, wait)
		err := kafkax.WaitReachable(waitCtx, conn)
		cancel()
		if err != nil {
			return fmt.Errorf("config key %s: %w", key, err)
		}
	}
	return nil
}
