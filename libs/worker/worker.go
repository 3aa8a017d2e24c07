// Package worker makes a service process a worker of its site: it registers
// the worker in the site's etcd under a lease, watches the assignments and
// runs exactly the workloads assigned to it.
//
// Safety (never two active owners of a workload) rests on three rules:
//
//  1. Lease-bound assignments. An assignment names the lease it was written
//     for; the worker runs it only while it holds that very lease. A worker
//     that lost its lease and registered again never resumes the old
//     assignments: the leader has to write them again, with a new epoch.
//  2. Claims. Before a workload starts, the worker writes a claim key under
//     its lease, only if no other worker holds it; it deletes the claim
//     after the workload stopped. A new owner therefore waits until the old
//     one has stopped, or until the old one's lease has expired.
//  3. Self-fencing. The worker renews its lease itself and knows, from the
//     moment it SENT the last successful renewal, the earliest time etcd can
//     expire the lease (send time + TTL). If it cannot renew, it stops every
//     workload FenceMargin before that moment. So when etcd expires the
//     lease (deleting the worker key and its claims, which lets the leader
//     reassign at once) the old owner has already stopped writing.
//
// While etcd or the scheduler is unavailable for less than the lease TTL
// (minus the margin), workloads keep running. The scheduler being down
// never stops anything. A longer etcd outage (its quorum lost, or this node
// cut off from it) pauses the workloads that must never run twice; they
// resume under the same epoch as soon as the same lease is renewed (etcd
// extends every lease when it comes back, so no one else can have taken
// them over).
//
// Degraded mode: a workload that is safe to overlap (Config.OverlapSafe:
// fenced by Kafka's transactional ids, or idempotent by key) is not
// stopped at the fence: control plane down is not data plane down. It may
// then overlap with a new owner elsewhere (if this node was cut off and the
// leader moved the work), which its own fencing makes harmless. While
// degraded, nothing new starts, a run that fails is not restarted (so a
// Kafka-fenced copy does not fence its successor back), and runs carry no
// lease deadline. When the lease is renewed the kept runs simply go on;
// when it turns out to have expired, every workload stops and the worker
// registers again.
package worker

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cefiot/cefiot/libs/placement"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// Runner runs one workload until ctx ends (the assignment moved away, the
// worker fenced itself or stops) or the work is finished. A returned error
// is logged and the workload is restarted after a backoff while it stays
// assigned; nil means finished: the claim is marked finished and the
// workload is not restarted for the same epoch. The runner must stop
// writing before it returns, and return promptly once ctx ends: when the
// worker fences itself it waits one fence margin at most. Calls that
// cannot be interrupted (a Kafka transaction's commit or abort) take their
// deadline from leasebound.CallContext or CleanupContext, so they end in time.
type Runner func(ctx context.Context, a *cefiotv1.Assignment, wl *cefiotv1.Workload) error

// Config describes the worker.
type Config struct {
	Keys      placement.Keys
	ID        string
	Node      string
	Kinds     []string
	Labels    map[string]string
	LeaseTTL  time.Duration
	AdminGRPC string
	AdminHTTP string
	// FenceMargin is how long before the earliest possible lease expiry
	// the worker has its workloads stopped when it cannot renew. Default:
	// a third of the TTL, at least 300ms.
	FenceMargin time.Duration
	// RenewEvery is the renewal interval. Default: a quarter of the TTL.
	RenewEvery time.Duration
	// OnFenceOverrun is called when workloads did not stop by the earliest
	// possible lease expiry (a runner ignoring its context). A service
	// exits there: a process that cannot prove it stopped must not live on.
	OnFenceOverrun func(stuck []string)
	// OverlapSafe reports whether two owners of a workload at once do no
	// harm: Kafka fences its transactions (enrich, bridge), or its output
	// is keyed so that a second copy is stored once (capture of a file,
	// whose frame ids come from its content). Such a workload keeps running
	// when the worker cannot renew its lease (etcd lost its quorum, or this
	// node is cut off from it): degraded mode, see the package comment.
	// nil: none is.
	OverlapSafe func(*cefiotv1.Workload) bool
	// Registerer receives the worker's metrics (optional).
	Registerer prometheus.Registerer
}

// Worker registers itself and runs its assignments.
type Worker struct {
	cli    *clientv3.Client
	cfg    Config
	run    Runner
	logger *slog.Logger
	kick   chan struct{}

	fencePauses   prometheus.Counter
	fenceOverruns prometheus.Counter
	fenceStop     prometheus.Histogram
	renewFailures prometheus.Counter
	leaseLosses   prometheus.Counter
	refreshes     prometheus.Counter
	degraded      prometheus.Gauge

	mu         sync.Mutex
	lease      clientv3.LeaseID // 0 while not registered
	validUntil time.Time        // earliest time etcd may expire the lease
	paused     bool             // self-fenced: nothing starts until renewed; only overlap-safe workloads run
	renewed    chan struct{}    // closed when the lease is renewed after a pause
	running    map[string]*execution
	// stopping holds executions that were cancelled but may not have
	// returned yet; a new execution of the same workload waits for them.
	stopping map[string]*execution
}

type execution struct {
	assignment *cefiotv1.Assignment
	workload   *cefiotv1.Workload
	started    time.Time
	cancel     context.CancelFunc
	restart    context.CancelCauseFunc // stops the current run only (Refresh)
	stopped    chan struct{}           // the runner returned: no more writes
	done       chan struct{}           // stopped, and the claim released (or given up)
	lastErr    string
	runs       int // completed runs, to tell a recovered run from a later one
	finished   bool
}

// New returns a worker; Run starts it.
func New(cli *clientv3.Client, cfg Config, run Runner, logger *slog.Logger) (*Worker, error) {
	if !placement.ValidName(cfg.ID) {
		return nil, fmt.Errorf("worker id %q is not a valid name", cfg.ID)
	}
	if cfg.LeaseTTL < time.Second {
		return nil, fmt.Errorf("worker lease TTL %v: must be at least 1s", cfg.LeaseTTL)
	}
	if cfg.FenceMargin == 0 {
		cfg.FenceMargin = max(cfg.LeaseTTL/3, 300*time.Millisecond)
	}
	if cfg.RenewEvery == 0 {
		cfg.RenewEvery = cfg.LeaseTTL / 4
	}
	if cfg.FenceMargin >= cfg.LeaseTTL || cfg.RenewEvery >= cfg.LeaseTTL-cfg.FenceMargin {
		return nil, fmt.Errorf("worker lease TTL %v, fence margin %v, renewal every %v: need renewal < TTL - margin", cfg.LeaseTTL, cfg.FenceMargin, cfg.RenewEvery)
	}
	w := &Worker{
		cli: cli, cfg: cfg, run: run, logger: logger.With("worker", cfg.ID),
		kick: make(chan struct{}, 1), running: map[string]*execution{}, stopping: map[string]*execution{},
		fencePauses:   prometheus.NewCounter(prometheus.CounterOpts{Name: "cefiot_worker_fence_pauses_total", Help: "Times the worker stopped its workloads because it could not renew its lease in time."}),
		fenceOverruns: prometheus.NewCounter(prometheus.CounterOpts{Name: "cefiot_worker_fence_overruns_total", Help: "Times workloads did not stop before the lease could expire."}),
		renewFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "cefiot_worker_lease_renew_failures_total", Help: "Failed lease renewals."}),
		leaseLosses:   prometheus.NewCounter(prometheus.CounterOpts{Name: "cefiot_worker_lease_losses_total", Help: "Leases lost (expired at etcd); the worker registered again."}),
		refreshes:     prometheus.NewCounter(prometheus.CounterOpts{Name: "cefiot_worker_refreshes_total", Help: "Workload runs stopped and started again at once, to rebuild their clients (new Kafka credentials)."}),
		degraded:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "cefiot_worker_degraded_workloads", Help: "Overlap-safe workloads kept running while the lease cannot be renewed (etcd unreachable or without quorum); 0 when healthy."}),
		fenceStop: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cefiot_worker_fence_stop_seconds", Help: "Time from a fence's start until every workload had stopped writing (must stay below the fence margin).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{w.fencePauses, w.fenceOverruns, w.fenceStop, w.renewFailures, w.leaseLosses, w.refreshes, w.degraded} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register worker metrics: %w", err)
			}
		}
	}
	return w, nil
}

// Run registers the worker and runs assignments until ctx ends; then it
// stops every workload, waits for them and deregisters.
func (w *Worker) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); w.keepRegistered(ctx) }()
	w.follow(ctx)
	wg.Wait()
	w.stopAll("worker stopping", time.Time{})
	return nil
}

// Status returns the worker's state for the admin API.
func (w *Worker) Status() (registered bool, workloads []*cefiotv1.WorkloadState) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.running {
		workloads = append(workloads, &cefiotv1.WorkloadState{
			Name:        e.workload.GetName(),
			Kind:        e.workload.GetKind(),
			Epoch:       e.assignment.GetEpoch(),
			StartedTime: timestamppb.New(e.started),
			LastError:   e.lastErr,
		})
	}
	slices.SortFunc(workloads, func(a, b *cefiotv1.WorkloadState) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return w.lease != 0 && !w.paused, workloads
}

// Lease returns the worker's current lease (0 when it has none).
func (w *Worker) Lease() clientv3.LeaseID {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lease
}

func (w *Worker) kickFollow() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}
