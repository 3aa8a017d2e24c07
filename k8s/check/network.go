package check

import (
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// network checks that site namespace ns denies every flow by default (a
// NetworkPolicy selecting every pod, for ingress and egress, allowing
// nothing) and that every port a container opens is admitted by some
// policy: a port nobody may reach is a mistake, and one the deny does not
// cover is open to the whole cluster.
func (p *policy) network(ns string) {
	var pols []*networkingv1.NetworkPolicy
	for _, np := range p.set.NetworkPolicies {
		if np.Namespace == ns {
			pols = append(pols, np)
		}
	}
	if !hasDefaultDeny(pols) {
		p.fail("namespace "+ns, "no default-deny NetworkPolicy (podSelector {}, policyTypes Ingress and Egress, no rules)")
	}
	for _, w := range p.set.Workloads {
		if w.Namespace != ns {
			continue
		}
		if carriesToken(w) && !egressAdmitted(pols, w.Template.Labels, kubeAPIPorts) {
			p.fail(w.ID(), "carries a Kubernetes API token but no NetworkPolicy lets it reach the API server (TCP %v)", kubeAPIPorts)
		}
		for i := range w.Template.Spec.Containers {
			c := &w.Template.Spec.Containers[i]
			for _, port := range c.Ports {
				if !admitted(pols, w.Template.Labels, port.Name, port.ContainerPort) {
					p.fail(containerID(w, c), "port %s (%d) is not admitted by any NetworkPolicy", port.Name, port.ContainerPort)
				}
			}
		}
	}
}

// kubeAPIPorts are where an API server listens: 443 behind the kubernetes
// Service, 6443 on the nodes of k3s and kubeadm clusters.
var kubeAPIPorts = []int32{443, 6443}

func carriesToken(w Workload) bool {
	t := w.Template.Spec.AutomountServiceAccountToken
	return t == nil || *t
}

// egressAdmitted reports whether some policy selecting the pod lets it out
// to every one of ports.
func egressAdmitted(pols []*networkingv1.NetworkPolicy, podLabels map[string]string, ports []int32) bool {
	for _, port := range ports {
		ok := false
		for _, np := range pols {
			if !selects(&np.Spec.PodSelector, podLabels) {
				continue
			}
			for _, rule := range np.Spec.Egress {
				if len(rule.Ports) == 0 {
					ok = true
				}
				for _, rp := range rule.Ports {
					if rp.Port == nil || (rp.Port.StrVal == "" && rp.Port.IntVal == port) {
						ok = true
					}
				}
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func hasDefaultDeny(pols []*networkingv1.NetworkPolicy) bool {
	for _, np := range pols {
		sel := np.Spec.PodSelector
		types := map[networkingv1.PolicyType]bool{}
		for _, t := range np.Spec.PolicyTypes {
			types[t] = true
		}
		if len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0 && len(np.Spec.Ingress) == 0 && len(np.Spec.Egress) == 0 &&
			types[networkingv1.PolicyTypeIngress] && types[networkingv1.PolicyTypeEgress] {
			return true
		}
	}
	return false
}

func admitted(pols []*networkingv1.NetworkPolicy, podLabels map[string]string, name string, number int32) bool {
	for _, np := range pols {
		if !selects(&np.Spec.PodSelector, podLabels) {
			continue
		}
		for _, rule := range np.Spec.Ingress {
			if len(rule.Ports) == 0 {
				return true
			}
			for _, rp := range rule.Ports {
				if rp.Port == nil || (name != "" && rp.Port.StrVal == name) || (rp.Port.StrVal == "" && rp.Port.IntVal == number) {
					return true
				}
			}
		}
	}
	return false
}

func selects(sel *metav1.LabelSelector, podLabels map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		panic(fmt.Sprintf("NetworkPolicy selector %v: %v", sel, err)) // strict decoding let an invalid selector through
	}
	return s.Matches(labels.Set(podLabels))
}
