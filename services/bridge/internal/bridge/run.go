package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"golang.org/x/sync/errgroup"

	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/libs/service"
	"github.com/cefiot/cefiot/services/bridge/internal/forward"
	"github.com/cefiot/cefiot/services/bridge/internal/linkprobe"
	"github.com/cefiot/cefiot/services/bridge/internal/ratelimit"
	"github.com/cefiot/cefiot/services/bridge/internal/selection"
	"github.com/cefiot/cefiot/services/bridge/internal/sitestatus"

	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// Run runs the bridge service until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	logger := cfg.Common.Logger("bridge")
	if err := service.RequireKafka(ctx, cfg.KafkaWait, map[string]kafkax.Conn{"edge-bootstrap": cfg.Edge(), "cloud-bootstrap": cfg.Cloud()}); err != nil {
		return err
	}
	proc, err := service.New("bridge", cfg.Common, logger, cefiotv1.BridgeService_ServiceDesc.ServiceName,
		cefiotv1.BridgeService_Pause_FullMethodName, cefiotv1.BridgeService_Resume_FullMethodName, cefiotv1.BridgeService_SetRateLimit_FullMethodName)
	if err != nil {
		return err
	}
	if err := proc.AuditTo(ctx, cfg.Edge()); err != nil {
		return err
	}
	kafkaCreds := proc.RestartOnNewKafkaCredentials(cfg.Edge(), cfg.Cloud())
	m := newMetrics(proc.Registry)
	probe := linkprobe.New(cfg.Cloud(), cfg.ProbeInterval, 2*time.Second, 2, logger)
	st := newState(m, ratelimit.New(cfg.RateLimit), probe)
	m.rateLimit.Set(float64(cfg.RateLimit))
	adm := &adminServer{proc: proc, metrics: m, state: st}
	b := &bridge{cfg: cfg, logger: logger, metrics: m, state: st, probe: probe,
		status: func() *cefiotv1.GetBridgeStatusResponse { return st.status(adm.worker()) }}
	cefiotv1.RegisterBridgeServiceServer(proc.Admin.GRPC(), adm)
	proc.Admin.AddGateway(cefiotv1.RegisterBridgeServiceHandlerFromEndpoint)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return kafkax.Renewing(gctx, kafkaCreds, probe.Run) })
	g.Go(func() error { return kafkax.Renewing(gctx, kafkaCreds, b.monitor) })
	// The bridge's transactions are fenced by Kafka (its transactional id
	// comes from the workload): a second owner is harmless, so it keeps
	// forwarding while the site's etcd is away.
	proc.KeepRunningWhenFenced(func(*cefiotv1.Workload) bool { return true })
	g.Go(func() error { return proc.Run(gctx, []string{pipeline.KindBridge}, b.run) })
	return g.Wait()
}

type bridge struct {
	cfg     Config
	logger  *slog.Logger
	metrics *metrics
	state   *state
	probe   *linkprobe.Probe
	status  func() *cefiotv1.GetBridgeStatusResponse // as the admin API says it
}

// TransactionalID is the cloud transactional id of a site's bridge
// workload.
func TransactionalID(site, workload string) string {
	return pipeline.BridgeTransactionalID(site, workload)
}

// run is the bridge workload: forwarding sessions in a loop. A session that
// fails because the WAN or a cluster is away is restarted here, from the
// committed checkpoints, as soon as the cloud answers again (a worker
// backoff would add up to seconds to every outage). Fencing, bad params and
// repeated quick failures while the link is up end the workload, and the
// worker restarts it with backoff.
func (b *bridge) run(ctx context.Context, a *cefiotv1.Assignment, wl *cefiotv1.Workload) error {
	sel, err := selection.Resolve(wl.GetParams(), b.cfg.Topics, b.cfg.TopicRegex)
	if err != nil {
		return err
	}
	sel = sel.WithEdgePrefix(b.cfg.EdgeTopicPrefix)
	txnID := TransactionalID(b.cfg.Site, wl.GetName())
	logger := b.logger.With("workload", wl.GetName(), "epoch", a.GetEpoch(), "transactional_id", txnID)
	b.state.setSelection(txnID, sel.String())
	defer b.state.drop(txnID)
	cfg := forward.Config{
		Site: b.cfg.Site, TransactionID: txnID,
		EdgeBootstrap: b.cfg.Edge(), CloudBootstrap: b.cfg.Cloud(), Selection: sel,
		BatchRecords: b.cfg.BatchSize, BatchBytes: b.cfg.BatchBytes, BatchWait: b.cfg.BatchWait,
		TopicRefresh: b.cfg.TopicRefresh, TransactionTimeout: b.cfg.TransactionTimeout,
	}
	logger.Info("bridge workload starting", "topics", sel.String())
	// While the workload runs, the cloud hears how the site is.
	reporter := &sitestatus.Reporter{Cloud: b.cfg.Cloud(), Site: b.cfg.Site, Interval: b.cfg.StatusInterval, Bridge: b.status, Logger: logger}
	reporting := make(chan error, 1)
	rctx, stopReporting := context.WithCancel(ctx)
	go func() { reporting <- reporter.Run(rctx) }()
	defer func() {
		stopReporting()
		if err := <-reporting; err != nil {
			logger.Warn("site status reports ended", "err", err)
		}
	}()
	quick := 0
	for {
		start := time.Now()
		err := forward.Run(ctx, cfg, b.state, b.state, logger)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil || errors.Is(err, forward.ErrFenced) {
			return err
		}
		b.metrics.restarts.Inc()
		link := b.probe.State()
		if link.Known && !link.Up {
			logger.Warn("forwarding session ended while the WAN is down; resuming when the cloud answers", "err", err)
			if err := b.probe.WaitUp(ctx); err != nil {
				return nil
			}
			quick = 0
			continue
		}
		if time.Since(start) < 10*time.Second {
			quick++
		} else {
			quick = 0
		}
		if quick >= 5 {
			return fmt.Errorf("forwarding fails repeatedly: %w", err)
		}
		logger.Warn("forwarding session ended; resuming from the committed checkpoints", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Duration(quick) * 200 * time.Millisecond):
		}
	}
}

// monitor reads the edge watermarks of the forwarded partitions every
// second for the backlog, and mirrors the link state into the metrics.
func (b *bridge) monitor(ctx context.Context) error {
	admin, err := kafka.NewAdminClient(kafkax.Config(b.cfg.Edge(), nil))
	if err != nil {
		return fmt.Errorf("edge admin client: %w", err)
	}
	defer admin.Close()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		link := b.probe.State()
		b.metrics.linkUp.Set(b2f(link.Known && link.Up))
		parts := b.state.partitions()
		starts, ends, err := forward.Watermarks(ctx, admin, parts, true)
		if err != nil {
			b.logger.Debug("edge watermarks", "err", err)
			continue
		}
		b.state.setWatermarks(starts, ends)
	}
}
