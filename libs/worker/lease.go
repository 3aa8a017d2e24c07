package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cefiot/cefiot/libs/placement"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

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
				w.degraded.Set(0)
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
			if wasPaused && w.renewed != nil {
				close(w.renewed)
				w.renewed = nil
			}
			w.mu.Unlock()
			fence.Reset(time.Until(until.Add(-w.cfg.FenceMargin)))
			if wasPaused {
				w.degraded.Set(0)
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
			w.logger.Warn("lease not renewed in time: stopping the workloads that must not run twice before it can expire", "lease_valid_for", time.Until(until).Round(time.Millisecond))
			w.mu.Lock()
			w.paused = true
			w.renewed = make(chan struct{})
			w.mu.Unlock()
			if kept := w.stop("fenced: lease not renewed", until, w.overlapSafe); len(kept) > 0 {
				w.degraded.Set(float64(len(kept)))
				w.logger.Warn("DEGRADED: etcd unreachable or without quorum; overlap-safe workloads keep running until the lease is renewed or found expired", "workloads", kept)
			}
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
		if w.renewed != nil {
			close(w.renewed)
			w.renewed = nil
		}
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
func (w *Worker) stopAll(why string, deadline time.Time) { w.stop(why, deadline, nil) }

// overlapSafe reports whether e's workload may keep running without a
// lease (Config.OverlapSafe).
func (w *Worker) overlapSafe(e *execution) bool {
	return w.cfg.OverlapSafe != nil && w.cfg.OverlapSafe(e.workload)
}

// stop is stopAll for the workloads keep does not keep running (nil: all);
// it returns the names of those kept.
func (w *Worker) stop(why string, deadline time.Time, keep func(*execution) bool) (kept []string) {
	w.mu.Lock()
	var execs []*execution
	for name, e := range w.running {
		if keep != nil && keep(e) {
			kept = append(kept, name)
			continue
		}
		execs = append(execs, e)
		delete(w.running, name)
		w.stopping[name] = e
	}
	w.mu.Unlock()
	slices.Sort(kept)
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
	return kept
}
