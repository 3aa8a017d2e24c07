package scheduler

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/admin"
	"github.com/cefiot/cefiot/libs/audit"
	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/etcdauth"
	"github.com/cefiot/cefiot/libs/etcdx"
	"github.com/cefiot/cefiot/libs/logging"
	"github.com/cefiot/cefiot/libs/placement"
	"github.com/cefiot/cefiot/libs/tlsx"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// Run runs a scheduler replica until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	base, err := logging.New(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	logger := base.With("service", "scheduler", "site", cfg.Site, "replica", cfg.ReplicaID)
	reg := prometheus.NewRegistry()
	src, err := cfg.TLS.Open(logger, reg)
	if err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	var spec *placement.Spec
	if cfg.SpecPath != "" {
		if spec, err = placement.LoadSpec(cfg.SpecPath); err != nil {
			return fmt.Errorf("config key spec: %w", err)
		}
	}
	// Listen first: callers may connect while etcd starts.
	policy := access.Policy(cfg.Site, cefiotv1.SchedulerService_ServiceDesc.ServiceName,
		cefiotv1.SchedulerService_CordonNode_FullMethodName, cefiotv1.SchedulerService_UncordonNode_FullMethodName,
		cefiotv1.SchedulerService_DrainNode_FullMethodName, cefiotv1.SchedulerService_MoveWorkload_FullMethodName,
		cefiotv1.SchedulerService_ApplySpec_FullMethodName, cefiotv1.SchedulerService_PutWorkload_FullMethodName,
		cefiotv1.SchedulerService_DeleteWorkload_FullMethodName)
	// The trail names people and what they did: operators read it, and
	// each read is itself audited.
	policy.Rules[cefiotv1.SchedulerService_ListAudit_FullMethodName] = access.Operators()
	// Replacing the pipeline is an administrator's; an operator may put
	// and delete workloads only to hand them off between sites (the API
	// checks what they change).
	policy.Rules[cefiotv1.SchedulerService_ApplySpec_FullMethodName] = access.Administrators()
	adm, err := admin.New(admin.Config{
		GRPCAddr: cfg.GRPCAddr, HTTPAddr: cfg.HTTPAddr, TLS: src, Policy: policy, Service: "scheduler",
	}, reg, logger)
	if err != nil {
		return err
	}
	if cfg.KafkaBootstrap != "" {
		trail, err := audit.Start(ctx, cfg.kafka(), logger, reg)
		if err != nil {
			return fmt.Errorf("config key kafka-bootstrap: %w", err)
		}
		defer trail.Close()
		adm.SetAudit(trail)
	} else {
		logger.Warn("the audit trail goes to the log only: -kafka-bootstrap is not set")
	}
	endpoints := cfg.EtcdEndpoints
	if strings.TrimSpace(endpoints) == "" {
		ec := etcdx.EmbeddedConfig{
			Name: "etcd-" + cfg.Site, Dir: cfg.EtcdDir, ClientAddr: cfg.EtcdClient, PeerAddr: cfg.EtcdPeer,
			// A 500 ms election timeout lets etcd grant the workers'
			// default 1 s leases (service.DefaultLeaseTTL), as the
			// deployed etcd does (k8s/base/etcd.yaml).
			Heartbeat: 50 * time.Millisecond, ElectionTimeout: 500 * time.Millisecond,
		}
		if src != nil {
			files := cfg.TLS.Files()
			ec.TLS = &files
		}
		emb, err := etcdx.StartEmbedded(ctx, ec, logger)
		if err != nil {
			return fmt.Errorf("config keys etcd-dir/etcd-client-addr: %w", err)
		}
		defer emb.Close()
		endpoints = emb.Endpoint()
	}
	cli, err := etcdx.Connect(ctx, strings.Split(endpoints, ","), src.ClientConfigOrNil())
	if err != nil {
		return fmt.Errorf("config key etcd-endpoints: %w", err)
	}
	defer cli.Close()
	if src != nil {
		// With mutual TLS, etcd knows each client by its certificate:
		// turn its authorization on (idempotent, every replica).
		keys, err := placement.NewKeys(cfg.Site)
		if err != nil {
			return err
		}
		if err := etcdauth.Enable(ctx, cli, keys, config.List(cfg.EtcdObservers)...); err != nil {
			return fmt.Errorf("config key etcd-endpoints: %w", err)
		}
	}

	sched, err := newScheduler(cli, cfg, spec, reg, logger)
	if err != nil {
		return err
	}
	srv := &api{cli: cli, keys: sched.keys, sched: sched}
	if cfg.KafkaBootstrap != "" {
		conn := cfg.kafka()
		srv.audit = &conn
	}
	cefiotv1.RegisterSchedulerServiceServer(adm.GRPC(), srv)
	adm.AddGateway(cefiotv1.RegisterSchedulerServiceHandlerFromEndpoint)
	adm.SetServing("", true)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return adm.Run(gctx) })
	if src != nil {
		g.Go(func() error { src.Watch(gctx, tlsx.ReloadInterval); return nil })
	}
	g.Go(func() error { return sched.Run(gctx) })
	if cfg.BoardSignerCA != "" {
		signer, err := startBoardSigner(cfg, sched.Leading, reg, logger)
		if err != nil {
			return err
		}
		g.Go(func() error { return signer.Run(gctx) })
	}
	return g.Wait()
}
