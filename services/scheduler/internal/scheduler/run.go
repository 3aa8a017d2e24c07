package scheduler

import (
	"context"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cefiot/cefiot/libs/admin"
	"github.com/cefiot/cefiot/libs/etcdx"
	"github.com/cefiot/cefiot/libs/logging"
	"github.com/cefiot/cefiot/libs/placement"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"

	"os"
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
	cefiotv1.RegisterSchedulerServiceServer(adm.GRPC(), &api{sched: sched})
	adm.AddGateway(cefiotv1.RegisterSchedulerServiceHandlerFromEndpoint)
	adm.SetServing("", true)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return adm.Run(gctx) })
	g.Go(func() error { return sched.Run(gctx) })
	return g.Wait()
}

type api struct {
	cefiotv1.UnimplementedSchedulerServiceServer
	sched *Scheduler
}

func (a *api) state(ctx context.Context) (*placement.State, error) {
	st, err := placement.ReadState(ctx, a.sched.cli, a.sched.keys)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "read site state: %v", err)
	}
	return st, nil
}

func (a *api) ListWorkers(ctx context.Context, _ *cefiotv1.ListWorkersRequest) (*cefiotv1.ListWorkersResponse, error) {
	st, err := a.state(ctx)
	if err != nil {
		return nil, err
	}
	return &cefiotv1.ListWorkersResponse{Workers: st.Workers}, nil
}

func (a *api) ListWorkloads(ctx context.Context, _ *cefiotv1.ListWorkloadsRequest) (*cefiotv1.ListWorkloadsResponse, error) {
	st, err := a.state(ctx)
	if err != nil {
		return nil, err
	}
	return &cefiotv1.ListWorkloadsResponse{Workloads: st.Workloads}, nil
}

func (a *api) ListAssignments(ctx context.Context, _ *cefiotv1.ListAssignmentsRequest) (*cefiotv1.ListAssignmentsResponse, error) {
	st, err := a.state(ctx)
	if err != nil {
		return nil, err
	}
	return &cefiotv1.ListAssignmentsResponse{Assignments: st.Assignments}, nil
}

func (a *api) GetLeader(ctx context.Context, _ *cefiotv1.GetLeaderRequest) (*cefiotv1.GetLeaderResponse, error) {
	id, err := a.sched.Leader(ctx)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "%v", err)
	}
	return &cefiotv1.GetLeaderResponse{LeaderId: id, Site: a.sched.keys.Site()}, nil
}
