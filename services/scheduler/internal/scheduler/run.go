package scheduler

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/cefiot/cefiot/libs/admin"
	"github.com/cefiot/cefiot/libs/etcdx"
	"github.com/cefiot/cefiot/libs/logging"
	"github.com/cefiot/cefiot/libs/placement"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// Run runs a scheduler replica until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	base, err := logging.New(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	logger := base.With("service", "scheduler", "site", cfg.Site, "replica", cfg.ReplicaID)
	var spec *placement.Spec
	if cfg.SpecPath != "" {
		if spec, err = placement.LoadSpec(cfg.SpecPath); err != nil {
			return fmt.Errorf("config key spec: %w", err)
		}
	}
	endpoints := cfg.EtcdEndpoints
	if strings.TrimSpace(endpoints) == "" {
		emb, err := etcdx.StartEmbedded(ctx, etcdx.EmbeddedConfig{
			Name: "etcd-" + cfg.Site, Dir: cfg.EtcdDir, ClientAddr: cfg.EtcdClient, PeerAddr: cfg.EtcdPeer,
		}, logger)
		if err != nil {
			return fmt.Errorf("config keys etcd-dir/etcd-client-addr: %w", err)
		}
		defer emb.Close()
		endpoints = emb.Endpoint()
	}
	cli, err := etcdx.Connect(ctx, strings.Split(endpoints, ","))
	if err != nil {
		return fmt.Errorf("config key etcd-endpoints: %w", err)
	}
	defer cli.Close()

	reg := prometheus.NewRegistry()
	adm, err := admin.New(admin.Config{GRPCAddr: cfg.GRPCAddr, HTTPAddr: cfg.HTTPAddr}, reg, logger)
	if err != nil {
		return err
	}
	sched, err := newScheduler(cli, cfg, spec, reg, logger)
	if err != nil {
		return err
	}
	cefiotv1.RegisterSchedulerServiceServer(adm.GRPC(), &api{cli: cli, keys: sched.keys, sched: sched})
	adm.AddGateway(cefiotv1.RegisterSchedulerServiceHandlerFromEndpoint)
	adm.SetServing("", true)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return adm.Run(gctx) })
	g.Go(func() error { return sched.Run(gctx) })
	return g.Wait()
}
