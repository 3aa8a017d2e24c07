package check

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"sigs.k8s.io/yaml"

	"github.com/cefiot/cefiot/k8s/check/internal/kubeapi"
)

// cnpgVersion is the CloudNativePG release whose Cluster schema the
// cloudnative-pg component is checked against (its CRDs ship in the Go
// module). cert-manager's come from the module k8s/check already uses.
const cnpgVersion = "v1.27.1"

// admissionCase is one overlay, rendered as a user deploys it.
type admissionCase struct {
	name   string
	render func(t *testing.T) *Set
}

func admissionCases() []admissionCase {
	var cases []admissionCase
	for _, o := range Overlays {
		cases = append(cases, admissionCase{o, func(t *testing.T) *Set { return render(t, o) }})
	}
	return append(cases,
		admissionCase{"overlays/edge+cert-manager-edge", func(t *testing.T) *Set { return withComponent(t, "overlays/edge", "cert-manager-edge") }},
		admissionCase{"overlays/edge+camera-files", func(t *testing.T) *Set { return withComponent(t, "overlays/edge", "camera-files") }},
		admissionCase{"overlays/edge+events-out", func(t *testing.T) *Set { return withComponent(t, "overlays/edge", "events-out") }},
		admissionCase{"overlays/cloud+cert-manager-cloud", func(t *testing.T) *Set { return withComponent(t, "overlays/cloud", "cert-manager-cloud") }},
		admissionCase{"overlays/cloud+cloudnative-pg", func(t *testing.T) *Set {
			return swapComponent(t, "overlays/cloud", "postgres", "cloudnative-pg", "cert-manager-cloud")
		}},
	)
}

// TestOverlaysAdmittedByARealAPIServer server-side applies every overlay,
// and the optional components, to a real kube-apiserver with a dry run:
// defaulting, validation with unknown fields refused, Pod Security
// admission at each namespace's labels and the real CRD schemas of
// cert-manager and CloudNativePG. Each workload's pod template is also
// admitted as a Pod, where Pod Security enforces rather than warns.
func TestOverlaysAdmittedByARealAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kube-apiserver")
	}
	srv := kubeapi.Start(t, kubeapi.Binary(t, filepath.Dir(k8sDir(t))))
	c, err := kubeapi.NewClient(srv.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	installCRDs(ctx, t, c)
	for _, tc := range admissionCases() {
		t.Run("admitted/"+tc.name, func(t *testing.T) {
			set := tc.render(t)
			admitted := admitSet(ctx, t, c, set)
			t.Logf("%d objects and %d pod templates admitted, no warnings", len(set.Objects), len(set.Workloads))
			if admitted == 0 {
				t.Fatal("nothing was applied")
			}
		})
	}
	// The same server refuses an overlay with a deliberate mistake, each
	// in a namespace an overlay created above (Pod Security "restricted"
	// enforced in both sites').
	sets := map[string]*Set{
		"cefiot-cloud": withComponent(t, "overlays/cloud", "cert-manager-cloud"),
		"cefiot-edge":  render(t, "overlays/edge"),
	}
	for _, m := range []struct {
		name, kind, ns, objName string
		mutate                  func(obj map[string]any)
		asPod                   bool
		want                    []string
	}{
		{"misspelt field", "Deployment", "cefiot-cloud", "sink", func(obj map[string]any) {
			container(obj)["imagePullPolcy"] = "Always"
		}, false, []string{"imagePullPolcy", "field not declared in schema"}},
		{"privileged container", "Deployment", "cefiot-cloud", "sink", func(obj map[string]any) {
			sc := container(obj)["securityContext"].(map[string]any)
			sc["privileged"] = true
			sc["allowPrivilegeEscalation"] = true
		}, true, []string{"violates PodSecurity", "privileged"}},
		{"certificate outside cert-manager's schema", "Certificate", "cefiot-cloud", "cefiot-tls-worker-sink", func(obj map[string]any) {
			obj["spec"].(map[string]any)["privateKey"] = map[string]any{"algorithm": "DSA"}
		}, false, []string{"spec.privateKey.algorithm", "DSA"}},
		// The board's credential as a directory of the node, as it was
		// before pod certificates: the edge namespace refuses it now.
		{"bridge reading the board's key from the node", "Deployment", "cefiot-edge", "bridge", func(obj map[string]any) {
			spec := obj["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
			for _, v := range spec["volumes"].([]any) {
				if vol := v.(map[string]any); vol["name"] == "board" {
					delete(vol, "projected")
					vol["hostPath"] = map[string]any{"path": "/etc/cefiot/board", "type": "Directory"}
				}
			}
		}, true, []string{"violates PodSecurity", `volume "board" uses restricted volume type "hostPath"`}},
	} {
		t.Run("refused/"+m.name, func(t *testing.T) {
			set := sets[m.ns]
			o, ok := findObject(set, m.kind, m.ns, m.objName)
			if !ok {
				t.Fatalf("no %s %s/%s", m.kind, m.ns, m.objName)
			}
			var obj map[string]any
			if err := yaml.Unmarshal(o.YAML, &obj); err != nil {
				t.Fatal(err)
			}
			m.mutate(obj)
			doc, err := json.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			if m.asPod {
				var d appsv1.Deployment
				if err := json.Unmarshal(doc, &d); err != nil {
					t.Fatal(err)
				}
				w, ok := set.Find("Deployment", m.ns, m.objName)
				if !ok {
					t.Fatalf("no Deployment %s/%s", m.ns, m.objName)
				}
				w.Template = &d.Spec.Template
				if doc, err = podOf(w); err != nil {
					t.Fatal(err)
				}
			}
			_, err = c.Apply(ctx, doc, true)
			if err == nil {
				t.Fatal("admitted")
			}
			for _, want := range m.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("refusal does not mention %q: %v", want, err)
				}
			}
			t.Logf("refused: %v", err)
		})
	}
}

func findObject(set *Set, kind, ns, name string) (Object, bool) {
	for _, o := range set.Objects {
		if o.GVK.Kind == kind && o.Namespace == ns && o.Name == name {
			return o, true
		}
	}
	return Object{}, false
}

// container is the first container of a workload's pod template.
func container(obj map[string]any) map[string]any {
	spec := obj["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	return spec["containers"].([]any)[0].(map[string]any)
}

// admitSet creates the set's namespaces (and their default service
// accounts, which a cluster's controller would add) and service accounts
// (a pod names one that must exist), then dry-runs every other object and
// every pod template. It fails the test on any refusal or warning and
// returns the objects admitted.
func admitSet(ctx context.Context, t *testing.T, c *kubeapi.Client, set *Set) (admitted int) {
	t.Helper()
	check := func(what string, ans kubeapi.Answer, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s refused: %v", what, err)
			return
		}
		admitted++
		for _, w := range ans.Warnings {
			t.Errorf("%s: warning: %s", what, w)
		}
	}
	for _, o := range set.Objects {
		if o.GVK.Kind != "Namespace" {
			continue
		}
		ans, err := c.Apply(ctx, o.YAML, false)
		check(o.ID(), ans, err)
		sa := fmt.Sprintf("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: %s}\n", o.Name)
		if _, err := c.Apply(ctx, []byte(sa), false); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range set.Objects {
		if o.GVK.Kind == "ServiceAccount" {
			ans, err := c.Apply(ctx, o.YAML, false)
			check(o.ID(), ans, err)
		}
	}
	for _, o := range set.Objects {
		if o.GVK.Kind == "Namespace" || o.GVK.Kind == "ServiceAccount" {
			continue
		}
		ans, err := c.Apply(ctx, o.YAML, true)
		check(o.ID(), ans, err)
	}
	for _, w := range set.Workloads {
		pod, err := podOf(w)
		if err != nil {
			t.Fatal(err)
		}
		ans, err := c.Apply(ctx, pod, true)
		check("pod of "+w.ID(), ans, err)
	}
	return admitted
}

// podOf is the first Pod the workload's controller would create: its
// template, and for a StatefulSet the volumes of its claim templates.
func podOf(w Workload) ([]byte, error) {
	spec := w.Template.Spec.DeepCopy()
	name := w.Name + "-0"
	if sts, ok := w.Typed.(*appsv1.StatefulSet); ok {
		for _, claim := range sts.Spec.VolumeClaimTemplates {
			spec.Volumes = append(spec.Volumes, corev1.Volume{Name: claim.Name, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim.Name + "-" + name},
			}})
		}
	}
	pod := corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.Namespace, Labels: w.Template.Labels, Annotations: w.Template.Annotations},
		Spec:       *spec,
	}
	return json.Marshal(&pod)
}

// installCRDs creates the CustomResourceDefinitions of the kinds the
// components use, from the projects' own releases, and waits until the
// server serves them.
func installCRDs(ctx context.Context, t *testing.T, c *kubeapi.Client) {
	t.Helper()
	certManager := moduleDir(t, "github.com/cert-manager/cert-manager", "")
	cnpg := moduleDir(t, "github.com/cloudnative-pg/cloudnative-pg", cnpgVersion)
	files := []string{
		filepath.Join(certManager, "deploy/crds/cert-manager.io_certificates.yaml"),
		filepath.Join(certManager, "deploy/crds/cert-manager.io_issuers.yaml"),
		filepath.Join(cnpg, "config/crd/bases/postgresql.cnpg.io_clusters.yaml"),
	}
	crdGVK := schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}
	for _, f := range files {
		doc, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ans, err := c.Apply(ctx, doc, false)
		if err != nil {
			t.Fatal(err)
		}
		name := ans.Object.GetName()
		for {
			crd, err := c.Get(ctx, crdGVK, "", name)
			if err == nil && established(crd) {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("CRD %s not established: %v", name, err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

func established(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// moduleDir is where the Go module cache holds a module: the version
// k8s/check requires (version ""), or the one given, downloaded from the
// module proxy.
func moduleDir(t *testing.T, path, version string) string {
	t.Helper()
	var cmd *exec.Cmd
	if version == "" {
		cmd = exec.Command("go", "list", "-m", "-json", path)
	} else {
		cmd = exec.Command("go", "mod", "download", "-json", path+"@"+version)
		cmd.Dir = t.TempDir() // outside any module
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		t.Fatalf("%s: no module directory (%v %s): %s", strings.Join(cmd.Args, " "), err, m.Error, out)
	}
	return m.Dir
}
