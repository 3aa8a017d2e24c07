package check

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestPolicyCatchesViolations breaks one thing at a time in the rendered
// edge and cloud overlays and expects the policy to name it.
func TestPolicyCatchesViolations(t *testing.T) {
	f := loadFacts(t)
	container := func(s *Set, kind, name string) *corev1.Container {
		for _, ns := range s.SiteNamespaces() {
			if w, ok := s.Find(kind, ns, name); ok {
				return &w.Template.Spec.Containers[0]
			}
		}
		t.Fatalf("no %s %s", kind, name)
		return nil
	}
	setEnv := func(c *corev1.Container, name, value string) {
		for i := range c.Env {
			if c.Env[i].Name == name {
				c.Env[i].Value = value
				return
			}
		}
		c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
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
	cases := []struct {
		name    string
		overlay string
		breakIt func(s *Set)
		want    string
	}{
		{"no default deny", "overlays/edge", func(s *Set) { dropNetworkPolicy(s, "default-deny") }, "namespace cefiot-edge: no default-deny NetworkPolicy"},
		{"kafka clients shut out", "overlays/cloud", func(s *Set) { dropNetworkPolicy(s, "kafka") }, "kafka container kafka: port broker (9092) is not admitted by any NetworkPolicy"},
		{"edge bridges shut out", "overlays/cloud", func(s *Set) { dropNetworkPolicy(s, "kafka-external") }, "port external (9094) is not admitted by any NetworkPolicy"},
		{"bridge on a board without its own credential", "overlays/edge", func(s *Set) {
			w, _ := s.Find("Deployment", "cefiot-edge", "bridge")
			w.Template.Spec.Affinity = nil
		}, "require node label node-restriction.kubernetes.io/cefiot-board-credential"},
		{"board credential in a writable place", "overlays/edge", func(s *Set) {
			cmData(s, "bridge-config")["CEFIOT_CLOUD_TLS_KEY"] = "/tmp/board.key"
		}, `cloud-tls-key "/tmp/board.key" is not the board's own credential`},
		{"board credential from another signer", "overlays/edge", func(s *Set) {
			w, _ := s.Find("Deployment", "cefiot-edge", "bridge")
			for _, v := range w.Template.Spec.Volumes {
				if v.Projected != nil {
					v.Projected.Sources[0].PodCertificate.SignerName = "example.com/any"
				}
			}
		}, `cloud-tls-cert "/etc/cefiot/board/tls.crt" is not the board's own credential`},
		{"no liveness probe", "overlays/edge", func(s *Set) { container(s, "Deployment", "enrich").LivenessProbe = nil }, "enrich container enrich: has no livenessProbe"},
		{"probe on the wrong port", "overlays/edge", func(s *Set) {
			container(s, "Deployment", "bridge").ReadinessProbe.HTTPGet.Port = intstr.FromInt32(8102)
		}, "readinessProbe probes port 8102 but the service's HTTPS listens on 8103"},
		{"tcp probe for a service", "overlays/cloud", func(s *Set) {
			container(s, "Deployment", "sink").LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(9104)}}}
		}, "livenessProbe must be an HTTPS GET of /healthz"},
		{"plain HTTP probe", "overlays/edge", func(s *Set) {
			container(s, "Deployment", "scheduler").StartupProbe.HTTPGet.Scheme = corev1.URISchemeHTTP
		}, "startupProbe must be an HTTPS GET of /healthz"},
		{"plaintext service", "overlays/cloud", func(s *Set) { setEnv(container(s, "Deployment", "sink"), "CEFIOT_INSECURE_PLAINTEXT", "true") }, "insecure-plaintext is set"},
		{"no certificate", "overlays/edge", func(s *Set) { setEnv(container(s, "Deployment", "enrich"), "CEFIOT_TLS_CERT", "") }, "tls-cert is not set"},
		{"key outside its Secret", "overlays/edge", func(s *Set) {
			setEnv(container(s, "Deployment", "bridge"), "CEFIOT_TLS_KEY", "/tmp/bridge.key")
		}, `tls-key "/tmp/bridge.key" is not in a mounted Secret volume`},
		{"no memory limit", "overlays/edge", func(s *Set) { delete(container(s, "DaemonSet", "capture").Resources.Limits, corev1.ResourceMemory) }, "resources.limits.memory is not set"},
		{"writable root filesystem", "overlays/cloud", func(s *Set) {
			f := false
			container(s, "StatefulSet", "kafka").SecurityContext.ReadOnlyRootFilesystem = &f
		}, "readOnlyRootFilesystem must be true"},
		{"root user", "overlays/edge", func(s *Set) {
			w, _ := s.Find("StatefulSet", "cefiot-edge", "etcd")
			var root int64
			w.Template.Spec.SecurityContext.RunAsUser = &root
		}, "runAsUser must be set to a non-zero uid"},
		{"image not built", "overlays/edge", func(s *Set) { container(s, "Deployment", "enrich").Image = "ghcr.io/cefiot/enrich:9.9.9" }, `make images builds "ghcr.io/cefiot/enrich:`},
		{"misspelt image", "overlays/edge", func(s *Set) { container(s, "Deployment", "enrich").Image = "ghcr.io/cefiot/enrichh:0.1.0" }, "is not one that make images builds"},
		{"unpinned image", "overlays/cloud", func(s *Set) { container(s, "StatefulSet", "kafka").Image = "apache/kafka:latest" }, "must be pinned"},
		{"env reference ahead of its variable", "overlays/edge", func(s *Set) {
			c := container(s, "StatefulSet", "etcd")
			c.Env = append([]corev1.EnvVar{{Name: "ETCD_INITIAL_CLUSTER", Value: "etcd-0=https://etcd-0.etcd-headless.$(POD_NAMESPACE).svc:2380"}}, c.Env...)
		}, "env ETCD_INITIAL_CLUSTER refers to $(POD_NAMESPACE), which is not defined before it"},
		{"unknown config key", "overlays/edge", func(s *Set) { cmData(s, "enrich-config")["CEFIOT_BATCH_SIZ"] = "10" }, "ConfigMap enrich-config-"},
		{"unknown env key", "overlays/cloud", func(s *Set) { setEnv(container(s, "Deployment", "sink"), "CEFIOT_STORE", "/x") }, "env CEFIOT_STORE is not a config key of sink"},
		{"unknown argument", "overlays/cloud", func(s *Set) { container(s, "Deployment", "scheduler").Args = []string{"-sesion-ttl=5s"} }, "scheduler has no flag -sesion-ttl"},
		{"loopback listen address", "overlays/edge", func(s *Set) { setEnv(container(s, "Deployment", "scheduler"), "CEFIOT_GRPC_ADDR", "127.0.0.1:9100") }, "in a pod it must listen on 0.0.0.0"},
		{"container port differs from listen port", "overlays/edge", func(s *Set) { setEnv(container(s, "Deployment", "enrich"), "CEFIOT_HTTP_ADDR", "0.0.0.0:8080") }, "container port http is 8102 but the service listens on 8080"},
		{"service targets a missing port", "overlays/cloud", func(s *Set) {
			for _, svc := range s.Services {
				if svc.Name == "sink" {
					svc.Spec.Ports[0].TargetPort = intstr.FromString("grcp")
				}
			}
		}, "port grpc targets grcp, which no container"},
		{"service selects nothing", "overlays/edge", func(s *Set) {
			for _, svc := range s.Services {
				if svc.Name == "bridge" {
					svc.Spec.Selector = map[string]string{"app.kubernetes.io/name": "bridg"}
				}
			}
		}, "selects no workload"},
		{"replicas without a budget", "overlays/edge", func(s *Set) {
			var kept = s.PDBs[:0]
			for _, p := range s.PDBs {
				if p.Name != "enrich" {
					kept = append(kept, p)
				}
			}
			s.PDBs = kept
		}, "Deployment cefiot-edge/enrich: has 2 replicas and no PodDisruptionBudget"},
		{"budget that blocks drains", "overlays/cloud", func(s *Set) {
			for _, p := range s.PDBs {
				if p.Name == "sink" {
					two := intstr.FromInt32(2)
					p.Spec.MinAvailable = &two
				}
			}
		}, "allows no disruption"},
		{"kafka quorum out of step", "overlays/edge", func(s *Set) {
			w, _ := s.Find("StatefulSet", "cefiot-edge", "kafka")
			five := int32(5)
			w.Typed.(*appsv1.StatefulSet).Spec.Replicas = &five
			s.Workloads = nil
			*s = *NewSet(s.Objects)
		}, "BROKERS=3 but the StatefulSet has 5 replicas"},
		{"min.insync equal to RF", "overlays/cloud", func(s *Set) { setEnv(container(s, "StatefulSet", "kafka"), "MIN_INSYNC_REPLICAS", "3") }, "min.insync.replicas >= 2 and below it"},
		{"bootstrap names a missing broker", "overlays/edge", func(s *Set) {
			cmData(s, "capture-config")["CEFIOT_KAFKA_BOOTSTRAP"] = "kafka-3.kafka-headless:9092"
		}, "has 3 replicas: there is no kafka-3"},
		{"etcd endpoint on a wrong port", "overlays/edge", func(s *Set) {
			cmData(s, "cefiot-site")["CEFIOT_ETCD_ENDPOINTS"] = "etcd:2380"
		}, "Service cefiot-edge/etcd has no port 2380"},
		{"etcd initial cluster out of step", "overlays/edge", func(s *Set) {
			setEnv(container(s, "StatefulSet", "etcd"), "ETCD_INITIAL_CLUSTER", "etcd-0=https://etcd-0.etcd-headless.$(POD_NAMESPACE).svc:2380")
		}, "ETCD_INITIAL_CLUSTER names members [etcd-0]"},
		{"etcd without client certificates", "overlays/edge", func(s *Set) {
			setEnv(container(s, "StatefulSet", "etcd"), "ETCD_CLIENT_CERT_AUTH", "false")
		}, `ETCD_CLIENT_CERT_AUTH must be "true"`},
		{"etcd peers in plaintext", "overlays/cloud", func(s *Set) {
			setEnv(container(s, "StatefulSet", "etcd"), "ETCD_LISTEN_PEER_URLS", "http://0.0.0.0:2380")
		}, "every client and peer URL must be https"},
		{"site names disagree", "overlays/edge", func(s *Set) { setEnv(container(s, "Deployment", "bridge"), "CEFIOT_SITE", "edge-2") }, "disagree on the site name"},
		{"spec for another site", "overlays/cloud", func(s *Set) {
			cmData(s, "pipeline-spec")["pipeline.yaml"] = "site: edge\nworkloads: []\n"
		}, `is for site "edge" but the site's services run as site "cloud"`},
		{"spec workload without a worker", "overlays/cloud", func(s *Set) {
			cmData(s, "pipeline-spec")["pipeline.yaml"] = "site: cloud\nworkloads: [{name: enrich, kind: enrich}]\n"
		}, "no enrich worker is deployed"},
		{"node selector no worker offers", "overlays/edge", func(s *Set) {
			cmData(s, "pipeline-spec")["pipeline.yaml"] = "site: edge\nworkloads: [{name: 'capture:c', kind: capture, params: {camera: c, source: 'rtsp://c.example.net/stream1'}, nodeSelector: {zone: a}}]\n"
		}, "matches the labels of no capture worker"},
		{"capture source outside its mounts", "overlays/edge", func(s *Set) {
			cmData(s, "pipeline-spec")["pipeline.yaml"] = "site: edge\nworkloads: [{name: 'capture:c', kind: capture, params: {camera: c, source: /videos/c.mp4}}]\n"
		}, "source /videos/c.mp4 is not under a volume"},
		{"invalid spec", "overlays/edge", func(s *Set) {
			cmData(s, "pipeline-spec")["pipeline.yaml"] = "site: edge\nworkloads: [{name: x, kind: resize}]\n"
		}, `kind "resize": must be one of`},
		{"bridge without cloud endpoints", "overlays/edge", func(s *Set) {
			cmData(s, "bridge-config")["CEFIOT_CLOUD_BOOTSTRAP"] = "kafka-0.kafka-headless:9092"
		}, "points at the edge site's own namespace"},
		{"service account token mounted", "overlays/edge", func(s *Set) {
			w, _ := s.Find("DaemonSet", "cefiot-edge", "capture")
			w.Template.Spec.AutomountServiceAccountToken = nil
		}, "automountServiceAccountToken must be false"},
		{"board signer cut off from the API server", "overlays/edge", func(s *Set) {
			for _, np := range s.NetworkPolicies {
				if np.Name == "scheduler-to-kube-apiserver" {
					np.Spec.Egress[0].Ports = np.Spec.Egress[0].Ports[:1]
				}
			}
		}, "no NetworkPolicy lets it reach the API server"},
		{"board signer's token as the default service account", "overlays/edge", func(s *Set) {
			w, _ := s.Find("Deployment", "cefiot-edge", "scheduler")
			w.Template.Spec.ServiceAccountName = ""
		}, "a service account of its own"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := render(t, tc.overlay)
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

func dropNetworkPolicy(s *Set, name string) {
	kept := s.NetworkPolicies[:0]
	for _, np := range s.NetworkPolicies {
		if np.Name != name {
			kept = append(kept, np)
		}
	}
	s.NetworkPolicies = kept
}
