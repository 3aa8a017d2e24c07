package check

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Overlays are the directories users apply with kubectl apply -k.
var Overlays = []string{"overlays/edge", "overlays/cloud", "overlays/dev"}

var services = []string{"capture", "enrich", "bridge", "sink", "scheduler"}

func k8sDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

var (
	factsOnce sync.Once
	facts     Facts
	factsErr  error
)

// binDir is where the service binaries and cefiot-images are: the
// Makefile's bin/ (CEFIOT_BIN_DIR), or a fresh build for a plain go test.
func binDir(t testing.TB) string {
	if dir := os.Getenv("CEFIOT_BIN_DIR"); dir != "" {
		return dir
	}
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("cefiot-k8s-check-bin-%d", os.Getpid()))
	pkgs := []string{"./cmd/cefiot-images"}
	for _, s := range services {
		pkgs = append(pkgs, "./services/"+s)
	}
	cmd := exec.Command("go", append([]string{"build", "-o", dir + "/"}, pkgs...)...)
	cmd.Dir = filepath.Join(k8sDir(t), "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the binaries the checks ask: %v\n%s", err, out)
	}
	return dir
}

func loadFacts(t testing.TB) Facts {
	t.Helper()
	factsOnce.Do(func() {
		ctx := context.Background()
		dir := binDir(t)
		facts.Flags = map[string]Flags{}
		for _, s := range services {
			f, err := ServiceFlags(ctx, dir, s)
			if err != nil {
				factsErr = err
				return
			}
			facts.Flags[s] = f
		}
		facts.Images, factsErr = ImageRefs(ctx, dir)
	})
	if factsErr != nil {
		t.Fatal(factsErr)
	}
	return facts
}

func render(t testing.TB, overlay string) *Set {
	t.Helper()
	objs, err := Render(filesys.MakeFsOnDisk(), filepath.Join(k8sDir(t), overlay))
	if err != nil {
		t.Fatal(err)
	}
	return NewSet(objs)
}

func TestOverlaysRenderStrictlyAndMeetPolicy(t *testing.T) {
	f := loadFacts(t)
	for _, overlay := range Overlays {
		t.Run(overlay, func(t *testing.T) {
			set := render(t, overlay)
			if len(set.Objects) < 10 {
				t.Fatalf("rendered only %d objects", len(set.Objects))
			}
			for _, err := range Policy(set, f) {
				t.Error(err)
			}
		})
	}
}

func TestBaseRendersAlone(t *testing.T) {
	set := render(t, "base")
	for _, name := range []string{"etcd", "kafka"} {
		if _, ok := set.Find("StatefulSet", "", name); !ok {
			t.Errorf("base has no StatefulSet %s", name)
		}
	}
}

// TestOverlayShapes holds the overlays to what the deployment promises.
func TestOverlayShapes(t *testing.T) {
	type want struct {
		kind, name string
		replicas   int32
	}
	site := []want{{"StatefulSet", "etcd", 3}, {"StatefulSet", "kafka", 3}, {"Deployment", "scheduler", 3}}
	devSite := []want{{"StatefulSet", "etcd", 1}, {"StatefulSet", "kafka", 1}, {"Deployment", "scheduler", 1}}
	cases := []struct {
		overlay string
		ns      map[string][]want
		site    map[string]string
	}{
		{"overlays/edge", map[string][]want{"cefiot-edge": append(site,
			want{"DaemonSet", "capture", -1}, want{"Deployment", "enrich", 2}, want{"Deployment", "bridge", 2})},
			map[string]string{"cefiot-edge": "edge"}},
		{"overlays/cloud", map[string][]want{"cefiot-cloud": append(site, want{"Deployment", "sink", 2}, want{"StatefulSet", "postgres", 1})},
			map[string]string{"cefiot-cloud": "cloud"}},
		{"overlays/dev", map[string][]want{
			"cefiot-dev-edge": append(devSite,
				want{"DaemonSet", "capture", -1}, want{"Deployment", "enrich", 1}, want{"Deployment", "bridge", 1}),
			"cefiot-dev-cloud": append(devSite, want{"StatefulSet", "sink", 1}),
		}, map[string]string{"cefiot-dev-edge": "edge", "cefiot-dev-cloud": "cloud"}},
	}
	for _, tc := range cases {
		t.Run(tc.overlay, func(t *testing.T) {
			set := render(t, tc.overlay)
			var gotNS []string
			for ns, wants := range tc.ns {
				gotNS = append(gotNS, ns)
				if !set.Namespaces[ns] {
					t.Errorf("no Namespace object %s", ns)
				}
				for _, w := range wants {
					got, ok := set.Find(w.kind, ns, w.name)
					if !ok {
						t.Errorf("no %s %s/%s", w.kind, ns, w.name)
						continue
					}
					if got.Replicas != w.replicas {
						t.Errorf("%s: %d replicas, want %d", got.ID(), got.Replicas, w.replicas)
					}
					if w.name == "capture" && got.Template.Spec.NodeSelector["cefiot.io/camera"] != "true" {
						t.Errorf("%s: must run only on nodes labelled cefiot.io/camera=true, nodeSelector %v", got.ID(), got.Template.Spec.NodeSelector)
					}
				}
				cm := set.ConfigMaps[ns+"/"+configMapName(set, ns, "cefiot-site")]
				if cm == nil || cm.Data["CEFIOT_SITE"] != tc.site[ns] {
					t.Errorf("namespace %s: site ConfigMap %v, want CEFIOT_SITE=%s", ns, cm, tc.site[ns])
				}
			}
			if got := set.SiteNamespaces(); len(got) != len(tc.ns) {
				t.Errorf("workloads in namespaces %v, want %v", got, gotNS)
			}
		})
	}
}

// configMapName finds a generated ConfigMap by its name before the hash.
func configMapName(set *Set, ns, prefix string) string {
	for key, cm := range set.ConfigMaps {
		if strings.HasPrefix(key, ns+"/"+prefix+"-") && len(cm.Name) == len(prefix)+11 {
			return cm.Name
		}
	}
	return ""
}

// copyTree copies the k8s directory into an in-memory file system, so a
// test can break one file without touching the tree.
func copyTree(t *testing.T) filesys.FileSystem {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	root := k8sDir(t)
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if rel == "check" {
				return filepath.SkipDir
			}
			return mem.MkdirAll(filepath.Join("/k8s", rel))
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return mem.WriteFile(filepath.Join("/k8s", rel), b)
	})
	if err != nil {
		t.Fatal(err)
	}
	return mem
}

func TestStrictDecodeRejectsUnknownFields(t *testing.T) {
	mem := copyTree(t)
	kfile := "/k8s/overlays/edge/kustomization.yaml"
	b, err := mem.ReadFile(kfile)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, []byte(`
  - patch: |-
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: enrich}
      spec:
        replicaz: 3
`)...)
	if err := mem.WriteFile(kfile, b); err != nil {
		t.Fatal(err)
	}
	_, err = Render(mem, "/k8s/overlays/edge")
	if err == nil || !strings.Contains(err.Error(), `unknown field "spec.replicaz"`) || !strings.Contains(err.Error(), "Deployment cefiot-edge/enrich") {
		t.Fatalf("want a strict decoding error naming spec.replicaz and the Deployment, got %v", err)
	}
}

func TestStrictDecodeRejectsUnknownKindsAndDuplicates(t *testing.T) {
	for name, y := range map[string]string{
		"unknown kind":    "apiVersion: apps/v1\nkind: Deploymint\nmetadata: {name: x}\n",
		"duplicate field": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\ndata: {c: d}\n",
		"wrong type":      "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: three}\n",
		"unknown nested":  "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 80, targetPrt: 81}]}\n",
	} {
		if _, err := DecodeStrict([]byte(y)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
	if _, err := DecodeStrict([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\n")); err != nil {
		t.Errorf("a valid ConfigMap: %v", err)
	}
}

func TestParseUsage(t *testing.T) {
	f, err := ParseUsage("Usage of x:\n  -batch-size int\n    \trecords (default 200)\n  -grpc-addr string\n    \tlisten (default \"127.0.0.1:9102\")\n  -labels string\n    \tnode labels\n")
	if err != nil {
		t.Fatal(err)
	}
	if f["batch-size"] != "200" || f["grpc-addr"] != "127.0.0.1:9102" || f["labels"] != "" || len(f) != 3 {
		t.Fatalf("got %v", f)
	}
	if f.EnvKeys()["CEFIOT_GRPC_ADDR"] != "grpc-addr" {
		t.Fatalf("env keys %v", f.EnvKeys())
	}
}

// TestServiceFlagsFromBinaries: the facts come from the real binaries.
func TestServiceFlagsFromBinaries(t *testing.T) {
	f := loadFacts(t)
	for svc, addr := range map[string]string{"capture": "127.0.0.1:9101", "enrich": "127.0.0.1:9102", "bridge": "127.0.0.1:9103", "sink": "127.0.0.1:9104", "scheduler": "127.0.0.1:9100"} {
		if got := f.Flags[svc]["grpc-addr"]; got != addr {
			t.Errorf("%s -grpc-addr default %q, want %q", svc, got, addr)
		}
	}
	if _, ok := f.Flags["bridge"]["cloud-bootstrap"]; !ok {
		t.Errorf("bridge has no -cloud-bootstrap: %v", f.Flags["bridge"])
	}
	for _, svc := range services {
		if _, ok := f.Images["ghcr.io/cefiot/"+svc]; !ok {
			t.Errorf("cefiot-images -list has no image for %s: %v", svc, f.Images)
		}
	}
}
