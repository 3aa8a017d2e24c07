package placement

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cefiot/cefiot/libs/pipeline"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// State is a consistent snapshot of a site's control-plane records.
type State struct {
	Site        string
	Revision    int64
	Workers     []*cefiotv1.Worker
	Workloads   []*cefiotv1.Workload
	Assignments []*cefiotv1.Assignment
	Claims      []*cefiotv1.Claim
	Nodes       []*cefiotv1.NodeState
	// AssignmentRevisions maps a workload to its assignment key's
	// ModRevision, for compare-and-swap writes.
	AssignmentRevisions map[string]int64
	// ClaimRevisions maps a workload to its claim key's ModRevision.
	ClaimRevisions map[string]int64
}

// Worker returns the live worker with id, or nil.
func (st *State) Worker(id string) *cefiotv1.Worker {
	for _, w := range st.Workers {
		if w.GetId() == id {
			return w
		}
	}
	return nil
}

// Workload returns the declared workload name, or nil.
func (st *State) Workload(name string) *cefiotv1.Workload {
	for _, w := range st.Workloads {
		if w.GetName() == name {
			return w
		}
	}
	return nil
}

// Assignment returns the assignment of workload name, or nil.
func (st *State) Assignment(name string) *cefiotv1.Assignment {
	for _, a := range st.Assignments {
		if a.GetWorkload() == name {
			return a
		}
	}
	return nil
}

// Claim returns the claim of workload name, or nil.
func (st *State) Claim(name string) *cefiotv1.Claim {
	for _, c := range st.Claims {
		if c.GetWorkload() == name {
			return c
		}
	}
	return nil
}

// ReadState reads workers, workloads, assignments, claims and node states
// at one revision. The epoch of an assignment is the etcd revision that
// wrote it, so epochs only grow, even across deletes and leader changes.
func ReadState(ctx context.Context, kv clientv3.KV, keys Keys) (*State, error) {
	resp, err := kv.Txn(ctx).Then(
		clientv3.OpGet(keys.Workers(), clientv3.WithPrefix()),
		clientv3.OpGet(keys.Workloads(), clientv3.WithPrefix()),
		clientv3.OpGet(keys.Assignments(), clientv3.WithPrefix()),
		clientv3.OpGet(keys.Claims(), clientv3.WithPrefix()),
		clientv3.OpGet(keys.Nodes(), clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return nil, fmt.Errorf("read site %s state: %w", keys.Site(), err)
	}
	st := &State{Site: keys.Site(), Revision: resp.Header.Revision, AssignmentRevisions: map[string]int64{}, ClaimRevisions: map[string]int64{}}
	for _, kvp := range resp.Responses[0].GetResponseRange().Kvs {
		w := &cefiotv1.Worker{}
		if err := Decode(kvp.Value, w); err != nil {
			return nil, fmt.Errorf("worker %s: %w", kvp.Key, err)
		}
		w.LeaseId = kvp.Lease
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
	for _, kvp := range resp.Responses[3].GetResponseRange().Kvs {
		c := &cefiotv1.Claim{}
		if err := Decode(kvp.Value, c); err != nil {
			return nil, fmt.Errorf("claim %s: %w", kvp.Key, err)
		}
		st.Claims = append(st.Claims, c)
		st.ClaimRevisions[c.GetWorkload()] = kvp.ModRevision
	}
	for _, kvp := range resp.Responses[4].GetResponseRange().Kvs {
		n := &cefiotv1.NodeState{}
		if err := Decode(kvp.Value, n); err != nil {
			return nil, fmt.Errorf("node %s: %w", kvp.Key, err)
		}
		st.Nodes = append(st.Nodes, n)
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

// ErrConflict means the record changed since it was read; read again.
var ErrConflict = errors.New("record changed concurrently")

// WriteDecision writes one placement decision as a transaction that
// succeeds only if the assignment is still at revision rev (0: absent),
// the target worker still holds the lease the assignment names, and every
// guard holds. It returns the new epoch (0 for a delete) or ErrConflict.
func WriteDecision(ctx context.Context, kv clientv3.KV, keys Keys, d Decision, rev int64, guards ...clientv3.Cmp) (int64, error) {
	key := keys.Assignment(d.Workload)
	cmps := append([]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", rev)}, guards...)
	var op clientv3.Op
	if d.Assign != nil {
		a := proto.Clone(d.Assign).(*cefiotv1.Assignment)
		a.Epoch = 0
		a.AssignedTime = timestamppb.Now()
		if a.GetReason() == "" {
			a.Reason = d.Reason
		}
		b, err := Encode(a)
		if err != nil {
			return 0, err
		}
		op = clientv3.OpPut(key, string(b))
		cmps = append(cmps, clientv3.Compare(clientv3.LeaseValue(keys.Worker(a.GetWorkerId())), "=", a.GetLeaseId()))
	} else {
		op = clientv3.OpDelete(key)
	}
	resp, err := kv.Txn(ctx).If(cmps...).Then(op).Commit()
	if err != nil {
		return 0, fmt.Errorf("write assignment of %s: %w", d.Workload, err)
	}
	if !resp.Succeeded {
		return 0, ErrConflict
	}
	if d.Assign == nil {
		return 0, nil
	}
	return resp.Header.Revision, nil
}

// SpecHash identifies a spec's content.
func SpecHash(s *Spec) string {
	var b strings.Builder
	for _, w := range s.Proto() {
		enc, _ := Encode(w)
		b.Write(enc)
		b.WriteByte('\n')
	}
	sum := sha256.Sum256([]byte(s.Site + "\n" + b.String()))
	return hex.EncodeToString(sum[:])
}

// ApplySpecOnce applies a spec file's workloads unless the same content
// was applied before (recorded under SpecApplied), so that a new leader
// does not undo cross-site moves and workload changes made through the
// admin API since. It returns the number of records changed (0 when the
// spec was applied before).
func ApplySpecOnce(ctx context.Context, kv clientv3.KV, keys Keys, s *Spec, guards ...clientv3.Cmp) (int, error) {
	hash := SpecHash(s)
	resp, err := kv.Get(ctx, keys.SpecApplied())
	if err != nil {
		return 0, fmt.Errorf("read applied spec: %w", err)
	}
	if len(resp.Kvs) == 1 && string(resp.Kvs[0].Value) == hash {
		return 0, nil
	}
	n, err := ApplyWorkloads(ctx, kv, keys, s.Proto(), guards...)
	if err != nil {
		return 0, err
	}
	if _, err := kv.Txn(ctx).If(guards...).Then(clientv3.OpPut(keys.SpecApplied(), hash)).Commit(); err != nil {
		return n, fmt.Errorf("record applied spec: %w", err)
	}
	return n, nil
}

// ApplyWorkloads makes the declared workloads of the site exactly ws. It is
// idempotent: unchanged workloads are not rewritten. A workload that was
// moved to another site keeps its site (a spec declares what runs, moves
// decide where), and a workload another site moved here is kept. The
// write happens only if every guard holds (e.g. the caller still leads).
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
		old, ok := existing[key]
		if ok && old.GetSite() != "" && w.GetSite() == "" {
			w = proto.Clone(w).(*cefiotv1.Workload)
			w.Site = old.GetSite()
		}
		if ok && proto.Equal(old, w) {
			continue
		}
		b, err := Encode(w)
		if err != nil {
			return 0, err
		}
		ops = append(ops, clientv3.OpPut(key, string(b)))
	}
	for key, w := range existing {
		if !want[key] && w.GetHomeSite() == "" {
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

// PutWorkload creates or replaces one workload; changed is false when the
// stored record was already equal.
func PutWorkload(ctx context.Context, kv clientv3.KV, keys Keys, w *cefiotv1.Workload) (changed bool, err error) {
	key := keys.Workload(w.GetName())
	resp, err := kv.Get(ctx, key)
	if err != nil {
		return false, fmt.Errorf("read workload %s: %w", w.GetName(), err)
	}
	var rev int64
	if len(resp.Kvs) == 1 {
		old := &cefiotv1.Workload{}
		if err := Decode(resp.Kvs[0].Value, old); err == nil && proto.Equal(old, w) {
			return false, nil
		}
		rev = resp.Kvs[0].ModRevision
	}
	b, err := Encode(w)
	if err != nil {
		return false, err
	}
	tr, err := kv.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).Then(clientv3.OpPut(key, string(b))).Commit()
	if err != nil {
		return false, fmt.Errorf("write workload %s: %w", w.GetName(), err)
	}
	if !tr.Succeeded {
		return false, ErrConflict
	}
	return true, nil
}

// DeleteWorkload removes one workload; the leader then removes its
// assignment and the owner stops it.
func DeleteWorkload(ctx context.Context, kv clientv3.KV, keys Keys, name string) (bool, error) {
	resp, err := kv.Delete(ctx, keys.Workload(name))
	if err != nil {
		return false, fmt.Errorf("delete workload %s: %w", name, err)
	}
	return resp.Deleted > 0, nil
}

// SetNodeState writes a node's operator state; a state with neither
// cordoned nor drained is deleted.
func SetNodeState(ctx context.Context, kv clientv3.KV, keys Keys, n *cefiotv1.NodeState) error {
	key := keys.Node(n.GetName())
	if !n.GetCordoned() && !n.GetDrained() {
		if _, err := kv.Delete(ctx, key); err != nil {
			return fmt.Errorf("clear node %s state: %w", n.GetName(), err)
		}
		return nil
	}
	n.UpdatedTime = timestamppb.Now()
	b, err := Encode(n)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, key, string(b)); err != nil {
		return fmt.Errorf("write node %s state: %w", n.GetName(), err)
	}
	return nil
}

// ValidateWorkload checks one workload as the admin API receives it;
// errors name the field (prefix is e.g. "workload").
func ValidateWorkload(prefix string, w *cefiotv1.Workload) error {
	var errs []error
	if !ValidName(w.GetName()) {
		errs = append(errs, fmt.Errorf("%s.name %q: must match %s", prefix, w.GetName(), nameRE))
	}
	known := false
	for _, k := range pipeline.Kinds() {
		known = known || k == w.GetKind()
	}
	if !known {
		errs = append(errs, fmt.Errorf("%s.kind %q: must be one of %v", prefix, w.GetKind(), pipeline.Kinds()))
	}
	if w.GetKind() == pipeline.KindCapture && (w.GetParams()[pipeline.ParamCamera] == "" || w.GetParams()[pipeline.ParamSource] == "") {
		errs = append(errs, fmt.Errorf("%s.params: a capture workload needs camera and source", prefix))
	}
	for _, f := range []struct{ name, v string }{{"site", w.GetSite()}, {"home_site", w.GetHomeSite()}} {
		if f.v != "" {
			if _, err := NewKeys(f.v); err != nil {
				errs = append(errs, fmt.Errorf("%s.%s: %w", prefix, f.name, err))
			}
		}
	}
	if w.GetSpreadBy() != "" && !labelKeyRE.MatchString(w.GetSpreadBy()) {
		errs = append(errs, fmt.Errorf("%s.spread_by %q: must be a label key (or \"node\")", prefix, w.GetSpreadBy()))
	}
	for k := range w.GetNodeSelector() {
		if !labelKeyRE.MatchString(k) {
			errs = append(errs, fmt.Errorf("%s.node_selector key %q: must match %s", prefix, k, labelKeyRE))
		}
	}
	return errors.Join(errs...)
}
