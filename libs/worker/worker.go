// Package worker makes a service process a worker of its site: it registers
// the worker in the site's etcd under a lease, watches the assignments and
// runs exactly the workloads assigned to it, each under a context that ends
// when the assignment moves away.
//
// A worker keeps running its workloads while etcd or the scheduler is
// unavailable (the data plane does not depend on the control plane); it
// stops a workload only when it sees the assignment change.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cefiot/cefiot/libs/placement"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// Runner runs one workload until ctx ends (the assignment moved away or the
// worker stops) or the work is finished. A returned error is logged and the
// workload is restarted after a backoff while it stays assigned; nil means
// finished, and the workload is not restarted for the same epoch.
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
}

// Worker registers itself and runs its assignments.
type Worker struct {
	cli    *clientv3.Client
	cfg    Config
	run    Runner
	logger *slog.Logger

	mu         sync.Mutex
	registered bool
	running    map[string]*execution
}

type execution struct {
	assignment *cefiotv1.Assignment
	workload   *cefiotv1.Workload
	started    time.Time
	cancel     context.CancelFunc
	done       chan struct{}
	lastErr    string
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
	return &Worker{cli: cli, cfg: cfg, run: run, logger: logger.With("worker", cfg.ID), running: map[string]*execution{}}, nil
}

// Run registers the worker and runs assignments until ctx ends; then it
// stops every workload, waits for them and deregisters.
func (w *Worker) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); w.keepRegistered(ctx) }()
	w.follow(ctx)
	wg.Wait()
	w.mu.Lock()
	execs := slices.Collect(maps.Values(w.running))
	w.mu.Unlock()
	for _, e := range execs {
		e.cancel()
		<-e.done
	}
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
	return w.registered, workloads
}

func (w *Worker) setRegistered(v bool) {
	w.mu.Lock()
	w.registered = v
	w.mu.Unlock()
}

// keepRegistered holds the worker key under a lease, re-registering with a
// new lease whenever the session is lost.
func (w *Worker) keepRegistered(ctx context.Context) {
	backoff := newBackoff()
	for ctx.Err() == nil {
		err := w.registerOnce(ctx)
		w.setRegistered(false)
		if ctx.Err() != nil {
			return
		}
		w.logger.Warn("worker registration lost; re-registering", "err", err)
		backoff.wait(ctx)
	}
}

func (w *Worker) registerOnce(ctx context.Context) error {
	sess, err := concurrency.NewSession(w.cli, concurrency.WithTTL(int(w.cfg.LeaseTTL/time.Second)), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("create lease: %w", err)
	}
	defer func() {
		revokeCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, _ = w.cli.Revoke(revokeCtx, sess.Lease())
		sess.Orphan()
	}()
	rec := &cefiotv1.Worker{
		Id: w.cfg.ID, Node: w.cfg.Node, Kinds: w.cfg.Kinds, Labels: w.cfg.Labels,
		AdminGrpcAddress: w.cfg.AdminGRPC, AdminHttpAddress: w.cfg.AdminHTTP,
		LeaseId: int64(sess.Lease()), RegisteredTime: timestamppb.Now(),
	}
	b, err := placement.Encode(rec)
	if err != nil {
		return err
	}
	if _, err := w.cli.Put(ctx, w.cfg.Keys.Worker(w.cfg.ID), string(b), clientv3.WithLease(sess.Lease())); err != nil {
		return fmt.Errorf("put worker key: %w", err)
	}
	w.setRegistered(true)
	w.logger.Info("worker registered", "lease", fmt.Sprintf("%x", sess.Lease()), "ttl", w.cfg.LeaseTTL, "kinds", w.cfg.Kinds)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-sess.Done():
		return errors.New("lease expired or keepalive failed")
	}
}

// follow watches the site and reconciles running workloads with the
// assignments of this worker.
func (w *Worker) follow(ctx context.Context) {
	backoff := newBackoff()
	for ctx.Err() == nil {
		st, err := placement.ReadState(ctx, w.cli, w.cfg.Keys)
		if err != nil {
			if ctx.Err() == nil {
				w.logger.Warn("cannot read assignments; running workloads continue", "err", err)
				backoff.wait(ctx)
			}
			continue
		}
		backoff.reset()
		w.reconcile(ctx, st)
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		wch := w.cli.Watch(wctx, w.cfg.Keys.Prefix(), clientv3.WithPrefix(), clientv3.WithRev(st.Revision+1))
		for resp := range wch {
			if resp.Err() != nil {
				w.logger.Warn("watch interrupted; running workloads continue", "err", resp.Err())
				break
			}
			relevant := false
			for _, ev := range resp.Events {
				k := string(ev.Kv.Key)
				relevant = relevant || hasPrefix(k, w.cfg.Keys.Assignments()) || hasPrefix(k, w.cfg.Keys.Workloads())
			}
			if relevant {
				break // re-read the state and reconcile
			}
		}
		cancel()
	}
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

func (w *Worker) reconcile(ctx context.Context, st *placement.State) {
	workloads := map[string]*cefiotv1.Workload{}
	for _, wl := range st.Workloads {
		workloads[wl.GetName()] = wl
	}
	want := map[string]*cefiotv1.Assignment{}
	for _, a := range st.Assignments {
		if a.GetWorkerId() == w.cfg.ID && workloads[a.GetWorkload()] != nil {
			want[a.GetWorkload()] = a
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, e := range w.running {
		a := want[name]
		if a == nil || a.GetEpoch() != e.assignment.GetEpoch() || !proto.Equal(workloads[name], e.workload) {
			w.logger.Info("stopping workload", "workload", name, "epoch", e.assignment.GetEpoch())
			e.cancel()
			delete(w.running, name)
			go func() { <-e.done }()
		}
	}
	for name, a := range want {
		if _, ok := w.running[name]; ok {
			continue
		}
		w.start(ctx, a, workloads[name])
	}
}

// start launches a workload; w.mu is held.
func (w *Worker) start(ctx context.Context, a *cefiotv1.Assignment, wl *cefiotv1.Workload) {
	rctx, cancel := context.WithCancel(ctx)
	e := &execution{assignment: a, workload: wl, started: time.Now(), cancel: cancel, done: make(chan struct{})}
	w.running[wl.GetName()] = e
	logger := w.logger.With("workload", wl.GetName(), "epoch", a.GetEpoch())
	logger.Info("starting workload", "kind", wl.GetKind())
	go func() {
		defer close(e.done)
		backoff := newBackoff()
		for rctx.Err() == nil {
			err := w.run(rctx, a, wl)
			if rctx.Err() != nil {
				return
			}
			w.mu.Lock()
			if err == nil {
				e.finished = true
				e.lastErr = ""
				w.mu.Unlock()
				logger.Info("workload finished")
				<-rctx.Done()
				return
			}
			e.lastErr = err.Error()
			w.mu.Unlock()
			logger.Error("workload failed; restarting", "err", err)
			backoff.wait(rctx)
		}
	}()
}

type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{d: 200 * time.Millisecond} }

func (b *backoff) reset() { b.d = 200 * time.Millisecond }

func (b *backoff) wait(ctx context.Context) {
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	b.d = min(2*b.d, 5*time.Second)
}
