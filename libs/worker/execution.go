package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cefiot/cefiot/libs/leasebound"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// start launches a workload; w.mu is held.
func (w *Worker) start(ctx context.Context, a *cefiotv1.Assignment, wl *cefiotv1.Workload) {
	e := &execution{assignment: a, workload: wl, started: time.Now(), stopped: make(chan struct{}), done: make(chan struct{})}
	// A workload that must not run twice bounds its blocking calls by the
	// lease; an overlap-safe one relies on its own fencing, and keeps
	// working in degraded mode, when the lease cannot be renewed.
	if !w.overlapSafe(e) {
		ctx = leasebound.With(ctx, w)
	}
	rctx, cancel := context.WithCancel(ctx)
	e.cancel = cancel
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
			runCtx, restart := context.WithCancelCause(rctx)
			w.mu.Lock()
			e.restart = restart
			w.mu.Unlock()
			err := w.run(runCtx, a, wl)
			restart(nil)
			recovered.Stop()
			if time.Since(started) >= healthyAfter {
				backoff.reset()
			}
			if rctx.Err() != nil {
				return
			}
			if cause := context.Cause(runCtx); errors.Is(cause, errRefresh) {
				// Stopped to start again with new credentials: no
				// failure, no back-off.
				logger.Info("workload restarted", "why", cause)
				w.refreshes.Inc()
				continue
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
			w.awaitRenewal(rctx, logger)
			backoff.wait(rctx)
		}
	}()
}

// errRefresh is the cause of a run stopped by Refresh.
var errRefresh = errors.New("refresh")

// Refresh stops the current run of every workload and starts it again at
// once, under the same claim and epoch: what a service does when its
// clients must be rebuilt (new Kafka credentials). A run stops as it does
// when fenced (a transaction open is aborted, not committed), so a refresh
// loses and duplicates nothing.
func (w *Worker) Refresh(why string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.running {
		if e.restart != nil {
			e.restart(fmt.Errorf("%w: %s", errRefresh, why))
		}
	}
}

// awaitRenewal waits while the worker is self-fenced (degraded mode): a
// failed overlap-safe run is not started again until the lease is renewed,
// so that a copy fenced by its successor elsewhere does not fence it back.
func (w *Worker) awaitRenewal(ctx context.Context, logger *slog.Logger) {
	for {
		w.mu.Lock()
		paused, renewed := w.paused, w.renewed
		w.mu.Unlock()
		if !paused || renewed == nil {
			return
		}
		logger.Warn("degraded: the workload is started again once the lease is renewed")
		select {
		case <-ctx.Done():
			return
		case <-renewed:
		}
	}
}
