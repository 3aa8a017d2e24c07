package check

import (
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/cefiot/cefiot/libs/placement"
)

// swapComponent renders overlay (a copy of the tree) with one of its
// components replaced by another, as a user who picks CloudNativePG does.
func swapComponent(t *testing.T, overlay, from, to string, extra ...string) *Set {
	t.Helper()
	fsys := copyTree(t)
	path := filepath.Join("/k8s", overlay, "kustomization.yaml")
	b, err := fsys.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	old := "  - ../../components/" + from + "\n"
	if !strings.Contains(s, old) {
		t.Fatalf("%s does not use component %s", overlay, from)
	}
	repl := "  - ../../components/" + to + "\n"
	for _, e := range extra {
		repl += "  - ../../components/" + e + "\n"
	}
	s = strings.Replace(s, old, repl, 1)
	if err := fsys.WriteFile(path, []byte(s)); err != nil {
		t.Fatal(err)
	}
	objs, err := Render(fsys, filepath.Join("/k8s", overlay))
	if err != nil {
		t.Fatal(err)
	}
	return NewSet(objs)
}

// TestCloudSinkRunsAsReplicas: the cloud overlay's sink is a Deployment of
// at least two replicas with the shared PostgreSQL index and S3, its
// secrets from Secrets, and the cloud spec declares no sink workload; the
// dev overlay keeps one placed sink with bbolt.
func TestCloudSinkRunsAsReplicas(t *testing.T) {
	f := loadFacts(t)
	set := render(t, "overlays/cloud")
	if _, ok := set.Find("StatefulSet", "cefiot-cloud", "sink"); ok {
		t.Errorf("the cloud overlay still has a sink StatefulSet")
	}
	w, ok := set.Find("Deployment", "cefiot-cloud", "sink")
	if !ok {
		t.Fatal("no sink Deployment in cefiot-cloud")
	}
	if w.Replicas < 2 {
		t.Errorf("sink Deployment has %d replicas, want at least 2", w.Replicas)
	}
	c := &w.Template.Spec.Containers[0]
	env, errs := set.ContainerEnv("cefiot-cloud", c)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for k, want := range map[string]string{"CEFIOT_INDEX": "postgres", "CEFIOT_STORE_BACKEND": "s3", "CEFIOT_S3_SECURE": "true"} {
		if env[k].Value != want {
			t.Errorf("%s = %q, want %q", k, env[k].Value, want)
		}
	}
	secrets := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			secrets[e.Name] = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		}
	}
	if secrets["CEFIOT_INDEX_DSN"] != "sink-index/dsn" || secrets["CEFIOT_S3_SECRET_KEY"] != "sink-s3/secret-key" {
		t.Errorf("secrets from %v, want CEFIOT_INDEX_DSN from sink-index/dsn and CEFIOT_S3_SECRET_KEY from sink-s3/secret-key", secrets)
	}
	for _, v := range w.Template.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			t.Errorf("sink volume %s is a claim", v.Name)
		}
	}
	sched, _ := set.Find("Deployment", "cefiot-cloud", "scheduler")
	sc := &sched.Template.Spec.Containers[0]
	senv, _ := set.ContainerEnv("cefiot-cloud", sc)
	spec, err := (&policy{set: set, facts: f}).mountedConfigMapFile("cefiot-cloud", sched, sc, senv[EnvName("spec")].Value)
	if err != nil {
		t.Fatalf("the cloud scheduler's spec: %v", err)
	}
	ps, err := placement.ParseSpec([]byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	for _, wl := range ps.Workloads {
		if wl.Kind == "sink" {
			t.Errorf("the cloud spec declares sink workload %s", wl.Name)
		}
	}
	dev := render(t, "overlays/dev")
	if ds, ok := dev.Find("StatefulSet", "cefiot-dev-cloud", "sink"); !ok || ds.Replicas != 1 {
		t.Errorf("the dev cloud has no single sink StatefulSet (%v)", ok)
	}
}

// TestCloudNativePGComponent: the cloud overlay with CloudNativePG in place
// of the StatefulSet renders strictly (the Cluster by its local type) and
// meets every policy, with cert-manager too (the Cluster's certificate
// counts as mounted).
func TestCloudNativePGComponent(t *testing.T) {
	f := loadFacts(t)
	for name, extra := range map[string][]string{"alone": nil, "with cert-manager": {"cert-manager-cloud"}} {
		t.Run(name, func(t *testing.T) {
			set := swapComponent(t, "overlays/cloud", "postgres", "cloudnative-pg", extra...)
			if len(set.Clusters) != 1 || set.Clusters[0].Spec.Instances < 2 {
				t.Fatalf("want one Cluster of at least 2 instances, got %v", set.Clusters)
			}
			if _, ok := set.Find("StatefulSet", "cefiot-cloud", "postgres"); ok {
				t.Errorf("the PostgreSQL StatefulSet is still there")
			}
			for _, err := range Policy(set, f) {
				t.Error(err)
			}
		})
	}
}

func TestCloudNativePGDecodesStrictly(t *testing.T) {
	good := "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: x}\nspec: {instances: 2, storage: {size: 1Gi}}\n"
	if _, err := DecodeStrict([]byte(good)); err != nil {
		t.Fatalf("a valid Cluster: %v", err)
	}
	for name, y := range map[string]string{
		"unknown field":  "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: x}\nspec: {instancez: 2}\n",
		"unknown nested": "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: x}\nspec: {instances: 2, postgresql: {pg_hbaa: []}}\n",
		"wrong type":     "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: x}\nspec: {instances: two}\n",
	} {
		if _, err := DecodeStrict([]byte(y)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

func TestCheckHBA(t *testing.T) {
	for _, tc := range []struct {
		lines       []string
		rejectPlain bool
		ok          bool
	}{
		{[]string{"hostssl all all all scram-sha-256"}, false, true},
		{[]string{"# c", "hostssl cefiot sink 10.0.0.0 255.0.0.0 scram-sha-256"}, false, true},
		{[]string{"hostssl all all all scram-sha-256 clientcert=verify-ca"}, false, true},
		{[]string{"host all all all scram-sha-256"}, false, false},
		{[]string{"hostssl all all all md5"}, false, false},
		{[]string{"hostssl all all all trust"}, false, false},
		{[]string{"local all all peer"}, false, false},
		{nil, false, false},
		{[]string{"hostssl all all all scram-sha-256", "hostnossl all all all reject"}, false, false},
		{[]string{"hostssl all all all scram-sha-256", "hostnossl all all all reject"}, true, true},
		{[]string{"hostssl all all all scram-sha-256"}, true, false},
		{[]string{"hostssl all all all scram-sha-256", "hostnossl cefiot all all reject"}, true, false},
	} {
		errs := checkHBA(tc.lines, tc.rejectPlain)
		if (len(errs) == 0) != tc.ok {
			t.Errorf("%q (rejectPlain %v): errors %v, want ok=%v", tc.lines, tc.rejectPlain, errs, tc.ok)
		}
	}
}

// TestIndexPolicyCatchesViolations breaks the sink replicas and their
// PostgreSQL one thing at a time and expects the policy to name it.
func TestIndexPolicyCatchesViolations(t *testing.T) {
	f := loadFacts(t)
	workload := func(s *Set, kind, name string) *Workload {
		for i := range s.Workloads {
			if w := &s.Workloads[i]; w.GVK.Kind == kind && w.Name == name {
				return w
			}
		}
		t.Fatalf("no %s %s", kind, name)
		return nil
	}
	sink := func(s *Set) *corev1.Container { return &workload(s, "Deployment", "sink").Template.Spec.Containers[0] }
	pg := func(s *Set) *corev1.Container {
		return &workload(s, "StatefulSet", "postgres").Template.Spec.Containers[0]
	}
	envVar := func(c *corev1.Container, name string) *corev1.EnvVar {
		for i := range c.Env {
			if c.Env[i].Name == name {
				return &c.Env[i]
			}
		}
		t.Fatalf("container %s has no env %s", c.Name, name)
		return nil
	}
	cmData := func(s *Set, prefix string) map[string]string {
		for _, cm := range s.ConfigMaps {
			if strings.HasPrefix(cm.Name, prefix+"-") && len(cm.Name) == len(prefix)+11 {
				return cm.Data
			}
		}
		t.Fatalf("no ConfigMap %s", prefix)
		return nil
	}
	setArg := func(c *corev1.Container, name, value string) {
		for i, a := range c.Args {
			if strings.HasPrefix(a, name+"=") {
				c.Args[i] = name + "=" + value
				return
			}
		}
		t.Fatalf("no argument -c %s", name)
	}
	cases := []struct {
		name      string
		component string // "cloudnative-pg": the overlay with CloudNativePG in place of the StatefulSet
		breakIt   func(s *Set)
		want      string
	}{
		{"sink as a StatefulSet", "", func(s *Set) { workload(s, "Deployment", "sink").GVK.Kind = "StatefulSet" }, "it must be a Deployment, not a StatefulSet"},
		{"one sink replica", "", func(s *Set) { workload(s, "Deployment", "sink").Replicas = 1 }, "want at least 2"},
		{"sink on a volume claim", "", func(s *Set) {
			w := workload(s, "Deployment", "sink")
			w.Template.Spec.Volumes = append(w.Template.Spec.Volumes, corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "sink"}}})
		}, "volume data is a volume claim"},
		{"sink replicas on one node", "", func(s *Set) { workload(s, "Deployment", "sink").Template.Spec.TopologySpreadConstraints = nil }, "must be spread over nodes"},
		{"frames on the pod's disk", "", func(s *Set) { cmData(s, "sink-config")["CEFIOT_STORE_BACKEND"] = "filesystem" }, `store-backend "filesystem"`},
		{"bucket endpoint left unset", "", func(s *Set) { cmData(s, "sink-config")["CEFIOT_S3_ENDPOINT"] = "s3.invalid:443" }, "the overlay must set the bucket's endpoint"},
		{"connection string written in the manifest", "", func(s *Set) {
			e := envVar(sink(s), "CEFIOT_INDEX_DSN")
			e.ValueFrom, e.Value = nil, "host=postgres user=sink password=x sslmode=require"
		}, "env CEFIOT_INDEX_DSN must come from a Secret"},
		{"connection string without verify-full", "", func(s *Set) {
			e := envVar(sink(s), "CEFIOT_INDEX_DSN")
			e.ValueFrom, e.Value = nil, "host=postgres user=sink password=x sslmode=require"
		}, "does not ask for sslmode=verify-full"},
		{"connection string in a ConfigMap", "", func(s *Set) {
			cmData(s, "sink-config")["CEFIOT_INDEX_DSN"] = "host=postgres sslmode=verify-full"
		}, "holds CEFIOT_INDEX_DSN, a secret"},
		{"S3 secret key in a ConfigMap", "", func(s *Set) {
			e := envVar(sink(s), "CEFIOT_S3_SECRET_KEY")
			e.ValueFrom = &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sink-config"}, Key: "CEFIOT_KAFKA_WAIT"}}
		}, "env CEFIOT_S3_SECRET_KEY must come from a Secret"},
		{"connection string as a file", "", func(s *Set) {
			w := workload(s, "Deployment", "sink")
			for i := range w.Template.Spec.Volumes {
				if v := &w.Template.Spec.Volumes[i]; v.Secret != nil && v.Secret.SecretName == "sink-index" {
					v.Secret.Items = nil
				}
			}
		}, "mounts all of Secret sink-index"},
		{"no CA for PostgreSQL", "", func(s *Set) {
			c := sink(s)
			kept := c.VolumeMounts[:0]
			for _, m := range c.VolumeMounts {
				if m.Name != "index-ca" {
					kept = append(kept, m)
				}
			}
			c.VolumeMounts = kept
		}, "mounts no CA from Secret sink-index"},
		{"sink workload in the spec", "", func(s *Set) {
			cmData(s, "pipeline-spec")["pipeline.yaml"] = "site: cloud\nworkloads: [{name: sink, kind: sink}]\n"
		}, "the spec must declare no sink workload"},
		{"PostgreSQL without TLS", "", func(s *Set) { setArg(pg(s), "ssl", "off") }, `ssl = "off", want "on"`},
		{"PostgreSQL with md5 passwords", "", func(s *Set) { setArg(pg(s), "password_encryption", "md5") }, "password_encryption"},
		{"PostgreSQL's key outside its Secret", "", func(s *Set) { setArg(pg(s), "ssl_key_file", "/var/lib/postgresql/data/server.key") }, "ssl_key_file \"/var/lib/postgresql/data/server.key\" is not in the mounted Secret cefiot-tls-postgres"},
		{"PostgreSQL's default pg_hba.conf", "", func(s *Set) {
			c := pg(s)
			for i, a := range c.Args {
				if strings.HasPrefix(a, "hba_file=") {
					c.Args = append(c.Args[:i-1:i-1], c.Args[i+1:]...) // and its -c
					return
				}
			}
		}, "no hba_file"},
		{"pg_hba.conf lets plain connections in", "", func(s *Set) {
			cmData(s, "postgres-config")["pg_hba.conf"] += "host all all all scram-sha-256\n"
		}, `"host all all all scram-sha-256": only hostssl rules with scram-sha-256`},
		{"pg_hba.conf trusts", "", func(s *Set) {
			cmData(s, "postgres-config")["pg_hba.conf"] = "hostssl all all all trust\n"
		}, "only hostssl rules with scram-sha-256"},
		{"PostgreSQL's data on the pod", "", func(s *Set) {
			for i := range pg(s).Env {
				if pg(s).Env[i].Name == "PGDATA" {
					pg(s).Env[i].Value = "/srv/pgdata"
				}
			}
		}, "PGDATA /srv/pgdata is not on a persistent volume claim"},
		{"unpinned postgres image", "", func(s *Set) { pg(s).Image = "postgres" }, "must be pinned"},
		{"PostgreSQL as root", "", func(s *Set) {
			var root int64
			workload(s, "StatefulSet", "postgres").Template.Spec.SecurityContext.RunAsUser = &root
		}, "postgres container postgres: runAsUser must be set to a non-zero uid"},
		{"PostgreSQL shut out", "", func(s *Set) { dropNetworkPolicy(s, "postgres") }, "port postgres (5432) is not admitted"},
		{"CloudNativePG image unpinned", "cloudnative-pg", func(s *Set) { s.Clusters[0].Spec.ImageName = "ghcr.io/cloudnative-pg/postgresql" }, "spec.imageName"},
		{"one CloudNativePG instance", "cloudnative-pg", func(s *Set) { s.Clusters[0].Spec.Instances = 1 }, "spec.instances 1"},
		{"CloudNativePG lets plain connections in", "cloudnative-pg", func(s *Set) {
			s.Clusters[0].Spec.PostgreSQL.PgHBA = []string{"hostssl all all all scram-sha-256"}
		}, "the operator's trailing"},
		{"CloudNativePG with its own certificate", "cloudnative-pg", func(s *Set) { s.Clusters[0].Spec.Certificates = nil }, "serverTLSSecret must be cefiot-tls-postgres"},
		{"CloudNativePG instances on one node", "cloudnative-pg", func(s *Set) {
			f := false
			s.Clusters[0].Spec.Affinity.EnablePodAntiAffinity = &f
		}, "on different nodes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s *Set
			if tc.component != "" {
				s = swapComponent(t, "overlays/cloud", "postgres", tc.component)
			} else {
				s = render(t, "overlays/cloud")
			}
			if errs := Policy(s, f); len(errs) != 0 {
				t.Fatalf("the overlay fails before it is broken: %v", errs)
			}
			tc.breakIt(s)
			errs := Policy(s, f)
			var msgs []string
			for _, err := range errs {
				msgs = append(msgs, err.Error())
				if strings.Contains(err.Error(), tc.want) {
					return
				}
			}
			t.Fatalf("want an error containing %q, got %d:\n%s", tc.want, len(errs), strings.Join(msgs, "\n"))
		})
	}
}
