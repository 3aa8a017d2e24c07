package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/cefiot/cefiot/libs/placement"
)

// Scheduler campaigns for leadership of its site and, while it leads,
// keeps every workload assigned to one live worker that fits it.
type Scheduler struct {
	cli        *clientv3.Client
	keys       placement.Keys
	id         string
	spec       *placement.Spec
	sessionTTL time.Duration
	resync     time.Duration
	logger     *slog.Logger

	leading     prometheus.Gauge
	assignments prometheus.Counter

	mu     sync.Mutex
	isLead bool
}

func newScheduler(cli *clientv3.Client, cfg Config, spec *placement.Spec, reg prometheus.Registerer, logger *slog.Logger) (*Scheduler, error) {
	keys, err := placement.NewKeys(cfg.Site)
	if err != nil {
		return nil, err
	}
	s := &Scheduler{
		cli: cli, keys: keys, id: cfg.ReplicaID, spec: spec,
		sessionTTL: cfg.SessionTTL, resync: cfg.Resync, logger: logger,
		leading:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "cefiot_scheduler_leader", Help: "1 while this replica leads its site."}),
		assignments: prometheus.NewCounter(prometheus.CounterOpts{Name: "cefiot_scheduler_assignments_total", Help: "Assignments written (placements and moves)."}),
	}
	reg.MustRegister(s.leading, s.assignments)
	return s, nil
}

// Run campaigns and leads until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		err := s.campaignAndLead(ctx)
		s.setLeading(false)
		if ctx.Err() != nil {
			return nil
		}
		s.logger.Warn("leadership ended; campaigning again", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	return nil
}

// Leading reports whether this replica leads the site now.
func (s *Scheduler) Leading() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.isLead
}

func (s *Scheduler) setLeading(v bool) {
	s.mu.Lock()
	s.isLead = v
	s.mu.Unlock()
	if v {
		s.leading.Set(1)
	} else {
		s.leading.Set(0)
	}
}

func (s *Scheduler) campaignAndLead(ctx context.Context) error {
	sess, err := concurrency.NewSession(s.cli, concurrency.WithTTL(int(s.sessionTTL/time.Second)), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("leader session: %w", err)
	}
	defer sess.Close()
	el := concurrency.NewElection(sess, s.keys.Election())
	if err := el.Campaign(ctx, s.id); err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	// Campaign returning does not mean the session is still alive: guard
	// every write with the election key and stop as soon as the session ends.
	leadCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-sess.Done():
			cancel()
		case <-leadCtx.Done():
		}
	}()
	guard := clientv3.Compare(clientv3.CreateRevision(el.Key()), "=", el.Rev())
	s.setLeading(true)
	s.logger.Info("leading site", "replica", s.id)
	defer func() {
		resignCtx, c := context.WithTimeout(context.Background(), 2*time.Second)
		defer c()
		_ = el.Resign(resignCtx)
	}()

	if s.spec != nil {
		// Applied once per content: a new leader must not undo moves and
		// workload changes made through the admin API since.
		n, err := placement.ApplySpecOnce(leadCtx, s.cli, s.keys, s.spec, guard)
		if err != nil {
			return fmt.Errorf("apply spec: %w", err)
		}
		s.logger.Info("pipeline spec checked", "workloads", len(s.spec.Workloads), "changes", n)
	}
	wch := s.cli.Watch(clientv3.WithRequireLeader(leadCtx), s.keys.Prefix(), clientv3.WithPrefix())
	ticker := time.NewTicker(s.resync)
	defer ticker.Stop()
	for {
		if err := s.reconcile(leadCtx, guard); err != nil {
			if errors.Is(err, placement.ErrGuardFailed) || leadCtx.Err() != nil {
				return fmt.Errorf("lost leadership: %w", err)
			}
			s.logger.Warn("reconcile failed", "err", err)
		}
		select {
		case <-leadCtx.Done():
			return leadCtx.Err()
		case resp, ok := <-wch:
			if !ok || resp.Err() != nil {
				return fmt.Errorf("watch ended: %v", resp.Err())
			}
		case <-ticker.C:
		}
	}
}

// reconcile writes the placement decisions, each guarded by leadership,
// by the assignment's revision (no lost updates) and by the target worker's
// lease (never assign to a lease that just ended).
func (s *Scheduler) reconcile(ctx context.Context, guard clientv3.Cmp) error {
	st, err := placement.ReadState(ctx, s.cli, s.keys)
	if err != nil {
		return err
	}
	for _, d := range placement.Plan(placement.InputOf(st)) {
		epoch, err := placement.WriteDecision(ctx, s.cli, s.keys, d, st.AssignmentRevisions[d.Workload], guard)
		if errors.Is(err, placement.ErrConflict) {
			// Either leadership is gone or the state changed under us;
			// a fresh read tells which on the next round.
			if ok, _ := s.stillLeads(ctx, guard); !ok {
				return placement.ErrGuardFailed
			}
			return nil
		}
		if err != nil {
			return err
		}
		if d.Assign != nil {
			s.assignments.Inc()
			s.logger.Info("assigned", "workload", d.Workload, "worker", d.Assign.GetWorkerId(), "node", d.Assign.GetNode(), "epoch", epoch, "reason", d.Reason)
		} else {
			s.logger.Info("unassigned", "workload", d.Workload, "reason", d.Reason)
		}
	}
	return nil
}

func (s *Scheduler) stillLeads(ctx context.Context, guard clientv3.Cmp) (bool, error) {
	resp, err := s.cli.Txn(ctx).If(guard).Commit()
	if err != nil {
		return false, err
	}
	return resp.Succeeded, nil
}

// Leader returns the id of the current leader of the site, or "".
func (s *Scheduler) Leader(ctx context.Context) (string, error) {
	resp, err := s.cli.Get(ctx, s.keys.Election(), clientv3.WithFirstCreate()...)
	if err != nil {
		return "", fmt.Errorf("read election: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}
