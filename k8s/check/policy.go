package check

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/libs/placement"
	"github.com/cefiot/cefiot/libs/service"
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

// workload checks the pod template and each container.
func (p *policy) workload(w Workload) {
	spec := &w.Template.Spec
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		p.fail(w.ID(), "uses the host's network, PID or IPC namespace")
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		p.fail(w.ID(), "automountServiceAccountToken must be false: no cefiot pod talks to the Kubernetes API")
	}
	hostPaths := map[string]bool{}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = true
		}
	}
	for i := range spec.InitContainers {
		p.container(w, &spec.InitContainers[i], true, hostPaths)
	}
	for i := range spec.Containers {
		p.container(w, &spec.Containers[i], false, hostPaths)
	}
}

func (p *policy) container(w Workload, c *corev1.Container, init bool, hostPaths map[string]bool) {
	id := containerID(w, c)
	pod := w.Template.Spec.SecurityContext
	sc := c.SecurityContext

	// Resources.
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := c.Resources.Requests[r]
		lim, hasLim := c.Resources.Limits[r]
		if !hasReq {
			p.fail(id, "resources.requests.%s is not set", r)
		}
		if !hasLim {
			p.fail(id, "resources.limits.%s is not set", r)
		}
		if hasReq && hasLim && req.Cmp(lim) > 0 {
			p.fail(id, "resources.requests.%s %s exceeds the limit %s", r, req.String(), lim.String())
		}
	}

	// Probes.
	if !init {
		if c.LivenessProbe == nil {
			p.fail(id, "has no livenessProbe")
		}
		if c.ReadinessProbe == nil {
			p.fail(id, "has no readinessProbe")
		}
	}

	// Security.
	nonRoot := (pod != nil && pod.RunAsNonRoot != nil && *pod.RunAsNonRoot)
	if sc != nil && sc.RunAsNonRoot != nil {
		nonRoot = *sc.RunAsNonRoot
	}
	if !nonRoot {
		p.fail(id, "runAsNonRoot must be true (pod or container securityContext)")
	}
	var uid *int64
	if pod != nil && pod.RunAsUser != nil {
		uid = pod.RunAsUser
	}
	if sc != nil && sc.RunAsUser != nil {
		uid = sc.RunAsUser
	}
	if uid == nil || *uid == 0 {
		p.fail(id, "runAsUser must be set to a non-zero uid")
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		p.fail(id, "securityContext.readOnlyRootFilesystem must be true")
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		p.fail(id, "securityContext.allowPrivilegeEscalation must be false")
	}
	if sc != nil && sc.Privileged != nil && *sc.Privileged {
		p.fail(id, "must not be privileged")
	}
	dropsAll := false
	if sc != nil && sc.Capabilities != nil {
		for _, d := range sc.Capabilities.Drop {
			dropsAll = dropsAll || d == "ALL"
		}
		if len(sc.Capabilities.Add) > 0 {
			p.fail(id, "securityContext.capabilities.add %v: no capability is needed", sc.Capabilities.Add)
		}
	}
	if !dropsAll {
		p.fail(id, "securityContext.capabilities.drop must contain ALL")
	}
	seccomp := pod != nil && pod.SeccompProfile != nil && pod.SeccompProfile.Type != corev1.SeccompProfileTypeUnconfined
	if sc != nil && sc.SeccompProfile != nil {
		seccomp = sc.SeccompProfile.Type != corev1.SeccompProfileTypeUnconfined
	}
	if !seccomp {
		p.fail(id, "seccompProfile must be RuntimeDefault or Localhost (pod or container)")
	}
	for _, m := range c.VolumeMounts {
		if hostPaths[m.Name] && !m.ReadOnly {
			p.fail(id, "hostPath volume %s must be mounted readOnly", m.Name)
		}
	}

	// Images.
	repo := imageRepo(c.Image)
	tag := strings.TrimPrefix(strings.TrimPrefix(c.Image, repo), ":")
	if !strings.Contains(c.Image, "@sha256:") && (tag == "" || tag == "latest") {
		p.fail(id, "image %q must be pinned to a tag other than latest (or a digest)", c.Image)
	}
	service := p.facts.Service(c.Image)
	if service == "" {
		if prefix := commonPrefix(p.facts.Images); prefix != "" && strings.HasPrefix(repo, prefix) {
			p.fail(id, "image %q is not one that make images builds (%s)", c.Image, strings.Join(sortedValues(p.facts.Images), ", "))
		}
		return
	}
	if want := p.facts.Images[repo]; c.Image != want {
		p.fail(id, "image %q: make images builds %q", c.Image, want)
	}
	p.serviceContainer(w, c, service, init)
}

// serviceContainer checks a container that runs a cefiot service: config
// keys against the service's flags, listen addresses, ports and probes.
func (p *policy) serviceContainer(w Workload, c *corev1.Container, service string, init bool) {
	id := containerID(w, c)
	flags, ok := p.facts.Flags[service]
	if !ok {
		p.fail(id, "no flags known for service %s", service)
		return
	}
	keys := flags.EnvKeys()
	if len(c.Command) > 0 {
		p.fail(id, "command %v overrides the image's entrypoint", c.Command)
	}
	for _, a := range c.Args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if _, ok := flags[name]; !ok {
			p.fail(id, "argument %q: %s has no flag -%s", a, service, name)
		}
	}
	env, errs := p.set.ContainerEnv(w.Namespace, c)
	for _, err := range errs {
		p.fail(id, "%v", err)
	}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil {
			continue
		}
		cm := p.set.ConfigMaps[w.Namespace+"/"+from.ConfigMapRef.Name]
		if cm == nil {
			continue
		}
		for k := range cm.Data {
			if _, ok := keys[from.Prefix+k]; !ok {
				p.fail(id, "ConfigMap %s key %s is not a config key of %s (its keys: %s)", cm.Name, from.Prefix+k, service, strings.Join(sortedKeys(keys), ", "))
			}
		}
	}
	for _, e := range c.Env {
		if strings.HasPrefix(e.Name, EnvPrefix) {
			if _, ok := keys[e.Name]; !ok {
				p.fail(id, "env %s is not a config key of %s (its keys: %s)", e.Name, service, strings.Join(sortedKeys(keys), ", "))
			}
		}
	}
	value := func(flag string) string {
		if v, ok := env[EnvName(flag)]; ok {
			return v.Value
		}
		return flags[flag]
	}
	if init {
		return
	}
	ports := map[string]int32{}
	for _, cp := range c.Ports {
		ports[cp.Name] = cp.ContainerPort
	}
	for _, l := range []struct{ flag, port string }{{"grpc-addr", "grpc"}, {"http-addr", "http"}} {
		addr := value(l.flag)
		host, portStr, err := net.SplitHostPort(addr)
		if err != nil {
			p.fail(id, "%s %q: %v", l.flag, addr, err)
			continue
		}
		if host != "" && host != "0.0.0.0" && host != "::" {
			p.fail(id, "%s %q listens on %s only: in a pod it must listen on 0.0.0.0 (set %s)", l.flag, addr, host, EnvName(l.flag))
		}
		port, _ := strconv.Atoi(portStr)
		cp, ok := ports[l.port]
		if !ok {
			p.fail(id, "declares no container port named %s (the service listens on %d, flag %s)", l.port, port, l.flag)
		} else if int(cp) != port {
			p.fail(id, "container port %s is %d but the service listens on %d (flag %s = %q)", l.port, cp, port, l.flag, addr)
		}
		if l.port != "grpc" {
			continue
		}
		for name, pr := range map[string]*corev1.Probe{"livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe, "startupProbe": c.StartupProbe} {
			if pr == nil {
				continue
			}
			if pr.GRPC == nil {
				p.fail(id, "%s must be a gRPC health probe", name)
			} else if int(pr.GRPC.Port) != port {
				p.fail(id, "%s probes gRPC port %d but the service listens on %d (flag %s = %q)", name, pr.GRPC.Port, port, l.flag, addr)
			}
		}
	}
	// In-cluster addresses in the config name objects that exist.
	for flag := range flags {
		if !strings.HasSuffix(flag, "bootstrap") && !strings.HasSuffix(flag, "endpoints") {
			continue
		}
		for _, ep := range strings.Split(value(flag), ",") {
			if err := p.checkEndpoint(w.Namespace, strings.TrimSpace(ep)); err != nil {
				p.fail(id, "%s %q: %v", flag, ep, err)
			}
		}
	}
}

var ordinalRE = regexp.MustCompile(`^(.+)-([0-9]+)$`)

// checkEndpoint checks host:port against the objects of the set when the
// host is a cluster-internal name: a Service ("svc", "svc.ns.svc") or a
// StatefulSet pod behind its headless Service ("sts-N.svc[.ns.svc]").
// Names outside the cluster cannot be checked here and pass.
func (p *policy) checkEndpoint(ns, ep string) error {
	host, portStr, err := net.SplitHostPort(ep)
	if err != nil {
		return err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("port %q is not a number", portStr)
	}
	parts := strings.Split(host, ".")
	switch {
	case len(parts) == 1 || (len(parts) >= 3 && parts[2] == "svc"):
		// A Service name.
		if len(parts) >= 3 {
			ns = parts[1]
		}
		if host == "localhost" || net.ParseIP(host) != nil {
			return fmt.Errorf("a loopback or fixed IP address does not reach another pod")
		}
		return p.checkServicePort(ns, parts[0], port)
	case len(parts) == 2 || (len(parts) >= 4 && parts[3] == "svc"):
		if len(parts) >= 4 {
			ns = parts[2]
		}
		m := ordinalRE.FindStringSubmatch(parts[0])
		if m == nil {
			return fmt.Errorf("%s is not <statefulset>-<ordinal>.<headless service>", host)
		}
		sts, ok := p.set.Find("StatefulSet", ns, m[1])
		if !ok {
			return fmt.Errorf("no StatefulSet %s in namespace %s", m[1], ns)
		}
		if sts.ServiceName != parts[1] {
			return fmt.Errorf("StatefulSet %s's pods are named through Service %s, not %s", m[1], sts.ServiceName, parts[1])
		}
		if n, _ := strconv.Atoi(m[2]); int32(n) >= sts.Replicas {
			return fmt.Errorf("StatefulSet %s has %d replicas: there is no %s", m[1], sts.Replicas, parts[0])
		}
		return p.checkServicePort(ns, parts[1], port)
	}
	return nil
}

func (p *policy) checkServicePort(ns, name string, port int) error {
	for _, svc := range p.set.Services {
		if svc.Namespace != ns || svc.Name != name {
			continue
		}
		for _, sp := range svc.Spec.Ports {
			if int(sp.Port) == port {
				return nil
			}
		}
		return fmt.Errorf("Service %s/%s has no port %d", ns, name, port)
	}
	return fmt.Errorf("no Service %s in namespace %s", name, ns)
}

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
	for _, wl := range spec.Workloads {
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

// kafka: each Kafka StatefulSet's KRaft quorum and replication settings fit
// its replicas, and every cluster has its own valid cluster id.
func (p *policy) kafka() {
	ids := map[string]string{}
	for _, w := range p.set.Workloads {
		if w.GVK.Kind != "StatefulSet" || w.Name != "kafka" {
			continue
		}
		c := &w.Template.Spec.Containers[0]
		id := containerID(w, c)
		env, errs := p.set.ContainerEnv(w.Namespace, c)
		for _, err := range errs {
			p.fail(id, "%v", err)
		}
		num := func(key string) int {
			n, err := strconv.Atoi(env[key].Value)
			if err != nil {
				p.fail(id, "env %s %q: want an integer", key, env[key].Value)
			}
			return n
		}
		brokers, rf, isr := num("BROKERS"), num("REPLICATION_FACTOR"), num("MIN_INSYNC_REPLICAS")
		num("RETENTION_HOURS")
		num("RETENTION_BYTES")
		if int32(brokers) != w.Replicas {
			p.fail(id, "BROKERS=%d but the StatefulSet has %d replicas: the KRaft quorum must list every replica", brokers, w.Replicas)
		}
		if rf < 1 || int32(rf) > w.Replicas {
			p.fail(id, "REPLICATION_FACTOR=%d must be 1..%d (replicas)", rf, w.Replicas)
		}
		if isr < 1 || isr > rf {
			p.fail(id, "MIN_INSYNC_REPLICAS=%d must be 1..%d (replication factor)", isr, rf)
		}
		if w.Replicas >= 3 && (rf < 3 || isr < 2 || isr >= rf) {
			p.fail(id, "with %d nodes want replication factor >= 3 and min.insync.replicas >= 2 and below it (so one node may be away), got %d and %d", w.Replicas, rf, isr)
		}
		cid := env["CLUSTER_ID"].Value
		if b, err := base64.RawURLEncoding.DecodeString(cid); err != nil || len(b) != 16 {
			p.fail(id, "CLUSTER_ID %q is not a Kafka cluster id (16 bytes, base64url without padding)", cid)
		}
		if other, dup := ids[cid]; dup {
			p.fail(id, "CLUSTER_ID %s is also the id of the cluster in %s", cid, other)
		}
		ids[cid] = w.Namespace
	}
}

var initialMemberRE = regexp.MustCompile(`^([^=]+)=http://([^:/]+):2380$`)

// etcd: the initial cluster lists exactly the StatefulSet's members.
func (p *policy) etcd() {
	for _, w := range p.set.Workloads {
		if w.GVK.Kind != "StatefulSet" || w.Name != "etcd" {
			continue
		}
		c := &w.Template.Spec.Containers[0]
		id := containerID(w, c)
		env, _ := p.set.ContainerEnv(w.Namespace, c)
		var got []string
		for _, m := range strings.Split(env["ETCD_INITIAL_CLUSTER"].Value, ",") {
			mm := initialMemberRE.FindStringSubmatch(m)
			if mm == nil {
				p.fail(id, "ETCD_INITIAL_CLUSTER member %q: want name=http://host:2380", m)
				continue
			}
			got = append(got, mm[1])
			if !strings.HasPrefix(mm[2], mm[1]+"."+w.ServiceName+".") {
				p.fail(id, "ETCD_INITIAL_CLUSTER member %s has peer host %s, want %s.%s.<namespace>.svc", mm[1], mm[2], mm[1], w.ServiceName)
			}
		}
		var want []string
		for i := 0; i < int(w.Replicas); i++ {
			want = append(want, fmt.Sprintf("%s-%d", w.Name, i))
		}
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			p.fail(id, "ETCD_INITIAL_CLUSTER names members %v but the StatefulSet's pods are %v", got, want)
		}
	}
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

// commonPrefix returns the registry path all cefiot images share
// ("ghcr.io/cefiot/"), so a misspelt cefiot image is caught.
func commonPrefix(images map[string]string) string {
	prefix := ""
	for repo := range images {
		dir := repo[:strings.LastIndex(repo, "/")+1]
		if prefix == "" {
			prefix = dir
		} else if prefix != dir {
			return ""
		}
	}
	return prefix
}
