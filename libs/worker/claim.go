package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cefiot/cefiot/libs/placement"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

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
