package check

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// services: each Service selects a workload and each of its ports reaches
// a port the selected containers declare.
func (p *policy) services() {
	for _, svc := range p.set.Services {
		id := "Service " + svc.Namespace + "/" + svc.Name
		if len(svc.Spec.Selector) == 0 {
			p.fail(id, "has no selector")
			continue
		}
		var selected []Workload
		for _, w := range p.set.Workloads {
			if selectsMap(svc.Spec.Selector, svc.Namespace, w) {
				selected = append(selected, w)
			}
		}
		if len(selected) == 0 {
			p.fail(id, "selector %v selects no workload", svc.Spec.Selector)
			continue
		}
		for _, sp := range svc.Spec.Ports {
			target := sp.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(sp.Port)
			}
			for _, w := range selected {
				if !declaresPort(w.Template.Spec.Containers, target) {
					p.fail(id, "port %s targets %s, which no container of %s declares", sp.Name, target.String(), w.ID())
				}
			}
		}
	}
	for _, w := range p.set.Workloads {
		if w.GVK.Kind != "StatefulSet" {
			continue
		}
		ok := false
		for _, svc := range p.set.Services {
			if svc.Namespace == w.Namespace && svc.Name == w.ServiceName {
				ok = svc.Spec.ClusterIP == corev1.ClusterIPNone
			}
		}
		if !ok {
			p.fail(w.ID(), "serviceName %q is not a headless Service in its namespace", w.ServiceName)
		}
	}
}

func declaresPort(cs []corev1.Container, target intstr.IntOrString) bool {
	for _, c := range cs {
		for _, cp := range c.Ports {
			if (target.Type == intstr.String && cp.Name == target.StrVal) || (target.Type == intstr.Int && cp.ContainerPort == target.IntVal) {
				return true
			}
		}
	}
	return false
}
