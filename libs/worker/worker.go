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
// never stops anything. A longer etcd outage pauses the workloads; they
// resume under the same epoch as soon as the same lease is renewed (etcd
// extends every lease when it comes back, so no one else can have taken
// them over). Transactional workloads are additionally fenced by Kafka
// (transactional ids derived from the workload).
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

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cefiot/cefiot/libs/leasebound"
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

	mu         sync.Mutex
	lease      clientv3.LeaseID // 0 while not registered
	validUntil time.Time        // earliest time etcd may expire the lease
	paused     bool             // self-fenced: nothing runs until renewed
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
	stopped    chan struct{} // the runner returned: no more writes
	done       chan struct{} // stopped, and the claim released (or given up)
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
		fenceStop: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cefiot_worker_fence_stop_seconds", Help: "Time from a fence's start until every workload had stopped writing (must stay below the fence margin).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{w.fencePauses, w.fenceOverruns, w.fenceStop, w.renewFailures, w.leaseLosses} {
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

// keepRegistered holds the worker key under a lease, registering again
// with a new lease whenever the old one is lost.
func (w *Worker) keepRegistered(ctx context.Context) {
	backoff := newBackoff()
	for ctx.Err() == nil {
		err := w.holdLease(ctx)
		if ctx.Err() != nil {
			return
		}
		w.logger.Warn("worker registration lost; registering again", "err", err)
		backoff.wait(ctx)
	}
}

type renewal struct {
	sent time.Time
	ttl  time.Duration
	err  error
}

// holdLease grants a lease, registers the worker under it and renews it
// until it is lost or ctx ends, fencing the workloads when renewals fail.
func (w *Worker) holdLease(ctx context.Context) error {
	sent := time.Now()
	gctx, cancel := context.WithTimeout(ctx, w.cfg.LeaseTTL)
	grant, err := w.cli.Grant(gctx, int64((w.cfg.LeaseTTL+time.Second-1)/time.Second))
	cancel()
	if err != nil {
		return fmt.Errorf("grant lease: %w", err)
	}
	lease := grant.ID
	ttl := time.Duration(grant.TTL) * time.Second
	rec := &cefiotv1.Worker{
		Id: w.cfg.ID, Node: w.cfg.Node, Kinds: w.cfg.Kinds, Labels: w.cfg.Labels,
		AdminGrpcAddress: w.cfg.AdminGRPC, AdminHttpAddress: w.cfg.AdminHTTP,
		LeaseId: int64(lease), RegisteredTime: timestamppb.Now(), LeaseTtlSeconds: grant.TTL,
	}
	b, err := placement.Encode(rec)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, w.cfg.LeaseTTL)
	_, err = w.cli.Put(pctx, w.cfg.Keys.Worker(w.cfg.ID), string(b), clientv3.WithLease(lease))
	cancel()
	if err != nil {
		w.revoke(lease)
		return fmt.Errorf("put worker key: %w", err)
	}
	w.mu.Lock()
	w.lease, w.validUntil, w.paused = lease, sent.Add(ttl), false
	w.mu.Unlock()
	w.logger.Info("worker registered", "lease", fmt.Sprintf("%x", lease), "ttl", ttl, "kinds", w.cfg.Kinds, "fence_margin", w.cfg.FenceMargin)
	w.kickFollow()

	lctx, stopRenewing := context.WithCancel(ctx)
	defer stopRenewing()
	renewals := make(chan renewal, 1)
	go w.renew(lctx, lease, renewals)

	fence := time.NewTimer(time.Until(sent.Add(ttl - w.cfg.FenceMargin)))
	defer fence.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			w.stopAll("worker stopping", time.Time{})
			w.revoke(lease)
			w.clearLease(lease)
			return ctx.Err()
		case r := <-renewals:
			if errors.Is(r.err, rpctypes.ErrLeaseNotFound) {
				w.leaseLosses.Inc()
				w.stopAll("lease expired", time.Time{})
				w.clearLease(lease)
				return fmt.Errorf("lease %x expired at etcd", lease)
			}
			if r.err != nil {
				w.renewFailures.Inc()
				failures++
				if failures == 1 || failures%20 == 0 {
					w.logger.Warn("cannot renew lease; workloads keep running until the fence deadline", "err", r.err, "failures", failures)
				}
				continue
			}
			failures = 0
			w.mu.Lock()
			if until := r.sent.Add(r.ttl); until.After(w.validUntil) {
				w.validUntil = until
			}
			until := w.validUntil
			wasPaused := w.paused
			w.paused = false
			w.mu.Unlock()
			fence.Reset(time.Until(until.Add(-w.cfg.FenceMargin)))
			if wasPaused {
				w.logger.Info("lease renewed again; resuming workloads under the same lease")
				w.kickFollow()
			}
		case <-fence.C:
			w.mu.Lock()
			until, paused := w.validUntil, w.paused
			w.mu.Unlock()
			if paused || time.Now().Before(until.Add(-w.cfg.FenceMargin)) {
				fence.Reset(max(time.Until(until.Add(-w.cfg.FenceMargin)), w.cfg.RenewEvery))
				continue
			}
			w.fencePauses.Inc()
			w.logger.Warn("lease not renewed in time: stopping every workload before it can expire", "lease_valid_for", time.Until(until).Round(time.Millisecond))
			w.mu.Lock()
			w.paused = true
			w.mu.Unlock()
			w.stopAll("fenced: lease not renewed", until)
			fence.Reset(w.cfg.RenewEvery)
		}
	}
}

// renew renews lease every RenewEvery and reports each attempt.
func (w *Worker) renew(ctx context.Context, lease clientv3.LeaseID, out chan<- renewal) {
	for ctx.Err() == nil {
		sent := time.Now()
		// A renewal lost in a partition must not block the next one for a
		// whole TTL: give each attempt two renewal intervals.
		kctx, cancel := context.WithTimeout(ctx, min(w.cfg.LeaseTTL, max(2*w.cfg.RenewEvery, 500*time.Millisecond)))
		resp, err := w.cli.KeepAliveOnce(kctx, lease)
		cancel()
		w.logger.Debug("lease renewal", "took", time.Since(sent), "err", err)
		r := renewal{sent: sent, err: err}
		if err == nil {
			r.ttl = time.Duration(resp.TTL) * time.Second
		}
		select {
		case out <- r:
		case <-ctx.Done():
			return
		}
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return
		}
		t := time.NewTimer(time.Until(sent.Add(w.cfg.RenewEvery)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// CallDeadline implements leasebound.Clock: a runner's blocking call must have
// returned half a fence margin before the lease could expire, so that a
// fence (which starts a whole margin before) finds it returned.
func (w *Worker) CallDeadline() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.validUntil.Add(-w.cfg.FenceMargin / 2)
}

func (w *Worker) clearLease(lease clientv3.LeaseID) {
	w.mu.Lock()
	if w.lease == lease {
		w.lease, w.paused = 0, false
	}
	w.mu.Unlock()
}

func (w *Worker) revoke(lease clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = w.cli.Revoke(ctx, lease)
}

// stopAll cancels every workload and waits until they have returned. With
// a non-zero deadline, workloads still running at the deadline are
// reported to OnFenceOverrun.
func (w *Worker) stopAll(why string, deadline time.Time) {
	w.mu.Lock()
	execs := slices.Collect(maps.Values(w.running))
	clear(w.running)
	for _, e := range execs {
		w.stopping[e.workload.GetName()] = e
	}
	w.mu.Unlock()
	start := time.Now()
	for _, e := range execs {
		w.logger.Info("stopping workload", "workload", e.workload.GetName(), "epoch", e.assignment.GetEpoch(), "why", why)
		e.cancel()
	}
	var stuck []string
	for _, e := range execs {
		if deadline.IsZero() {
			<-e.done
			continue
		}
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-e.stopped:
		case <-t.C:
			stuck = append(stuck, e.workload.GetName())
		}
		t.Stop()
	}
	if !deadline.IsZero() && len(execs) > 0 {
		took := time.Since(start)
		w.fenceStop.Observe(took.Seconds())
		w.logger.Info("workloads stopped for the fence", "took", took.Round(time.Millisecond), "margin", w.cfg.FenceMargin, "stopped", len(execs)-len(stuck))
	}
	if len(stuck) > 0 {
		w.fenceOverruns.Inc()
		w.logger.Error("workloads did not stop before the lease could expire", "workloads", stuck)
		if w.cfg.OnFenceOverrun != nil {
			w.cfg.OnFenceOverrun(stuck)
		}
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
	watch:
		for {
			select {
			case <-w.kick:
				break watch
			case resp, ok := <-wch:
				if !ok || resp.Err() != nil {
					if ctx.Err() == nil {
						w.logger.Warn("watch interrupted; running workloads continue", "err", resp.Err())
					}
					break watch
				}
				for _, ev := range resp.Events {
					k := string(ev.Kv.Key)
					if hasPrefix(k, w.cfg.Keys.Assignments()) || hasPrefix(k, w.cfg.Keys.Workloads()) {
						break watch // re-read the state and reconcile
					}
				}
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
	w.mu.Lock()
	defer w.mu.Unlock()
	want := map[string]*cefiotv1.Assignment{}
	effective := map[string]*cefiotv1.Workload{}
	for _, a := range st.Assignments {
		wl := workloads[a.GetWorkload()]
		if a.GetWorkerId() != w.cfg.ID || wl == nil || !placement.RunsIn(wl, st.Site) {
			continue
		}
		if w.lease == 0 || w.paused || clientv3.LeaseID(a.GetLeaseId()) != w.lease {
			continue // void (an old lease) or not ours to run right now
		}
		want[a.GetWorkload()] = a
		effective[a.GetWorkload()] = placement.Effective(wl, a)
	}
	for name, e := range w.running {
		a := want[name]
		if a == nil || a.GetEpoch() != e.assignment.GetEpoch() || !proto.Equal(effective[name], e.workload) {
			w.logger.Info("stopping workload", "workload", name, "epoch", e.assignment.GetEpoch())
			e.cancel()
			delete(w.running, name)
			w.stopping[name] = e
		}
	}
	for name, a := range want {
		if _, ok := w.running[name]; ok {
			continue
		}
		w.start(ctx, a, effective[name])
	}
}

// start launches a workload; w.mu is held.
func (w *Worker) start(ctx context.Context, a *cefiotv1.Assignment, wl *cefiotv1.Workload) {
	rctx, cancel := context.WithCancel(leasebound.With(ctx, w))
	e := &execution{assignment: a, workload: wl, started: time.Now(), cancel: cancel, stopped: make(chan struct{}), done: make(chan struct{})}
	w.running[wl.GetName()] = e
	prev := w.stopping[wl.GetName()]
	logger := w.logger.With("workload", wl.GetName(), "epoch", a.GetEpoch())
	go func() {
		defer func() {
			w.mu.Lock()
			if w.stopping[wl.GetName()] == e {
				delete(w.stopping, wl.GetName())
			}
			w.mu.Unlock()
			close(e.done)
		}()
		if prev != nil {
			// The previous execution of this workload must have returned
			// (and released its claim) before this one starts.
			select {
			case <-prev.done:
			case <-rctx.Done():
				return
			}
		}
		claim, err := w.claim(rctx, logger, e)
		if err != nil {
			close(e.stopped)
			return
		}
		defer w.release(claim)
		defer close(e.stopped)
		logger.Info("starting workload", "kind", wl.GetKind())
		backoff := newBackoff()
		for rctx.Err() == nil {
			// A restarted run that keeps going for healthyAfter has
			// recovered: clear the error it restarted after, so status
			// shows the workload healthy again (the log keeps the history).
			w.mu.Lock()
			run := e.runs
			w.mu.Unlock()
			recovered := time.AfterFunc(healthyAfter, func() {
				w.mu.Lock()
				if e.runs == run { // still the same run
					e.lastErr = ""
				}
				w.mu.Unlock()
			})
			started := time.Now()
			err := w.run(rctx, a, wl)
			recovered.Stop()
			if time.Since(started) >= healthyAfter {
				backoff.reset()
			}
			if rctx.Err() != nil {
				return
			}
			w.mu.Lock()
			e.runs++
			if err == nil {
				e.finished = true
				e.lastErr = ""
				w.mu.Unlock()
				logger.Info("workload finished")
				w.markFinished(rctx, claim)
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

// heldClaim is a claim this worker wrote.
type heldClaim struct {
	claim *cefiotv1.Claim
	rev   int64
}

// claim writes the workload's claim under the assignment's lease once no
// other worker holds it and the assignment is unchanged. It returns when
// claimed or when ctx ends.
func (w *Worker) claim(ctx context.Context, logger *slog.Logger, e *execution) (*heldClaim, error) {
	a := e.assignment
	key, akey := w.cfg.Keys.Claim(a.GetWorkload()), w.cfg.Keys.Assignment(a.GetWorkload())
	c := &cefiotv1.Claim{
		Workload: a.GetWorkload(), WorkerId: w.cfg.ID, Node: w.cfg.Node, Epoch: a.GetEpoch(), LeaseId: a.GetLeaseId(),
	}
	backoff := newBackoff()
	waitingFor := ""
	for {
		c.ClaimedTime = timestamppb.Now()
		b, err := placement.Encode(c)
		if err != nil {
			return nil, err
		}
		put := clientv3.OpPut(key, string(b), clientv3.WithLease(clientv3.LeaseID(a.GetLeaseId())))
		resp, err := w.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(akey), "=", a.GetEpoch()), clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(put).Else(clientv3.OpGet(akey), clientv3.OpGet(key)).Commit()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			w.setLastErr(e, "claim: "+err.Error())
			backoff.wait(ctx)
			continue
		}
		if resp.Succeeded {
			w.setLastErr(e, "")
			return &heldClaim{claim: c, rev: resp.Header.Revision}, nil
		}
		ak := resp.Responses[0].GetResponseRange().Kvs
		if len(ak) == 0 || ak[0].ModRevision != a.GetEpoch() {
			// The assignment changed; reconcile cancels this execution.
			<-ctx.Done()
			return nil, ctx.Err()
		}
		ck := resp.Responses[1].GetResponseRange().Kvs
		if len(ck) == 0 {
			continue // released in between
		}
		held := &cefiotv1.Claim{}
		_ = placement.Decode(ck[0].Value, held)
		if held.GetWorkerId() == w.cfg.ID && held.GetLeaseId() == a.GetLeaseId() && ck[0].Lease == a.GetLeaseId() {
			// Our own claim from before a pause or an epoch change.
			r, err := w.cli.Txn(ctx).
				If(clientv3.Compare(clientv3.ModRevision(akey), "=", a.GetEpoch()), clientv3.Compare(clientv3.ModRevision(key), "=", ck[0].ModRevision)).
				Then(put).Commit()
			if err == nil && r.Succeeded {
				w.setLastErr(e, "")
				return &heldClaim{claim: c, rev: r.Header.Revision}, nil
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue
		}
		if waitingFor != held.GetWorkerId() {
			waitingFor = held.GetWorkerId()
			logger.Info("waiting for the previous owner to stop", "owner", held.GetWorkerId(), "owner_epoch", held.GetEpoch())
			w.setLastErr(e, fmt.Sprintf("waiting for worker %s to stop it (claim of epoch %d)", held.GetWorkerId(), held.GetEpoch()))
		}
		// Wait for the claim to go (released, or its lease expired).
		wctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), 5*time.Second)
		for wr := range w.cli.Watch(wctx, key, clientv3.WithRev(ck[0].ModRevision+1)) {
			gone := false
			for _, ev := range wr.Events {
				gone = gone || ev.Type == clientv3.EventTypeDelete
			}
			if gone || wr.Err() != nil {
				break
			}
		}
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

func (w *Worker) setLastErr(e *execution, s string) {
	w.mu.Lock()
	e.lastErr = s
	w.mu.Unlock()
}

// markFinished records in the claim that the workload finished.
func (w *Worker) markFinished(ctx context.Context, h *heldClaim) {
	c := proto.Clone(h.claim).(*cefiotv1.Claim)
	c.Finished = true
	b, err := placement.Encode(c)
	if err != nil {
		return
	}
	key := w.cfg.Keys.Claim(c.GetWorkload())
	for ctx.Err() == nil {
		tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		r, err := w.cli.Txn(tctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", h.rev)).
			Then(clientv3.OpPut(key, string(b), clientv3.WithLease(clientv3.LeaseID(c.GetLeaseId())))).Commit()
		cancel()
		if err == nil {
			if r.Succeeded {
				h.claim, h.rev = c, r.Header.Revision
			}
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// release deletes the claim after the workload stopped. If etcd cannot be
// reached the claim ends with the lease.
func (w *Worker) release(h *heldClaim) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	key := w.cfg.Keys.Claim(h.claim.GetWorkload())
	if _, err := w.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", h.rev)).Then(clientv3.OpDelete(key)).Commit(); err != nil {
		w.logger.Warn("cannot release claim; it ends with the lease", "workload", h.claim.GetWorkload(), "err", err)
	}
}

// healthyAfter is how long a restarted workload must run without failing
// before its last error is cleared from its status.
const healthyAfter = 10 * time.Second

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
