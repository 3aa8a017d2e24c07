package fanin

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cefiot/cefiot/cmd/internal/bridgeharness"
	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/harness/kafkalocal"
	"github.com/cefiot/cefiot/libs/harness/localstack"
	"github.com/cefiot/cefiot/libs/harness/netx"
	"github.com/cefiot/cefiot/libs/harness/procs"
	"github.com/cefiot/cefiot/libs/harness/sitepki"
	"github.com/cefiot/cefiot/libs/kafkaacl"
	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/pipeline"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// sharedEdge is the edge side of the synthetic sites: one Kafka cluster
// they share, each site under its own topic prefix, and per site its own
// scheduler (with its own embedded etcd) and its own bridge process, which
// forwards the site's topics to the cloud as the site's own identity.
type sharedEdge struct {
	cluster *kafkalocal.Cluster
	sites   []*edgeSite
	logger  *slog.Logger
}

// edgeSite is one synthetic site's control plane and bridge.
type edgeSite struct {
	name      string
	scheduler *procs.Proc
	bridge    *bridgeharness.Bridge
	client    cefiotv1.BridgeServiceClient
	closeConn func()
}

// edgeTopic is site's enriched frames topic in the shared edge cluster.
func edgeTopic(site string) string {
	return pipeline.SharedEdgePrefix(site) + pipeline.TopicFramesEnriched
}

// startSharedEdge starts the shared edge cluster, secured like a site's
// own: its brokers' certificates come from a CA of their own, they trust
// every site's CA, and each site's bridge may read only under its prefix
// (kafkaacl.SharedEdgeBridge). Then it starts every site's scheduler and
// bridge, and returns once each bridge forwards its topic's partitions.
func startSharedEdge(ctx context.Context, cfg Config, dir string, stack *localstack.Stack, sites []string) (_ *sharedEdge, err error) {
	owner, err := sitepki.Make(filepath.Join(dir, "pki-shared-edge"), "shared-edge")
	if err != nil {
		return nil, err
	}
	var trusted []sitepki.Site
	for _, s := range sites {
		trusted = append(trusted, stack.PKI(s))
	}
	e := &sharedEdge{logger: cfg.Logger}
	defer func() {
		if err != nil {
			e.stop()
		}
	}()
	e.cluster, err = kafkalocal.Start(ctx, kafkalocal.ClusterConfig{
		Name: "sites-edge", Brokers: 1, BaseDir: filepath.Join(dir, "kafka-sites-edge"), LibsDir: cfg.KafkaLibs,
		TLS: owner.KafkaTLS(trusted...),
	}, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("shared edge cluster: %w", err)
	}
	var grants []kafkaacl.Grant
	for _, s := range sites {
		grants = append(grants, kafkaacl.SharedEdgeBridge(s, pipeline.SharedEdgePrefix(s))...)
	}
	if err := e.cluster.Grant(ctx, grants); err != nil {
		return nil, err
	}
	for _, s := range sites {
		if _, err := kafkax.EnsureTopic(ctx, e.cluster.Conn(), kafkax.TopicSpec{Name: edgeTopic(s), Partitions: sitePartitions}); err != nil {
			return nil, fmt.Errorf("edge topic of %s: %w", s, err)
		}
	}
	cloudCA := stack.PKI("cloud").Files(access.Kafka).CA
	// Every port of every site at once, so that no two processes are
	// given the same.
	ports, err := netx.FreePorts("127.0.0.1", portsPerSite*len(sites))
	if err != nil {
		return nil, err
	}
	for i, s := range sites {
		site, err := e.startSite(cfg, dir, s, ports[i*portsPerSite:(i+1)*portsPerSite], stack.PKI(s), stack.Cloud.BootstrapServers(), cloudCA, owner.Files(access.Kafka).CA)
		if err != nil {
			return nil, err
		}
		e.sites = append(e.sites, site)
	}
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for _, s := range e.sites {
		if _, err := bridgeharness.AwaitStatus(wctx, s.client, func(st *cefiotv1.GetBridgeStatusResponse) bool {
			return len(st.GetPartitions()) == sitePartitions
		}); err != nil {
			return nil, fmt.Errorf("bridge of %s does not forward: %w\n%s", s.name, err, s.bridge.Tail(20))
		}
	}
	return e, nil
}

// portsPerSite are a site's etcd client and peer ports, its scheduler's
// and its bridge's admin ports.
const portsPerSite = 6

// startSite starts one site's scheduler (its etcd embedded) and bridge on
// the given ports.
func (e *sharedEdge) startSite(cfg Config, dir, name string, ports []int, pki sitepki.Site, cloud, cloudCA, edgeCA string) (*edgeSite, error) {
	etcd, peer := "127.0.0.1:"+strconv.Itoa(ports[0]), "127.0.0.1:"+strconv.Itoa(ports[1])
	siteDir := filepath.Join(dir, "sites", name)
	s := &edgeSite{name: name}
	var err error
	s.scheduler, err = bridgeharness.StartScheduler(bridgeharness.SchedulerConfig{
		BinDir: cfg.BinDir, Dir: siteDir, Site: name, EtcdEndpoint: etcd, EtcdPeerAddr: peer, PKI: pki,
		AdminPorts: [2]int{ports[2], ports[3]},
	})
	if err != nil {
		return nil, fmt.Errorf("scheduler of %s: %w", name, err)
	}
	s.bridge, err = bridgeharness.Start(bridgeharness.Config{
		BinDir: cfg.BinDir, Dir: siteDir, Site: name, EtcdEndpoint: etcd, PKI: pki, AdminPorts: [2]int{ports[4], ports[5]},
		EdgeBootstrap: e.cluster.BootstrapServers(), CloudBootstrap: cloud, CloudTLSCA: cloudCA,
		Args: []string{"-edge-tls-ca", edgeCA, "-edge-topic-prefix", pipeline.SharedEdgePrefix(name), "-topics", pipeline.TopicFramesEnriched},
	})
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("bridge of %s: %w", name, err)
	}
	if s.client, s.closeConn, err = s.bridge.Client(); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// forwarded is how many of site's edge records its bridge has committed
// to the cloud.
func (s *edgeSite) forwarded(ctx context.Context) (int64, error) {
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := s.client.GetBridgeStatus(rctx, &cefiotv1.GetBridgeStatusRequest{})
	if err != nil {
		return 0, fmt.Errorf("bridge of %s: %w", s.name, err)
	}
	var n int64
	for _, p := range st.GetPartitions() {
		n += p.GetCommittedOffset()
	}
	return n, nil
}

// awaitForwarded waits until every site's bridge has committed perSite
// records to the cloud.
func (e *sharedEdge) awaitForwarded(ctx context.Context, perSite int64) error {
	pending := append([]*edgeSite(nil), e.sites...)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for len(pending) > 0 {
		s := pending[0]
		n, err := s.forwarded(ctx)
		if err == nil && n >= perSite {
			pending = pending[1:]
			continue
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d sites not forwarded yet; %s at %d of %d (%v): %w", len(pending), s.name, n, perSite, err, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// bridgePIDs are the bridge processes, by site.
func (e *sharedEdge) bridgePIDs() map[string]int {
	out := map[string]int{}
	for _, s := range e.sites {
		out[s.name] = s.bridge.PID()
	}
	return out
}

// schedulerPIDs are the sites' schedulers (each with its etcd), by site.
func (e *sharedEdge) schedulerPIDs() map[string]int {
	out := map[string]int{}
	for _, s := range e.sites {
		out[s.name] = s.scheduler.PID()
	}
	return out
}

func (s *edgeSite) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if s.closeConn != nil {
		s.closeConn()
	}
	if s.bridge != nil {
		s.bridge.Stop(ctx)
	}
	if s.scheduler != nil {
		s.scheduler.Stop(ctx, 10*time.Second)
	}
}

func (e *sharedEdge) stop() {
	for _, s := range e.sites {
		s.stop()
	}
	if e.cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.cluster.Stop(ctx); err != nil {
			e.logger.Warn("shared edge cluster stop", "err", err)
		}
	}
}
