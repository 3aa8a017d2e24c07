package check

import (
	"errors"
	"fmt"
	"net"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/libs/placement"
	"github.com/cefiot/cefiot/libs/service"
)

// site checks one site's namespace: one site name, a pipeline spec for it
// mounted where the scheduler reads it, and a worker for every workload the
// spec declares, with the labels its node selector asks for.
func (p *policy) site(ns string) {
	type worker struct {
		w       Workload
		c       *corev1.Container
		env     map[string]EnvVar
		service string
	}
	var workers []worker
	sites := map[string][]string{}
	for _, w := range p.set.Workloads {
		if w.Namespace != ns {
			continue
		}
		for i := range w.Template.Spec.Containers {
			c := &w.Template.Spec.Containers[i]
			service := p.facts.Service(c.Image)
			if service == "" {
				continue
			}
			env, _ := p.set.ContainerEnv(ns, c)
			site := p.facts.Flags[service]["site"]
			if v, ok := env[EnvName("site")]; ok {
				site = v.Value
			}
			sites[site] = append(sites[site], w.Name)
			workers = append(workers, worker{w: w, c: c, env: env, service: service})
		}
	}
	if len(workers) == 0 {
		return
	}
	if len(sites) != 1 {
		p.fail("namespace "+ns, "its services disagree on the site name: %v", sites)
		return
	}
	var site string
	for s := range sites {
		site = s
	}
	var schedulers []worker
	for _, wk := range workers {
		if wk.service == "scheduler" {
			schedulers = append(schedulers, wk)
		}
	}
	if len(schedulers) != 1 {
		p.fail("namespace "+ns, "want exactly one scheduler workload, found %d", len(schedulers))
		return
	}
	sch := schedulers[0]
	id := containerID(sch.w, sch.c)
	specPath := sch.env[EnvName("spec")].Value
	if specPath == "" {
		p.fail(id, "has no pipeline spec (%s)", EnvName("spec"))
		return
	}
	specYAML, err := p.mountedConfigMapFile(ns, sch.w, sch.c, specPath)
	if err != nil {
		p.fail(id, "pipeline spec %s: %v", specPath, err)
		return
	}
	spec, err := placement.ParseSpec([]byte(specYAML))
	if err != nil {
		p.fail(id, "pipeline spec %s: %v", specPath, err)
		return
	}
	if spec.Site != site {
		p.fail(id, "pipeline spec %s is for site %q but the site's services run as site %q", specPath, spec.Site, site)
	}
	// Sinks with the shared index are not placed: a sink workload in the
	// spec would wait for a worker that never takes it.
	var replicas []string
	for _, wk := range workers {
		if wk.service == "sink" && p.sinkIndex(ns, wk.c) == sharedIndex {
			replicas = append(replicas, wk.w.Name)
		}
	}
	for _, wl := range spec.Workloads {
		if wl.Kind == pipeline.KindSink && len(replicas) > 0 {
			p.fail("pipeline spec workload "+wl.Name, "the sink runs as replicas with -index %s (%s), which the scheduler does not place: the spec must declare no sink workload", sharedIndex, strings.Join(replicas, ", "))
			continue
		}
		var fits []string
		var kindFound bool
		for _, wk := range workers {
			if wk.service != wl.Kind {
				continue
			}
			kindFound = true
			labels, err := service.ParseLabels(wk.env[EnvName("labels")].Value)
			if err != nil {
				p.fail(containerID(wk.w, wk.c), "%s: %v", EnvName("labels"), err)
				continue
			}
			ok := true
			for k, v := range wl.NodeSelector {
				got, has := labels[k]
				// A value from the downward API (<spec.nodeName>) may match.
				ok = ok && has && (got == v || strings.HasPrefix(got, "<"))
			}
			if ok {
				fits = append(fits, wk.w.Name)
			}
			if wl.Kind == pipeline.KindCapture && strings.HasPrefix(wl.Params[pipeline.ParamSource], "/") && !underMount(wk.c, wl.Params[pipeline.ParamSource]) {
				p.fail("pipeline spec workload "+wl.Name, "source %s is not under a volume mounted into %s", wl.Params["source"], containerID(wk.w, wk.c))
			}
		}
		switch {
		case !kindFound:
			p.fail("pipeline spec workload "+wl.Name, "no %s worker is deployed in namespace %s", wl.Kind, ns)
		case len(fits) == 0:
			p.fail("pipeline spec workload "+wl.Name, "nodeSelector %v matches the labels of no %s worker", wl.NodeSelector, wl.Kind)
		}
	}
	// The bridge must forward to another cluster.
	for _, wk := range workers {
		if wk.service != "bridge" {
			continue
		}
		cloud := wk.env[EnvName("cloud-bootstrap")].Value
		if cloud == "" || strings.Contains(cloud, ".invalid") {
			p.fail(containerID(wk.w, wk.c), "cloud-bootstrap %q: the overlay must set the cloud cluster's endpoints", cloud)
		}
		for _, ep := range strings.Split(cloud, ",") {
			if host, _, err := net.SplitHostPort(strings.TrimSpace(ep)); err == nil && resolvesInto(host, ns) {
				p.fail(containerID(wk.w, wk.c), "cloud-bootstrap %q points at the edge site's own namespace", cloud)
			}
		}
	}
}

func resolvesInto(host, ns string) bool {
	parts := strings.Split(host, ".")
	switch {
	case len(parts) <= 2:
		return true
	case parts[2] == "svc":
		return parts[1] == ns
	case len(parts) >= 4 && parts[3] == "svc":
		return parts[2] == ns
	}
	return false
}

func underMount(c *corev1.Container, file string) bool {
	for _, m := range c.VolumeMounts {
		if file == m.MountPath || strings.HasPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/") {
			return true
		}
	}
	return false
}

// mountedConfigMapFile returns the content of file as the container sees it
// when file lies in a ConfigMap volume.
func (p *policy) mountedConfigMapFile(ns string, w Workload, c *corev1.Container, file string) (string, error) {
	for _, m := range c.VolumeMounts {
		var key string
		switch {
		case m.SubPath != "" && m.MountPath == file:
			key = m.SubPath
		case m.SubPath == "" && path.Dir(file) == path.Clean(m.MountPath):
			key = path.Base(file)
		default:
			continue
		}
		for _, v := range w.Template.Spec.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			cm := p.set.ConfigMaps[ns+"/"+v.ConfigMap.Name]
			if cm == nil {
				return "", fmt.Errorf("ConfigMap %s does not exist", v.ConfigMap.Name)
			}
			for _, item := range v.ConfigMap.Items {
				if item.Path == key {
					key = item.Key
				}
			}
			data, ok := cm.Data[key]
			if !ok {
				return "", fmt.Errorf("ConfigMap %s has no key %s", cm.Name, key)
			}
			return data, nil
		}
	}
	return "", errors.New("not in a ConfigMap volume mounted into the container")
}
