package placement

import (
	"slices"
	"sort"

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

// Decision is one change the leader writes.
type Decision struct {
	Workload string
	// Assign is the new assignment; nil means delete the current one.
	Assign *cefiotv1.Assignment
	Reason string
}

// Plan compares declared workloads, live workers and current assignments and
// returns the changes that make every workload run on exactly one live
// worker that fits it. A workload that stays on a live, fitting worker is
// never moved. New owners are chosen by the fewest assignments, then by id,
// so the result is deterministic.
func Plan(workloads []*cefiotv1.Workload, workers []*cefiotv1.Worker, assignments []*cefiotv1.Assignment) []Decision {
	live := map[string]*cefiotv1.Worker{}
	for _, w := range workers {
		live[w.GetId()] = w
	}
	current := map[string]*cefiotv1.Assignment{}
	for _, a := range assignments {
		current[a.GetWorkload()] = a
	}
	declared := map[string]bool{}
	load := map[string]int{}
	var decisions []Decision

	sorted := slices.Clone(workloads)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].GetName() < sorted[j].GetName() })
	var pending []*cefiotv1.Workload
	for _, wl := range sorted {
		declared[wl.GetName()] = true
		a := current[wl.GetName()]
		if a != nil {
			if w := live[a.GetWorkerId()]; w != nil && Fits(w, wl) {
				load[w.GetId()]++
				continue
			}
		}
		pending = append(pending, wl)
	}
	for _, wl := range pending {
		a := current[wl.GetName()]
		reason := "unassigned"
		if a != nil {
			if live[a.GetWorkerId()] == nil {
				reason = "worker " + a.GetWorkerId() + " is gone"
			} else {
				reason = "worker " + a.GetWorkerId() + " no longer fits"
			}
		}
		var best *cefiotv1.Worker
		for _, w := range workers {
			if !Fits(w, wl) {
				continue
			}
			if best == nil || load[w.GetId()] < load[best.GetId()] ||
				(load[w.GetId()] == load[best.GetId()] && w.GetId() < best.GetId()) {
				best = w
			}
		}
		if best == nil {
			if a != nil && live[a.GetWorkerId()] == nil {
				// Keep the epoch history but release the dead owner.
				decisions = append(decisions, Decision{Workload: wl.GetName(), Reason: reason + "; no live worker fits"})
			}
			continue
		}
		load[best.GetId()]++
		decisions = append(decisions, Decision{
			Workload: wl.GetName(),
			Assign: &cefiotv1.Assignment{
				Workload: wl.GetName(),
				WorkerId: best.GetId(),
				Node:     best.GetNode(),
			},
			Reason: reason,
		})
	}
	names := make([]string, 0, len(current))
	for name := range current {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !declared[name] {
			decisions = append(decisions, Decision{Workload: name, Reason: "workload removed from spec"})
		}
	}
	return decisions
}
