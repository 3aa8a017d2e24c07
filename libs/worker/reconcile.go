package worker

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	"github.com/cefiot/cefiot/libs/placement"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

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
		if w.lease == 0 || clientv3.LeaseID(a.GetLeaseId()) != w.lease {
			continue // void (an old lease)
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
	if w.paused {
		return // self-fenced: what runs (overlap-safe) goes on, nothing starts
	}
	for name, a := range want {
		if _, ok := w.running[name]; ok {
			continue
		}
		w.start(ctx, a, effective[name])
	}
}
