package check

import (
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// workload checks the pod template and each container.
func (p *policy) workload(w Workload) {
	spec := &w.Template.Spec
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		p.fail(w.ID(), "uses the host's network, PID or IPC namespace")
	}
	p.serviceAccountToken(w)
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

// boardSignerKey is the scheduler's config key that makes it answer board
// credential requests: the one reason a cefiot pod talks to the
// Kubernetes API.
const boardSignerKey = "CEFIOT_BOARD_SIGNER_CA"

// serviceAccountToken: only a pod that signs board credentials carries a
// token for the Kubernetes API, as a service account of its own.
func (p *policy) serviceAccountToken(w Workload) {
	spec := &w.Template.Spec
	if spec.AutomountServiceAccountToken != nil && !*spec.AutomountServiceAccountToken {
		return
	}
	signs := false
	for i := range spec.Containers {
		env, _ := p.set.ContainerEnv(w.Namespace, &spec.Containers[i])
		if v, ok := env[boardSignerKey]; ok && v.Value != "" {
			signs = true
		}
	}
	switch {
	case !signs:
		p.fail(w.ID(), "automountServiceAccountToken must be false: no cefiot pod talks to the Kubernetes API but the board signer (%s)", boardSignerKey)
	case spec.ServiceAccountName == "" || spec.ServiceAccountName == "default":
		p.fail(w.ID(), "the board signer carries a token: it must run as a service account of its own, not %q", spec.ServiceAccountName)
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

	p.envReferences(id, c)

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

// envVarRef is a $(NAME) reference in an env value, command or argument.
var envVarRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// envReferences: the kubelet expands $(NAME) in an env value only when NAME
// is defined earlier in the container's env (else the value keeps the
// literal text, silently), and in command and args when NAME is defined
// anywhere in it. A kustomize patch of one env entry moves it to the front
// of the list, ahead of what it refers to: found by a real kubelet, when
// etcd was told to join etcd-headless.$(POD_NAMESPACE).svc.
func (p *policy) envReferences(id string, c *corev1.Container) {
	defined := map[string]bool{}
	for _, e := range c.Env {
		for _, m := range envVarRef.FindAllStringSubmatch(e.Value, -1) {
			if !defined[m[1]] {
				p.fail(id, "env %s refers to $(%s), which is not defined before it in the container's env: the kubelet leaves it unexpanded", e.Name, m[1])
			}
		}
		defined[e.Name] = true
	}
	for _, arg := range append(append([]string{}, c.Command...), c.Args...) {
		for _, m := range envVarRef.FindAllStringSubmatch(arg, -1) {
			if !defined[m[1]] {
				p.fail(id, "command or args refer to $(%s), which the container's env does not define", m[1])
			}
		}
	}
}
