package check

import (
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
)

// Policy runs every policy check over one overlay's objects and returns
// one error per violation, each naming the object, the container and the
// field.
func Policy(s *Set, facts Facts) []error {
	p := &policy{set: s, facts: facts}
	for _, w := range s.Workloads {
		p.workload(w)
	}
	p.disruptionBudgets()
	p.services()
	for _, ns := range s.SiteNamespaces() {
		p.site(ns)
		p.network(ns)
		p.certificates(ns)
		p.sinkReplicas(ns)
		p.postgres(ns)
	}
	p.kafka()
	p.etcd()
	return p.errs
}

type policy struct {
	set   *Set
	facts Facts
	errs  []error
}

func (p *policy) fail(where string, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...)))
}

func containerID(w Workload, c *corev1.Container) string {
	return fmt.Sprintf("%s container %s", w.ID(), c.Name)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}
