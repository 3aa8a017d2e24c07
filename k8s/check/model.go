package check

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	certmanagerv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Facts are what the checks compare the manifests with, taken from the
// built binaries.
type Facts struct {
	// Flags of each service binary (capture, enrich, bridge, sink, scheduler).
	Flags map[string]Flags
	// Images `make images` builds: repository -> reference with tag.
	Images map[string]string
}

// Service returns the cefiot service an image runs ("" for other images).
func (f Facts) Service(image string) string {
	repo := imageRepo(image)
	if _, ok := f.Images[repo]; !ok {
		return ""
	}
	return repo[strings.LastIndex(repo, "/")+1:]
}

func imageRepo(image string) string {
	image, _, _ = strings.Cut(image, "@")
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[:i]
	}
	return image
}

// Workload is a Deployment, StatefulSet or DaemonSet.
type Workload struct {
	Object
	Replicas int32 // -1 for a DaemonSet
	Selector *metav1.LabelSelector
	Template *corev1.PodTemplateSpec
	// ServiceName of a StatefulSet.
	ServiceName string
}

// Set indexes the rendered objects of one overlay.
type Set struct {
	Objects    []Object
	Workloads  []Workload
	ConfigMaps map[string]*corev1.ConfigMap // namespace/name
	Services   []*corev1.Service
	PDBs       []*policyv1.PodDisruptionBudget
	Namespaces map[string]bool
	// NetworkPolicies of every namespace.
	NetworkPolicies []*networkingv1.NetworkPolicy
	// Certificates and Issuers (cert-manager) of every namespace.
	Certificates []*certmanagerv1.Certificate
	Issuers      []*certmanagerv1.Issuer
	// Clusters are CloudNativePG Clusters of every namespace.
	Clusters []*CNPGCluster
}

// NewSet indexes objs.
func NewSet(objs []Object) *Set {
	s := &Set{Objects: objs, ConfigMaps: map[string]*corev1.ConfigMap{}, Namespaces: map[string]bool{}}
	for _, o := range objs {
		switch t := o.Typed.(type) {
		case *appsv1.Deployment:
			s.Workloads = append(s.Workloads, Workload{Object: o, Replicas: replicas(t.Spec.Replicas), Selector: t.Spec.Selector, Template: &t.Spec.Template})
		case *appsv1.StatefulSet:
			s.Workloads = append(s.Workloads, Workload{Object: o, Replicas: replicas(t.Spec.Replicas), Selector: t.Spec.Selector, Template: &t.Spec.Template, ServiceName: t.Spec.ServiceName})
		case *appsv1.DaemonSet:
			s.Workloads = append(s.Workloads, Workload{Object: o, Replicas: -1, Selector: t.Spec.Selector, Template: &t.Spec.Template})
		case *corev1.ConfigMap:
			s.ConfigMaps[t.Namespace+"/"+t.Name] = t
		case *corev1.Service:
			s.Services = append(s.Services, t)
		case *policyv1.PodDisruptionBudget:
			s.PDBs = append(s.PDBs, t)
		case *corev1.Namespace:
			s.Namespaces[t.Name] = true
		case *networkingv1.NetworkPolicy:
			s.NetworkPolicies = append(s.NetworkPolicies, t)
		case *certmanagerv1.Certificate:
			s.Certificates = append(s.Certificates, t)
		case *certmanagerv1.Issuer:
			s.Issuers = append(s.Issuers, t)
		case *CNPGCluster:
			s.Clusters = append(s.Clusters, t)
		}
	}
	return s
}

// replicas applies the API default of 1.
func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

// Find returns the workload of that kind and name in namespace ns.
func (s *Set) Find(kind, ns, name string) (Workload, bool) {
	for _, w := range s.Workloads {
		if w.GVK.Kind == kind && w.Namespace == ns && w.Name == name {
			return w, true
		}
	}
	return Workload{}, false
}

// SiteNamespaces returns the namespaces that hold workloads, sorted.
func (s *Set) SiteNamespaces() []string {
	seen := map[string]bool{}
	for _, w := range s.Workloads {
		seen[w.Namespace] = true
	}
	out := make([]string, 0, len(seen))
	for ns := range seen {
		out = append(out, ns)
	}
	sort.Strings(out)
	return out
}

// selects reports whether selector (a Service's map) picks the pods of w.
// The StatefulSet controller labels each pod with its name, so a Service
// may select one pod (statefulset.kubernetes.io/pod-name: <sts>-<ordinal>).
func selectsMap(sel map[string]string, ns string, w Workload) bool {
	if len(sel) == 0 || ns != w.Namespace {
		return false
	}
	podLabels := labels.Set{}
	for k, v := range w.Template.Labels {
		podLabels[k] = v
	}
	if pod, ok := sel[appsv1.StatefulSetPodNameLabel]; ok && w.GVK.Kind == "StatefulSet" {
		if m := ordinalRE.FindStringSubmatch(pod); m != nil && m[1] == w.Name {
			if n, err := strconv.Atoi(m[2]); err == nil && int32(n) < w.Replicas {
				podLabels[appsv1.StatefulSetPodNameLabel] = pod
			}
		}
	}
	return labels.SelectorFromSet(sel).Matches(podLabels)
}

func selectsLabelSelector(sel *metav1.LabelSelector, ns string, w Workload) (bool, error) {
	if sel == nil || ns != w.Namespace {
		return false, nil
	}
	ls, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false, err
	}
	return !ls.Empty() && ls.Matches(labels.Set(w.Template.Labels)), nil
}

// EnvVar is a container's environment variable as the kubelet would set it.
type EnvVar struct {
	Value  string // with $(VAR) references expanded; field refs as <fieldPath>
	Source string // where it came from, for messages
}

var envRefRE = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// ContainerEnv resolves a container's environment: envFrom ConfigMaps first,
// then env in order, expanding $(VAR) references to earlier variables. It
// reports ConfigMaps and keys that do not exist and references to
// variables that are not defined before their use.
func (s *Set) ContainerEnv(ns string, c *corev1.Container) (map[string]EnvVar, []error) {
	env := map[string]EnvVar{}
	var errs []error
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil {
			if from.SecretRef != nil {
				continue
			}
			errs = append(errs, fmt.Errorf("envFrom without configMapRef"))
			continue
		}
		cm, ok := s.ConfigMaps[ns+"/"+from.ConfigMapRef.Name]
		if !ok {
			if from.ConfigMapRef.Optional == nil || !*from.ConfigMapRef.Optional {
				errs = append(errs, fmt.Errorf("envFrom ConfigMap %q does not exist in namespace %s", from.ConfigMapRef.Name, ns))
			}
			continue
		}
		for k, v := range cm.Data {
			env[from.Prefix+k] = EnvVar{Value: v, Source: "ConfigMap " + cm.Name}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			val := envRefRE.ReplaceAllStringFunc(e.Value, func(ref string) string {
				name := envRefRE.FindStringSubmatch(ref)[1]
				if v, ok := env[name]; ok {
					return v.Value
				}
				errs = append(errs, fmt.Errorf("env %s: $(%s) is not defined before it", e.Name, name))
				return ref
			})
			env[e.Name] = EnvVar{Value: val, Source: "env"}
		case e.ValueFrom.FieldRef != nil:
			env[e.Name] = EnvVar{Value: "<" + e.ValueFrom.FieldRef.FieldPath + ">", Source: "env fieldRef"}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			cm, ok := s.ConfigMaps[ns+"/"+ref.Name]
			v, has := "", false
			if ok {
				v, has = cm.Data[ref.Key]
			}
			if !has && (ref.Optional == nil || !*ref.Optional) {
				errs = append(errs, fmt.Errorf("env %s: ConfigMap %s has no key %q", e.Name, ref.Name, ref.Key))
			}
			env[e.Name] = EnvVar{Value: v, Source: "ConfigMap " + ref.Name}
		default:
			env[e.Name] = EnvVar{Value: "<" + e.Name + ">", Source: "env valueFrom"}
		}
	}
	return env, errs
}
