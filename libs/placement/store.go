package placement

import (
	"context"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// State is a consistent snapshot of a site's control-plane records.
type State struct {
	Revision    int64
	Workers     []*cefiotv1.Worker
	Workloads   []*cefiotv1.Workload
	Assignments []*cefiotv1.Assignment
	// AssignmentRevisions maps a workload to its assignment key's
	// ModRevision, for compare-and-swap writes.
	AssignmentRevisions map[string]int64
}

// ReadState reads workers, workloads and assignments at one revision. The
// epoch of an assignment is the etcd revision that wrote it, so epochs only
// grow, even across deletes and leader changes.
func ReadState(ctx context.Context, kv clientv3.KV, keys Keys) (*State, error) {
	resp, err := kv.Txn(ctx).Then(
		clientv3.OpGet(keys.Workers(), clientv3.WithPrefix()),
		clientv3.OpGet(keys.Workloads(), clientv3.WithPrefix()),
		clientv3.OpGet(keys.Assignments(), clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return nil, fmt.Errorf("read site %s state: %w", keys.Site(), err)
	}
	st := &State{Revision: resp.Header.Revision, AssignmentRevisions: map[string]int64{}}
	for _, kvp := range resp.Responses[0].GetResponseRange().Kvs {
		w := &cefiotv1.Worker{}
		if err := Decode(kvp.Value, w); err != nil {
			return nil, fmt.Errorf("worker %s: %w", kvp.Key, err)
		}
		st.Workers = append(st.Workers, w)
	}
	for _, kvp := range resp.Responses[1].GetResponseRange().Kvs {
		w := &cefiotv1.Workload{}
		if err := Decode(kvp.Value, w); err != nil {
			return nil, fmt.Errorf("workload %s: %w", kvp.Key, err)
		}
		st.Workloads = append(st.Workloads, w)
	}
	for _, kvp := range resp.Responses[2].GetResponseRange().Kvs {
		a, err := DecodeAssignment(kvp.Value, kvp.ModRevision)
		if err != nil {
			return nil, fmt.Errorf("assignment %s: %w", kvp.Key, err)
		}
		st.Assignments = append(st.Assignments, a)
		st.AssignmentRevisions[a.GetWorkload()] = kvp.ModRevision
	}
	return st, nil
}

// DecodeAssignment decodes an assignment and sets its epoch to the revision
// that wrote it.
func DecodeAssignment(b []byte, modRevision int64) (*cefiotv1.Assignment, error) {
	a := &cefiotv1.Assignment{}
	if err := Decode(b, a); err != nil {
		return nil, err
	}
	a.Epoch = modRevision
	return a, nil
}

// ErrGuardFailed means a guarded write was refused because a guard (such as
// leadership) no longer holds.
var ErrGuardFailed = errors.New("guarded write refused: guard no longer holds")

// ApplyWorkloads makes the declared workloads of the site exactly ws. It is
// idempotent: unchanged workloads are not rewritten. The write happens only
// if every guard holds (e.g. the caller still leads).
func ApplyWorkloads(ctx context.Context, kv clientv3.KV, keys Keys, ws []*cefiotv1.Workload, guards ...clientv3.Cmp) (changed int, err error) {
	resp, err := kv.Get(ctx, keys.Workloads(), clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("read workloads: %w", err)
	}
	existing := map[string]*cefiotv1.Workload{}
	for _, kvp := range resp.Kvs {
		w := &cefiotv1.Workload{}
		if err := Decode(kvp.Value, w); err == nil {
			existing[string(kvp.Key)] = w
		}
	}
	var ops []clientv3.Op
	want := map[string]bool{}
	for _, w := range ws {
		key := keys.Workload(w.GetName())
		want[key] = true
		if old, ok := existing[key]; ok && proto.Equal(old, w) {
			continue
		}
		b, err := Encode(w)
		if err != nil {
			return 0, err
		}
		ops = append(ops, clientv3.OpPut(key, string(b)))
	}
	for key := range existing {
		if !want[key] {
			ops = append(ops, clientv3.OpDelete(key))
		}
	}
	if len(ops) == 0 {
		return 0, nil
	}
	tr, err := kv.Txn(ctx).If(guards...).Then(ops...).Commit()
	if err != nil {
		return 0, fmt.Errorf("apply %d workload changes: %w", len(ops), err)
	}
	if !tr.Succeeded {
		return 0, ErrGuardFailed
	}
	return len(ops), nil
}
