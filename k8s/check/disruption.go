package check

import (
	"k8s.io/apimachinery/pkg/util/intstr"
)

// disruptionBudgets: every workload with more than one replica has a
// PodDisruptionBudget that selects it and still allows a disruption; every
// budget selects a workload.
func (p *policy) disruptionBudgets() {
	used := map[string]bool{}
	for _, w := range p.set.Workloads {
		var found bool
		for _, pdb := range p.set.PDBs {
			ok, err := selectsLabelSelector(pdb.Spec.Selector, pdb.Namespace, w)
			if err != nil {
				p.fail("PodDisruptionBudget "+pdb.Namespace+"/"+pdb.Name, "selector: %v", err)
				continue
			}
			if !ok {
				continue
			}
			found = true
			used[pdb.Namespace+"/"+pdb.Name] = true
			if w.Replicas > 1 && !allowsDisruption(pdb.Spec.MinAvailable, pdb.Spec.MaxUnavailable, w.Replicas) {
				p.fail("PodDisruptionBudget "+pdb.Namespace+"/"+pdb.Name, "allows no disruption of %s's %d replicas: node drains would block", w.ID(), w.Replicas)
			}
		}
		if w.Replicas > 1 && !found {
			p.fail(w.ID(), "has %d replicas and no PodDisruptionBudget", w.Replicas)
		}
	}
	for _, pdb := range p.set.PDBs {
		if !used[pdb.Namespace+"/"+pdb.Name] {
			p.fail("PodDisruptionBudget "+pdb.Namespace+"/"+pdb.Name, "selects no workload")
		}
	}
}

func allowsDisruption(minAvailable, maxUnavailable *intstr.IntOrString, replicas int32) bool {
	if minAvailable != nil {
		n, err := intstr.GetScaledValueFromIntOrPercent(minAvailable, int(replicas), true)
		return err == nil && n < int(replicas)
	}
	if maxUnavailable != nil {
		n, err := intstr.GetScaledValueFromIntOrPercent(maxUnavailable, int(replicas), false)
		return err == nil && n >= 1
	}
	return false
}
