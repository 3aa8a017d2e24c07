package placement

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/cefiot/cefiot/libs/pipeline"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// Fits reports whether worker can run workload: it offers the kind and
// carries every label of the workload's node selector.
func Fits(w *cefiotv1.Worker, wl *cefiotv1.Workload) bool {
	if !slices.Contains(w.GetKinds(), wl.GetKind()) {
		return false
	}
	for k, v := range wl.GetNodeSelector() {
		if w.GetLabels()[k] != v {
			return false
		}
	}
	return true
}

// RunsIn reports whether workload runs in site (its site is empty or names
// site).
func RunsIn(wl *cefiotv1.Workload, site string) bool {
	return wl.GetSite() == "" || wl.GetSite() == site
}

// Bound reports whether assignment a is still valid: its worker is live
// with the very lease the assignment was written for. A worker that lost
// its lease and registered again has a new lease, so its old assignments
// are void and must be written again (with a new epoch).
func Bound(a *cefiotv1.Assignment, w *cefiotv1.Worker) bool {
	return w != nil && a.GetLeaseId() != 0 && w.GetLeaseId() == a.GetLeaseId()
}

// Decision is one change the leader writes.
type Decision struct {
	Workload string
	// Assign is the new assignment; nil means delete the current one.
	Assign *cefiotv1.Assignment
	Reason string
}

// Input is what a placement decision looks at.
type Input struct {
	Site        string
	Workloads   []*cefiotv1.Workload
	Workers     []*cefiotv1.Worker
	Assignments []*cefiotv1.Assignment
	Nodes       []*cefiotv1.NodeState
}

// InputOf returns the placement input of a state read from site's etcd.
func InputOf(st *State) Input {
	return Input{Site: st.Site, Workloads: st.Workloads, Workers: st.Workers, Assignments: st.Assignments, Nodes: st.Nodes}
}

// picker chooses workers for workloads, tracking the load it has placed.
type picker struct {
	workers []*cefiotv1.Worker
	nodes   map[string]*cefiotv1.NodeState
	load    map[string]int            // worker id -> assignments
	spread  map[string]map[string]int // kind -> spread value -> assignments
	kindOf  map[string]string
}

func newPicker(in Input) *picker {
	p := &picker{
		workers: slices.Clone(in.Workers),
		nodes:   map[string]*cefiotv1.NodeState{},
		load:    map[string]int{},
		spread:  map[string]map[string]int{},
		kindOf:  map[string]string{},
	}
	sort.Slice(p.workers, func(i, j int) bool { return p.workers[i].GetId() < p.workers[j].GetId() })
	for _, n := range in.Nodes {
		p.nodes[n.GetName()] = n
	}
	return p
}

// schedulable reports whether new placements may go to w's node.
func (p *picker) schedulable(w *cefiotv1.Worker) bool {
	n := p.nodes[w.GetNode()]
	return n == nil || (!n.GetCordoned() && !n.GetDrained())
}

func (p *picker) drained(w *cefiotv1.Worker) bool {
	n := p.nodes[w.GetNode()]
	return n != nil && n.GetDrained()
}

func spreadValue(w *cefiotv1.Worker, key string) string {
	if key == "" {
		return ""
	}
	if key == "node" {
		return w.GetNode()
	}
	return w.GetLabels()[key]
}

func (p *picker) place(w *cefiotv1.Worker, wl *cefiotv1.Workload) {
	p.load[w.GetId()]++
	if key := wl.GetSpreadBy(); key != "" {
		m := p.spread[wl.GetKind()+"/"+key]
		if m == nil {
			m = map[string]int{}
			p.spread[wl.GetKind()+"/"+key] = m
		}
		m[spreadValue(w, key)]++
	}
}

// best returns the fitting, schedulable worker with the lowest (spread
// count, load, id), or nil. accept may narrow the candidates further.
func (p *picker) best(wl *cefiotv1.Workload, accept func(*cefiotv1.Worker) bool) *cefiotv1.Worker {
	var best *cefiotv1.Worker
	var bestSpread int
	spread := p.spread[wl.GetKind()+"/"+wl.GetSpreadBy()]
	for _, w := range p.workers {
		if !Fits(w, wl) || !p.schedulable(w) || (accept != nil && !accept(w)) {
			continue
		}
		s := spread[spreadValue(w, wl.GetSpreadBy())]
		if best == nil || s < bestSpread || (s == bestSpread && p.load[w.GetId()] < p.load[best.GetId()]) {
			best, bestSpread = w, s
		}
	}
	return best
}

// Plan compares declared workloads, live workers, node states and current
// assignments and returns the changes that make every workload of the site
// run on exactly one live worker that fits it:
//
//   - a workload stays where it is while its worker is live with the lease
//     the assignment was written for, still fits, and its node is not
//     drained; a live owner is never moved for balance;
//   - otherwise it goes to the fitting worker on a schedulable node with
//     the fewest workloads of the same kind on its spread value, then the
//     fewest assignments, then the smallest id (deterministic);
//   - a workload that runs in another site, or is no longer declared,
//     loses its assignment here.
//
// Placement params (Assignment.params) are recomputed every time, so a
// change of them rewrites the assignment on the same worker.
func Plan(in Input) []Decision {
	live := map[string]*cefiotv1.Worker{}
	for _, w := range in.Workers {
		live[w.GetId()] = w
	}
	current := map[string]*cefiotv1.Assignment{}
	for _, a := range in.Assignments {
		current[a.GetWorkload()] = a
	}
	extra := PlacementParams(in.Site, in.Workloads)
	p := newPicker(in)
	declared := map[string]bool{}
	var decisions []Decision

	sorted := slices.Clone(in.Workloads)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].GetName() < sorted[j].GetName() })
	var pending []*cefiotv1.Workload
	for _, wl := range sorted {
		if !RunsIn(wl, in.Site) {
			continue
		}
		declared[wl.GetName()] = true
		a := current[wl.GetName()]
		if a != nil {
			if w := live[a.GetWorkerId()]; Bound(a, w) && Fits(w, wl) && !p.drained(w) {
				p.place(w, wl)
				if want := extra[wl.GetName()]; !maps.Equal(want, a.GetParams()) {
					decisions = append(decisions, Decision{
						Workload: wl.GetName(),
						Assign:   newAssignment(wl, w, "placement params changed: "+describeParams(want)),
						Reason:   "placement params changed",
					})
				}
				continue
			}
		}
		pending = append(pending, wl)
	}
	for _, wl := range pending {
		a := current[wl.GetName()]
		reason := "unassigned"
		if a != nil {
			w := live[a.GetWorkerId()]
			switch {
			case w == nil:
				reason = "worker " + a.GetWorkerId() + " is gone"
			case !Bound(a, w):
				reason = "worker " + a.GetWorkerId() + " lost the lease of its assignment"
			case p.drained(w):
				reason = "node " + w.GetNode() + " is drained"
			default:
				reason = "worker " + a.GetWorkerId() + " no longer fits"
			}
		}
		best := p.best(wl, nil)
		if best == nil {
			if a != nil {
				if w := live[a.GetWorkerId()]; Bound(a, w) && Fits(w, wl) {
					// Drained, but nothing else fits: it stays.
					p.place(w, wl)
					continue
				}
				// Release the void assignment; epochs keep growing anyway.
				decisions = append(decisions, Decision{Workload: wl.GetName(), Reason: reason + "; no live worker fits"})
			}
			continue
		}
		p.place(best, wl)
		as := newAssignment(wl, best, reason)
		as.Params = extra[wl.GetName()]
		decisions = append(decisions, Decision{Workload: wl.GetName(), Assign: as, Reason: reason})
	}
	for _, d := range decisions {
		if d.Assign != nil && d.Assign.Params == nil {
			d.Assign.Params = extra[d.Workload]
		}
	}
	names := slices.Sorted(maps.Keys(current))
	for _, name := range names {
		if declared[name] {
			continue
		}
		reason := "workload removed"
		for _, wl := range in.Workloads {
			if wl.GetName() == name && !RunsIn(wl, in.Site) {
				reason = "workload moved to site " + wl.GetSite()
			}
		}
		decisions = append(decisions, Decision{Workload: name, Reason: reason})
	}
	return decisions
}

func newAssignment(wl *cefiotv1.Workload, w *cefiotv1.Worker, reason string) *cefiotv1.Assignment {
	return &cefiotv1.Assignment{
		Workload: wl.GetName(), WorkerId: w.GetId(), Node: w.GetNode(), LeaseId: w.GetLeaseId(), Reason: reason,
	}
}

// Choose returns the worker a workload should move to: the given worker,
// or the best fitting worker on the given node, or the best fitting worker
// anywhere but the current owner. The error says why nothing fits.
func Choose(in Input, wl *cefiotv1.Workload, node, workerID, currentOwner string) (*cefiotv1.Worker, error) {
	p := newPicker(in)
	byID := map[string]*cefiotv1.Worker{}
	for _, w := range in.Workers {
		byID[w.GetId()] = w
	}
	for _, a := range in.Assignments {
		if w := byID[a.GetWorkerId()]; Bound(a, w) && a.GetWorkload() != wl.GetName() {
			for _, other := range in.Workloads {
				if other.GetName() == a.GetWorkload() {
					p.place(w, other)
				}
			}
		}
	}
	if workerID != "" {
		w := byID[workerID]
		switch {
		case w == nil:
			return nil, fmt.Errorf("worker %q is not live", workerID)
		case !Fits(w, wl):
			return nil, fmt.Errorf("worker %q does not fit workload %s (kinds %v, labels %v; needs kind %s and labels %v)",
				workerID, wl.GetName(), w.GetKinds(), w.GetLabels(), wl.GetKind(), wl.GetNodeSelector())
		case !p.schedulable(w):
			return nil, fmt.Errorf("node %q of worker %q is cordoned", w.GetNode(), workerID)
		}
		return w, nil
	}
	w := p.best(wl, func(w *cefiotv1.Worker) bool {
		if node != "" {
			return w.GetNode() == node
		}
		return w.GetId() != currentOwner
	})
	if w == nil {
		where := "on another node"
		if node != "" {
			where = "on node " + node
		}
		return nil, fmt.Errorf("no live, schedulable worker %s fits workload %s (kind %s, node selector %v)", where, wl.GetName(), wl.GetKind(), wl.GetNodeSelector())
	}
	return w, nil
}

// InputTopic is the site-local topic wl consumes, or "" for kinds that do
// not consume one of this site's topics across sites.
func InputTopic(wl *cefiotv1.Workload) string {
	if wl.GetKind() != pipeline.KindEnrich {
		return ""
	}
	if t := wl.GetParams()[pipeline.ParamInputTopic]; t != "" {
		return t
	}
	return pipeline.TopicFramesRaw
}

// PlacementParams returns, per workload name, the params the placement adds
// (nil for none). A bridge forwards, besides its own topics, the input
// topic of every workload declared here that runs in another site or is
// handing off to one: the bridge's topic set follows the placement.
func PlacementParams(site string, workloads []*cefiotv1.Workload) map[string]map[string]string {
	var forward []string
	for _, wl := range workloads {
		if wl.GetHomeSite() != "" {
			continue // moved here; its input is forwarded by its home site
		}
		if t := InputTopic(wl); t != "" && (!RunsIn(wl, site) || wl.GetParams()[pipeline.ParamHandoffTo] != "" || wl.GetParams()[pipeline.ParamHandoffFrom] != "") {
			forward = append(forward, t)
		}
	}
	out := map[string]map[string]string{}
	if len(forward) == 0 {
		return out
	}
	for _, wl := range workloads {
		if wl.GetKind() != pipeline.KindBridge || !RunsIn(wl, site) {
			continue
		}
		topics := pipeline.DefaultBridgeTopics()
		if t := wl.GetParams()[pipeline.ParamTopics]; t != "" {
			topics = SplitList(t)
		}
		merged := slices.Clone(topics)
		for _, t := range forward {
			if !slices.Contains(merged, t) {
				merged = append(merged, t)
			}
		}
		if len(merged) > len(topics) {
			out[wl.GetName()] = map[string]string{pipeline.ParamTopics: strings.Join(merged, ",")}
		}
	}
	return out
}

// SplitList splits a comma-separated list, dropping blanks.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func describeParams(m map[string]string) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, " ")
}

// Effective returns the workload as its runner sees it: its own params
// with the assignment's placement params merged over them.
func Effective(wl *cefiotv1.Workload, a *cefiotv1.Assignment) *cefiotv1.Workload {
	if len(a.GetParams()) == 0 {
		return wl
	}
	out := &cefiotv1.Workload{
		Name: wl.GetName(), Kind: wl.GetKind(), NodeSelector: wl.GetNodeSelector(),
		Site: wl.GetSite(), SpreadBy: wl.GetSpreadBy(), HomeSite: wl.GetHomeSite(),
		Params: maps.Clone(wl.GetParams()),
	}
	if out.Params == nil {
		out.Params = map[string]string{}
	}
	maps.Copy(out.Params, a.GetParams())
	return out
}
