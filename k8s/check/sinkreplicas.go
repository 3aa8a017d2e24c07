package check

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// The sink's index backend that makes it a replica of many
// (services/sink: -index postgres).
const sharedIndex = "postgres"

// minSinkReplicas: the shared index is there so that a sink survives the
// loss of one replica.
const minSinkReplicas = 2

// sinkReplicas checks each sink of namespace ns that runs with the shared
// PostgreSQL index: it is a stateless Deployment (no volume claim, frames
// in S3) of at least two replicas spread over nodes; the index's
// connection string (it holds a password) and the S3 secret key come from
// Secrets, never from the manifests; the CA that verifies PostgreSQL is
// mounted from the connection string's Secret without the connection
// string itself becoming a file.
func (p *policy) sinkReplicas(ns string) {
	for _, w := range p.set.Workloads {
		if w.Namespace != ns {
			continue
		}
		for i := range w.Template.Spec.Containers {
			c := &w.Template.Spec.Containers[i]
			if p.facts.Service(c.Image) != "sink" || p.sinkIndex(ns, c) != sharedIndex {
				continue
			}
			p.sinkReplica(w, c)
		}
	}
}

// sinkIndex is the index backend the sink container runs with.
func (p *policy) sinkIndex(ns string, c *corev1.Container) string {
	env, _ := p.set.ContainerEnv(ns, c)
	if v, ok := env[EnvName("index")]; ok {
		return v.Value
	}
	return p.facts.Flags["sink"]["index"]
}

func (p *policy) sinkReplica(w Workload, c *corev1.Container) {
	id := containerID(w, c)
	spec := &w.Template.Spec
	if w.GVK.Kind != "Deployment" {
		p.fail(id, "runs with -index %s, so it keeps no state: it must be a Deployment, not a %s", sharedIndex, w.GVK.Kind)
	}
	if w.Replicas < minSinkReplicas {
		p.fail(id, "runs with -index %s on %d replica(s): want at least %d, the shared index is there so that a replica may fail", sharedIndex, w.Replicas, minSinkReplicas)
	}
	for _, v := range spec.Volumes {
		if v.PersistentVolumeClaim != nil || v.Ephemeral != nil {
			p.fail(id, "volume %s is a volume claim: a sink replica keeps nothing on local disk", v.Name)
		}
	}
	if !spreadOverNodes(spec, w.Template.Labels) {
		p.fail(w.ID(), "sink replicas must be spread over nodes: a topologySpreadConstraint or a pod anti-affinity on kubernetes.io/hostname selecting its own pods")
	}
	env, _ := p.set.ContainerEnv(w.Namespace, c)
	if backend := env[EnvName("store-backend")].Value; backend != "s3" {
		p.fail(id, "store-backend %q: sink replicas share one bucket (s3); a filesystem store would be one pod's", backend)
	}
	if ep := env[EnvName("s3-endpoint")].Value; ep == "" || strings.Contains(ep, ".invalid") {
		p.fail(id, "s3-endpoint %q: the overlay must set the bucket's endpoint", ep)
	}
	for _, a := range c.Args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "index-dsn" || name == "s3-secret-key" {
			p.fail(id, "argument %q: a secret on the command line; set %s from a Secret", a, EnvName(name))
		}
	}
	dsnSecret := p.secretEnv(id, w.Namespace, c, "index-dsn")
	p.secretEnv(id, w.Namespace, c, "s3-secret-key")
	if dsn, ok := env[EnvName("index-dsn")]; ok && !strings.HasPrefix(dsn.Source, "env valueFrom") && !strings.Contains(dsn.Value, "sslmode=verify-full") {
		p.fail(id, "%s does not ask for sslmode=verify-full: the sink refuses it", EnvName("index-dsn"))
	}
	if dsnSecret != nil {
		p.indexCA(id, w, c, dsnSecret)
	}
}

// secretEnv checks that the flag's variable is set from a Secret key (and
// not also from a ConfigMap) and returns that reference.
func (p *policy) secretEnv(id, ns string, c *corev1.Container, flag string) *corev1.SecretKeySelector {
	name := EnvName(flag)
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil {
			continue
		}
		if cm := p.set.ConfigMaps[ns+"/"+from.ConfigMapRef.Name]; cm != nil {
			if _, ok := cm.Data[strings.TrimPrefix(name, from.Prefix)]; ok {
				p.fail(id, "ConfigMap %s holds %s, a secret: set it from a Secret (secretKeyRef)", cm.Name, name)
			}
		}
	}
	var ref *corev1.SecretKeySelector
	for _, e := range c.Env {
		if e.Name != name {
			continue
		}
		ref = nil
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			ref = e.ValueFrom.SecretKeyRef
		}
	}
	if ref == nil {
		p.fail(id, "env %s must come from a Secret (valueFrom.secretKeyRef): it holds a secret", name)
	}
	return ref
}

// indexCA: the pod mounts the connection string's Secret for its CA
// (sslrootcert in the connection string), projecting only that key so the
// connection string, which holds the password, is no file.
func (p *policy) indexCA(id string, w Workload, c *corev1.Container, dsn *corev1.SecretKeySelector) {
	mounted := map[string]bool{}
	for _, m := range c.VolumeMounts {
		mounted[m.Name] = true
	}
	for _, v := range w.Template.Spec.Volumes {
		if v.Secret == nil || v.Secret.SecretName != dsn.Name || !mounted[v.Name] {
			continue
		}
		if len(v.Secret.Items) == 0 {
			p.fail(id, "volume %s mounts all of Secret %s, the connection string too: project only the CA (items)", v.Name, dsn.Name)
			return
		}
		for _, it := range v.Secret.Items {
			if it.Key == dsn.Key {
				p.fail(id, "volume %s makes the connection string (key %s of Secret %s) a file", v.Name, dsn.Key, dsn.Name)
			}
		}
		return
	}
	p.fail(id, "mounts no CA from Secret %s: the connection string's sslrootcert must name a CA the pod has", dsn.Name)
}

// spreadOverNodes reports whether the pods of a template are spread over
// nodes: a topology spread constraint or a pod anti-affinity term, keyed
// by the node's hostname, that selects the pods themselves.
func spreadOverNodes(spec *corev1.PodSpec, podLabels map[string]string) bool {
	const hostname = "kubernetes.io/hostname"
	for _, tsc := range spec.TopologySpreadConstraints {
		if tsc.TopologyKey == hostname && tsc.LabelSelector != nil && selects(tsc.LabelSelector, podLabels) {
			return true
		}
	}
	if spec.Affinity == nil || spec.Affinity.PodAntiAffinity == nil {
		return false
	}
	anti := spec.Affinity.PodAntiAffinity
	terms := append([]corev1.PodAffinityTerm{}, anti.RequiredDuringSchedulingIgnoredDuringExecution...)
	for _, wt := range anti.PreferredDuringSchedulingIgnoredDuringExecution {
		terms = append(terms, wt.PodAffinityTerm)
	}
	for _, t := range terms {
		if t.TopologyKey == hostname && t.LabelSelector != nil && selects(t.LabelSelector, podLabels) {
			return true
		}
	}
	return false
}
