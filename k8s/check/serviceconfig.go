package check

import (
	"path"

	"net"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/cefiot/cefiot/libs/access"
)

// boardCredential is where c finds its board's own credential: the files
// of a pod certificate volume of the board signer, mounted read-only.
func boardCredential(w Workload, c *corev1.Container) (cert, key string) {
	for _, v := range w.Template.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, src := range v.Projected.Sources {
			pc := src.PodCertificate
			if pc == nil || pc.SignerName != access.BoardSigner || pc.CertificateChainPath == "" || pc.KeyPath == "" {
				continue
			}
			for _, m := range c.VolumeMounts {
				if m.Name == v.Name && m.ReadOnly && m.SubPath == "" {
					return path.Join(m.MountPath, pc.CertificateChainPath), path.Join(m.MountPath, pc.KeyPath)
				}
			}
		}
	}
	return "", ""
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
		if l.port != "http" {
			continue
		}
		// The admin ports are mutual TLS; only /healthz answers a client
		// without a certificate, the kubelet.
		for name, pr := range map[string]*corev1.Probe{"livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe, "startupProbe": c.StartupProbe} {
			if pr == nil {
				continue
			}
			g := pr.HTTPGet
			if g == nil || g.Path != "/healthz" || g.Scheme != corev1.URISchemeHTTPS {
				p.fail(id, "%s must be an HTTPS GET of /healthz on the http port (the admin ports are mutual TLS)", name)
			} else if g.Port.String() != l.port && g.Port.IntValue() != port {
				p.fail(id, "%s probes port %s but the service's HTTPS listens on %d (flag %s = %q)", name, g.Port.String(), port, l.flag, addr)
			}
		}
	}
	_, cloudCA := flags["cloud-tls-ca"]
	p.tlsFiles(w, c, id, value, cloudCA)
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

// tlsFiles checks that the service runs with TLS, from files of a mounted
// Secret: no plaintext anywhere. The bridge's board credential
// (cloud-tls-cert, cloud-tls-key) is the board's own, so it comes from a
// pod certificate of the board signer instead, whose key the kubelet makes
// on the board.
func (p *policy) tlsFiles(w Workload, c *corev1.Container, id string, value func(string) string, cloudCA bool) {
	if value("insecure-plaintext") == "true" {
		p.fail(id, "insecure-plaintext is set: every cefiot port must be mutual TLS")
	}
	secretVolumes := map[string]bool{}
	for _, v := range w.Template.Spec.Volumes {
		if v.Secret != nil {
			secretVolumes[v.Name] = true
		}
	}
	files := []string{"tls-cert", "tls-key", "tls-ca"}
	if cloudCA {
		files = append(files, "cloud-tls-ca")
	}
	for _, flag := range files {
		file := value(flag)
		if file == "" {
			p.fail(id, "%s is not set (%s): the service would not start", flag, EnvName(flag))
			continue
		}
		if !inVolume(c, secretVolumes, file) {
			p.fail(id, "%s %q is not in a mounted Secret volume", flag, file)
		}
	}
	if cloudCA && (value("cloud-tls-cert") != "" || value("cloud-tls-key") != "") {
		cert, key := boardCredential(w, c)
		for flag, want := range map[string]string{"cloud-tls-cert": cert, "cloud-tls-key": key} {
			if file := value(flag); want == "" || file != want {
				p.fail(id, "%s %q is not the board's own credential: the certificate chain or key of a %s pod certificate mounted read-only", flag, file, access.BoardSigner)
			}
		}
		if !requiresNodeLabel(w.Template.Spec.Affinity, access.BoardEnrolledLabel) {
			p.fail(id, "the board signer issues a board credential only on enrolled nodes, but the pod may run on another: require node label %s", access.BoardEnrolledLabel)
		}
	}
}

// inVolume reports whether file lies under the mount of one of volumes.
func inVolume(c *corev1.Container, volumes map[string]bool, file string) bool {
	for _, m := range c.VolumeMounts {
		if volumes[m.Name] && strings.HasPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/") {
			return true
		}
	}
	return false
}

// requiresNodeLabel reports whether affinity requires label on the node.
func requiresNodeLabel(a *corev1.Affinity, label string) bool {
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return false
	}
	terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	for _, term := range terms {
		found := false
		for _, e := range term.MatchExpressions {
			found = found || e.Key == label
		}
		if !found {
			return false
		}
	}
	return len(terms) > 0
}
