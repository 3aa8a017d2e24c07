package scheduler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cefiot/cefiot/libs/kafkax"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cefiot/cefiot/libs/placement"
	"github.com/cefiot/cefiot/libs/redact"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// api is the admin API of a site. Every replica serves it: reads come from
// etcd, and writes are compare-and-swap transactions (assignment revision,
// target worker lease), so they are safe next to the leader's own writes.
type api struct {
	cefiotv1.UnimplementedSchedulerServiceServer
	cli   *clientv3.Client
	keys  placement.Keys
	sched *Scheduler
	// audit is the site's Kafka cluster holding the audit trail (nil:
	// none configured).
	audit *kafkax.Conn
}

func invalid(field, format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, "%s: %s", field, fmt.Sprintf(format, args...))
}

func checkName(field, v string) error {
	if v == "" {
		return invalid(field, "must not be empty")
	}
	if !placement.ValidName(v) {
		return invalid(field, "%q is not a valid name (letters, digits, '.', '_', ':', '-'; at most 128)", v)
	}
	return nil
}

func (a *api) state(ctx context.Context) (*placement.State, error) {
	st, err := placement.ReadState(ctx, a.cli, a.keys)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "read site state: %v", err)
	}
	return st, nil
}

func (a *api) ListWorkers(ctx context.Context, _ *cefiotv1.ListWorkersRequest) (*cefiotv1.ListWorkersResponse, error) {
	st, err := a.state(ctx)
	if err != nil {
		return nil, err
	}
	a.fillLeaseRemaining(ctx, st.Workers)
	return &cefiotv1.ListWorkersResponse{Workers: st.Workers}, nil
}

// Bounds of the lease look-ups of ListWorkers.
const (
	leaseLookups       = 8 // at once
	leaseLookupTimeout = 3 * time.Second
)

// fillLeaseRemaining sets each worker's lease_remaining_seconds to what
// etcd reports now. A lease etcd cannot tell about (expired, or the call
// failed) stays 0; the listing does not fail for it.
func (a *api) fillLeaseRemaining(ctx context.Context, workers []*cefiotv1.Worker) {
	ctx, cancel := context.WithTimeout(ctx, leaseLookupTimeout)
	defer cancel()
	var g errgroup.Group
	g.SetLimit(leaseLookups)
	for _, w := range workers {
		if w.GetLeaseId() == 0 {
			continue
		}
		g.Go(func() error {
			resp, err := a.cli.TimeToLive(ctx, clientv3.LeaseID(w.GetLeaseId()))
			switch {
			case err != nil:
				a.sched.logger.Debug("lease time to live unknown", "worker", w.GetId(), "lease", w.GetLeaseId(), "err", err)
			case resp.TTL < 0:
				a.sched.logger.Debug("lease time to live unknown: lease expired", "worker", w.GetId(), "lease", w.GetLeaseId())
			default:
				w.LeaseRemainingSeconds = float64(resp.TTL)
			}
			return nil
		})
	}
	_ = g.Wait() // the goroutines return no errors
}

func (a *api) ListWorkloads(ctx context.Context, _ *cefiotv1.ListWorkloadsRequest) (*cefiotv1.ListWorkloadsResponse, error) {
	st, err := a.state(ctx)
	if err != nil {
		return nil, err
	}
	return &cefiotv1.ListWorkloadsResponse{Workloads: shown(st.Workloads...)}, nil
}

func (a *api) ListAssignments(ctx context.Context, _ *cefiotv1.ListAssignmentsRequest) (*cefiotv1.ListAssignmentsResponse, error) {
	st, err := a.state(ctx)
	if err != nil {
		return nil, err
	}
	return &cefiotv1.ListAssignmentsResponse{Assignments: st.Assignments, Claims: st.Claims, Revision: st.Revision}, nil
}

func (a *api) GetLeader(ctx context.Context, _ *cefiotv1.GetLeaderRequest) (*cefiotv1.GetLeaderResponse, error) {
	id, err := a.sched.Leader(ctx)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "%v", err)
	}
	return &cefiotv1.GetLeaderResponse{LeaderId: id, Site: a.keys.Site()}, nil
}

// Nodes derives the site's nodes from live workers, node states and
// assignments.
func Nodes(st *placement.State) []*cefiotv1.Node {
	nodes := map[string]*cefiotv1.Node{}
	get := func(name string) *cefiotv1.Node {
		n := nodes[name]
		if n == nil {
			n = &cefiotv1.Node{Name: name, Labels: map[string]string{}}
			nodes[name] = n
		}
		return n
	}
	owner := map[string]string{}
	for _, w := range st.Workers {
		n := get(w.GetNode())
		n.WorkerIds = append(n.WorkerIds, w.GetId())
		maps.Copy(n.Labels, w.GetLabels())
		owner[w.GetId()] = w.GetNode()
	}
	for _, s := range st.Nodes {
		n := get(s.GetName())
		n.Cordoned, n.Drained, n.Reason = s.GetCordoned(), s.GetDrained(), s.GetReason()
	}
	for _, as := range st.Assignments {
		if node, ok := owner[as.GetWorkerId()]; ok {
			n := get(node)
			n.Workloads = append(n.Workloads, as.GetWorkload())
		}
	}
	out := slices.Collect(maps.Values(nodes))
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	for _, n := range out {
		sort.Strings(n.WorkerIds)
		sort.Strings(n.Workloads)
	}
	return out
}

func (a *api) ListNodes(ctx context.Context, _ *cefiotv1.ListNodesRequest) (*cefiotv1.ListNodesResponse, error) {
	st, err := a.state(ctx)
	if err != nil {
		return nil, err
	}
	return &cefiotv1.ListNodesResponse{Nodes: Nodes(st)}, nil
}

// WatchAssignments sends a snapshot, then every change of assignments and
// claims, until the client goes away.
func (a *api) WatchAssignments(_ *cefiotv1.WatchAssignmentsRequest, stream cefiotv1.SchedulerService_WatchAssignmentsServer) error {
	ctx := stream.Context()
	st, err := a.state(ctx)
	if err != nil {
		return err
	}
	if err := stream.Send(&cefiotv1.WatchAssignmentsResponse{
		Snapshot: true, Revision: st.Revision, Assignments: st.Assignments, Claims: st.Claims,
	}); err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for resp := range a.cli.Watch(wctx, a.keys.Prefix(), clientv3.WithPrefix(), clientv3.WithRev(st.Revision+1)) {
		if err := resp.Err(); err != nil {
			return status.Errorf(codes.Unavailable, "watch: %v", err)
		}
		msg := &cefiotv1.WatchAssignmentsResponse{Revision: resp.Header.Revision}
		for _, ev := range resp.Events {
			key := string(ev.Kv.Key)
			switch {
			case strings.HasPrefix(key, a.keys.Assignments()):
				name := strings.TrimPrefix(key, a.keys.Assignments())
				if ev.Type == clientv3.EventTypeDelete {
					msg.Unassigned = append(msg.Unassigned, name)
					continue
				}
				if as, err := placement.DecodeAssignment(ev.Kv.Value, ev.Kv.ModRevision); err == nil {
					msg.Assignments = append(msg.Assignments, as)
				}
			case strings.HasPrefix(key, a.keys.Claims()):
				name := strings.TrimPrefix(key, a.keys.Claims())
				if ev.Type == clientv3.EventTypeDelete {
					msg.Released = append(msg.Released, name)
					continue
				}
				c := &cefiotv1.Claim{}
				if err := placement.Decode(ev.Kv.Value, c); err == nil {
					msg.Claims = append(msg.Claims, c)
				}
			}
		}
		if len(msg.Assignments)+len(msg.Unassigned)+len(msg.Claims)+len(msg.Released) == 0 {
			continue
		}
		if err := stream.Send(msg); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return status.Error(codes.Unavailable, "watch ended")
}

func (a *api) setNode(ctx context.Context, name string, cordoned, drained bool, reason string) (*cefiotv1.NodeState, error) {
	if err := checkName("node", name); err != nil {
		return nil, err
	}
	st, err := a.state(ctx)
	if err != nil {
		return nil, err
	}
	known := false
	for _, n := range Nodes(st) {
		known = known || n.GetName() == name
	}
	if !known && (cordoned || drained) {
		return nil, status.Errorf(codes.NotFound, "node: %q has no live worker and no state in site %s", name, a.keys.Site())
	}
	ns := &cefiotv1.NodeState{Name: name, Cordoned: cordoned, Drained: drained, Reason: reason}
	if err := placement.SetNodeState(ctx, a.cli, a.keys, ns); err != nil {
		return nil, status.Errorf(codes.Unavailable, "%v", err)
	}
	return ns, nil
}

func (a *api) CordonNode(ctx context.Context, req *cefiotv1.CordonNodeRequest) (*cefiotv1.CordonNodeResponse, error) {
	ns, err := a.setNode(ctx, req.GetNode(), true, false, req.GetReason())
	if err != nil {
		return nil, err
	}
	return &cefiotv1.CordonNodeResponse{State: ns}, nil
}

func (a *api) UncordonNode(ctx context.Context, req *cefiotv1.UncordonNodeRequest) (*cefiotv1.UncordonNodeResponse, error) {
	ns, err := a.setNode(ctx, req.GetNode(), false, false, "")
	if err != nil {
		return nil, err
	}
	return &cefiotv1.UncordonNodeResponse{State: ns}, nil
}

// DrainNode marks the node drained and moves its workloads right away (the
// leader does the same on its next round; whoever is first wins the
// compare-and-swap). The answer lists where each workload of the node went,
// and what could not move.
func (a *api) DrainNode(ctx context.Context, req *cefiotv1.DrainNodeRequest) (*cefiotv1.DrainNodeResponse, error) {
	if err := checkName("node", req.GetNode()); err != nil {
		return nil, err
	}
	before, err := a.state(ctx)
	if err != nil {
		return nil, err
	}
	ns, err := a.setNode(ctx, req.GetNode(), true, true, req.GetReason())
	if err != nil {
		return nil, err
	}
	for attempt := 0; attempt < 5; attempt++ {
		st, err := a.state(ctx)
		if err != nil {
			return nil, err
		}
		conflict := false
		for _, d := range placement.Plan(placement.InputOf(st)) {
			cur := st.Assignment(d.Workload)
			if cur == nil || cur.GetNode() != req.GetNode() || d.Assign == nil || d.Assign.GetNode() == req.GetNode() {
				continue
			}
			_, err := placement.WriteDecision(ctx, a.cli, a.keys, d, st.AssignmentRevisions[d.Workload])
			if errors.Is(err, placement.ErrConflict) {
				conflict = true
				continue
			}
			if err != nil {
				return nil, status.Errorf(codes.Unavailable, "%v", err)
			}
		}
		if !conflict {
			break
		}
	}
	after, err := a.state(ctx)
	if err != nil {
		return nil, err
	}
	resp := &cefiotv1.DrainNodeResponse{State: ns}
	for _, old := range before.Assignments {
		if old.GetNode() != req.GetNode() {
			continue
		}
		now := after.Assignment(old.GetWorkload())
		switch {
		case now != nil && now.GetNode() != req.GetNode():
			resp.Moved = append(resp.Moved, now)
		case now == nil:
			resp.NotMoved = append(resp.NotMoved, old.GetWorkload()+": unassigned (no live worker fits)")
		default:
			resp.NotMoved = append(resp.NotMoved, old.GetWorkload()+": no other live worker fits; it stays")
		}
	}
	return resp, nil
}

func (a *api) MoveWorkload(ctx context.Context, req *cefiotv1.MoveWorkloadRequest) (*cefiotv1.MoveWorkloadResponse, error) {
	if err := checkName("workload", req.GetWorkload()); err != nil {
		return nil, err
	}
	if req.GetNode() == "" && req.GetWorkerId() == "" {
		return nil, invalid("node", "give a target node or worker_id")
	}
	if req.GetNode() != "" && req.GetWorkerId() != "" {
		return nil, invalid("worker_id", "give either node or worker_id, not both")
	}
	if req.GetNode() != "" {
		if err := checkName("node", req.GetNode()); err != nil {
			return nil, err
		}
	}
	if req.GetWorkerId() != "" {
		if err := checkName("worker_id", req.GetWorkerId()); err != nil {
			return nil, err
		}
	}
	for attempt := 0; attempt < 5; attempt++ {
		st, err := a.state(ctx)
		if err != nil {
			return nil, err
		}
		wl := st.Workload(req.GetWorkload())
		if wl == nil {
			return nil, status.Errorf(codes.NotFound, "workload: %q is not declared in site %s", req.GetWorkload(), a.keys.Site())
		}
		if !placement.RunsIn(wl, a.keys.Site()) {
			return nil, status.Errorf(codes.FailedPrecondition, "workload: %q runs in site %s; move it across sites with cefiotctl move -to-site", wl.GetName(), wl.GetSite())
		}
		cur := st.Assignment(wl.GetName())
		target, err := placement.Choose(placement.InputOf(st), wl, req.GetNode(), req.GetWorkerId(), cur.GetWorkerId())
		if err != nil {
			return nil, status.Errorf(codes.FailedPrecondition, "%v", err)
		}
		if cur != nil && cur.GetWorkerId() == target.GetId() && placement.Bound(cur, target) {
			return &cefiotv1.MoveWorkloadResponse{Assignment: cur}, nil
		}
		params := placement.PlacementParams(st.Site, st.Workloads)[wl.GetName()]
		d := placement.Decision{Workload: wl.GetName(), Reason: "moved by admin request", Assign: &cefiotv1.Assignment{
			Workload: wl.GetName(), WorkerId: target.GetId(), Node: target.GetNode(), LeaseId: target.GetLeaseId(),
			Reason: "moved by admin request", Params: params,
		}}
		epoch, err := placement.WriteDecision(ctx, a.cli, a.keys, d, st.AssignmentRevisions[wl.GetName()])
		if errors.Is(err, placement.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "%v", err)
		}
		d.Assign.Epoch = epoch
		a.sched.logger.Info("moved", "workload", wl.GetName(), "worker", target.GetId(), "node", target.GetNode(), "epoch", epoch)
		return &cefiotv1.MoveWorkloadResponse{Assignment: d.Assign}, nil
	}
	return nil, status.Error(codes.Aborted, "the assignment kept changing; try again")
}

func (a *api) ApplySpec(ctx context.Context, req *cefiotv1.ApplySpecRequest) (*cefiotv1.ApplySpecResponse, error) {
	if strings.TrimSpace(req.GetSpecYaml()) == "" {
		return nil, invalid("spec_yaml", "must not be empty")
	}
	spec, err := placement.ParseSpec([]byte(req.GetSpecYaml()))
	if err != nil {
		return nil, invalid("spec_yaml", "%v", err)
	}
	if spec.Site != a.keys.Site() {
		return nil, invalid("spec_yaml", "site: the spec is for site %q, this scheduler governs %q", spec.Site, a.keys.Site())
	}
	n, err := placement.ApplyWorkloads(ctx, a.cli, a.keys, spec.Proto())
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "%v", err)
	}
	return &cefiotv1.ApplySpecResponse{Changed: int32(n), Workloads: shown(spec.Proto()...)}, nil
}

func (a *api) GetWorkload(ctx context.Context, req *cefiotv1.GetWorkloadRequest) (*cefiotv1.GetWorkloadResponse, error) {
	if err := checkName("name", req.GetName()); err != nil {
		return nil, err
	}
	st, err := a.state(ctx)
	if err != nil {
		return nil, err
	}
	wl := st.Workload(req.GetName())
	if wl == nil {
		return nil, status.Errorf(codes.NotFound, "name: workload %q is not declared in site %s", req.GetName(), a.keys.Site())
	}
	return &cefiotv1.GetWorkloadResponse{Workload: shown(wl)[0], Assignment: st.Assignment(wl.GetName()), Claim: st.Claim(wl.GetName())}, nil
}

func (a *api) PutWorkload(ctx context.Context, req *cefiotv1.PutWorkloadRequest) (*cefiotv1.PutWorkloadResponse, error) {
	wl := req.GetWorkload()
	if wl == nil {
		return nil, invalid("workload", "must be given")
	}
	if err := placement.ValidateWorkload("workload", wl); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	wl = proto.Clone(wl).(*cefiotv1.Workload)
	if wl.GetSite() == a.keys.Site() {
		wl.Site = ""
	}
	// A workload read from this API and written back keeps its stored
	// credentials (the API shows them masked).
	st, err := a.state(ctx)
	if err != nil {
		return nil, err
	}
	if stored := st.Workload(wl.GetName()); stored != nil {
		redact.Restore(wl.GetParams(), stored.GetParams())
	}
	if wl.GetHomeSite() == a.keys.Site() {
		return nil, invalid("workload.home_site", "%q is this site; home_site names the site a workload was moved here from", wl.GetHomeSite())
	}
	if err := mayPut(ctx, st.Workload(wl.GetName()), wl); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		changed, err := placement.PutWorkload(ctx, a.cli, a.keys, wl)
		if errors.Is(err, placement.ErrConflict) && attempt < 5 {
			continue
		}
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "%v", err)
		}
		return &cefiotv1.PutWorkloadResponse{Workload: shown(wl)[0], Changed: changed}, nil
	}
}

// shown returns copies of workloads as the API shows them: credentials in
// their params (a camera URL's password) masked.
func shown(workloads ...*cefiotv1.Workload) []*cefiotv1.Workload {
	out := make([]*cefiotv1.Workload, len(workloads))
	for i, wl := range workloads {
		c := proto.Clone(wl).(*cefiotv1.Workload)
		c.Params = redact.Params(c.GetParams())
		out[i] = c
	}
	return out
}

func (a *api) DeleteWorkload(ctx context.Context, req *cefiotv1.DeleteWorkloadRequest) (*cefiotv1.DeleteWorkloadResponse, error) {
	if err := checkName("name", req.GetName()); err != nil {
		return nil, err
	}
	st, err := a.state(ctx)
	if err != nil {
		return nil, err
	}
	if err := mayDelete(ctx, st.Workload(req.GetName())); err != nil {
		return nil, err
	}
	ok, err := placement.DeleteWorkload(ctx, a.cli, a.keys, req.GetName())
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "%v", err)
	}
	return &cefiotv1.DeleteWorkloadResponse{Deleted: ok}, nil
}
