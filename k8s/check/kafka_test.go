package check

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
	"github.com/cefiot/cefiot/libs/harness/sitepki"
	"github.com/cefiot/cefiot/libs/kafkaacl"
	"github.com/cefiot/cefiot/libs/kafkaconf"
)

// TestKafkaStartScript runs the Kafka StatefulSet's start script as each
// node of the edge and cloud overlays would, with the real Kafka 4.1.1
// StorageTool formatting the data directory: the generated server.properties
// must be a valid KRaft config for that node (Kafka validates node id,
// quorum voters and listeners when it formats) and name the node's own
// listeners, every one of them mutual TLS, with the authorizer on and the
// brokers' own principal as the only super user.
func TestKafkaStartScript(t *testing.T) {
	libs := kafkatest.Libs(t)
	java := "java"
	if home := os.Getenv("JAVA_HOME"); home != "" {
		java = filepath.Join(home, "bin", "java")
	}
	for _, overlay := range []string{"overlays/edge", "overlays/cloud"} {
		t.Run(overlay, func(t *testing.T) {
			set := render(t, overlay)
			ns := set.SiteNamespaces()[0]
			sts, ok := set.Find("StatefulSet", ns, "kafka")
			if !ok {
				t.Fatal("no kafka StatefulSet")
			}
			c := &sts.Template.Spec.Containers[0]
			script := scriptFromVolume(t, set, sts, c)
			pipelineFile := pipelinePropertiesFile(t, set, sts, c)
			budgetFile, budget := budgetPropertiesFile(t, set, sts, c)
			env, errs := set.ContainerEnv(ns, c)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			// The Secret cefiot-tls-kafka and, in the cloud, an edge site's CA.
			site := env["SITE"].Value
			pki, err := sitepki.Make(filepath.Join(t.TempDir(), site), site)
			if err != nil {
				t.Fatal(err)
			}
			edgePKI, err := sitepki.Make(filepath.Join(t.TempDir(), "edge-ca"), "edge-2")
			if err != nil {
				t.Fatal(err)
			}
			tlsDir, casDir := t.TempDir(), t.TempDir()
			kf := pki.Files(access.Kafka)
			copyFile(t, kf.Cert, filepath.Join(tlsDir, "tls.crt"))
			copyFile(t, kf.Key, filepath.Join(tlsDir, "tls.key"))
			copyFile(t, kf.CA, filepath.Join(tlsDir, "ca.crt"))
			copyFile(t, edgePKI.Files(access.Kafka).CA, filepath.Join(casDir, "edge-2.crt"))
			stub := t.TempDir()
			writeExec(t, filepath.Join(stub, "bin", "kafka-storage.sh"),
				"#!/bin/sh\nexec "+java+" -Xmx256m -cp '"+libs+"/*' kafka.tools.StorageTool \"$@\"\n")
			writeExec(t, filepath.Join(stub, "bin", "kafka-server-start.sh"),
				"#!/bin/sh\ncp \"$1\" \"$STARTED\"\n")
			for i := 0; i < int(sts.Replicas); i++ {
				dir := t.TempDir()
				cmd := exec.Command("/bin/sh", "-c", script)
				cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "KAFKA_HOME=" + stub, "CONFIG_DIR=" + dir + "/config",
					"DATA_DIR=" + dir + "/data", "STARTED=" + dir + "/started.properties",
					"POD_NAME=kafka-" + strconv.Itoa(i), "POD_NAMESPACE=" + ns, "TLS_DIR=" + tlsDir, "CLIENT_CAS_DIR=" + casDir,
					"PIPELINE_PROPERTIES=" + pipelineFile, "BUDGET_PROPERTIES=" + budgetFile}
				for k, v := range env {
					if !strings.HasPrefix(v.Value, "<") && k != "LOG_DIR" && k != "KAFKA_HEAP_OPTS" {
						cmd.Env = append(cmd.Env, k+"="+v.Value)
					}
				}
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("kafka-%d: start script: %v\n%s", i, err, out)
				}
				props := readFile(t, dir+"/started.properties")
				host := "kafka-" + strconv.Itoa(i) + ".kafka-headless." + ns + ".svc"
				protocols := "listener.security.protocol.map=CLIENT:SSL,CONTROLLER:SSL"
				if env["EXTERNAL_DOMAIN"].Value != "" {
					protocols += ",EXTERNAL:SSL"
				}
				for _, want := range []string{"node.id=" + strconv.Itoa(i) + "\n", "advertised.listeners=CLIENT://" + host + ":9092",
					protocols + "\n", "ssl.client.auth=required\n", "allow.everyone.if.no.acl.found=false\n",
					"authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n",
					"super.users=" + kafkaacl.Principal(pki.Identity(access.Kafka)) + "\n"} {
					if !strings.Contains(props, want) {
						t.Errorf("kafka-%d: server.properties lacks %q:\n%s", i, want, props)
					}
				}
				checkPipelineSettings(t, i, props, int(sts.Replicas))
				for line := range strings.Lines(budget) {
					if !strings.HasPrefix(line, "#") && !strings.Contains(props, line) {
						t.Errorf("kafka-%d: server.properties lacks the disk budget's %q:\n%s", i, line, props)
					}
				}
				_, voterLine, _ := strings.Cut(props, "controller.quorum.voters=")
				voterLine, _, _ = strings.Cut(voterLine, "\n")
				if voters := len(strings.Split(voterLine, ",")); voters != int(sts.Replicas) {
					t.Errorf("kafka-%d: %d quorum voters, want %d:\n%s", i, voters, sts.Replicas, props)
				}
				if ext := env["EXTERNAL_DOMAIN"].Value; ext != "" && !strings.Contains(props, "EXTERNAL://kafka-"+strconv.Itoa(i)+"."+ext+":9094") {
					t.Errorf("kafka-%d: no EXTERNAL listener for %s:\n%s", i, ext, props)
				}
				if trust := readFile(t, dir+"/config/truststore.pem"); strings.Count(trust, "BEGIN CERTIFICATE") != 2 {
					t.Errorf("kafka-%d: the trust store holds %d certificates, want the site's CA and the admitted site's", i, strings.Count(trust, "BEGIN CERTIFICATE"))
				}
				meta := readFile(t, dir+"/data/meta.properties")
				if !strings.Contains(meta, "cluster.id="+env["CLUSTER_ID"].Value) || !strings.Contains(meta, "node.id="+strconv.Itoa(i)) {
					t.Errorf("kafka-%d: formatted storage says:\n%s", i, meta)
				}
			}
		})
	}
}

// pipelinePropertiesFile writes the brokers' pipeline settings, as the
// ConfigMap mounts them, to a file for the start script; they must be what
// libs/kafkaconf says every cefiot cluster runs with (as the tests' brokers
// do).
func pipelinePropertiesFile(t *testing.T, set *Set, sts Workload, c *corev1.Container) string {
	t.Helper()
	props, err := (&policy{set: set}).mountedConfigMapFile(sts.Namespace, sts, c, "/opt/cefiot/kafka-pipeline.properties")
	if err != nil {
		t.Fatalf("the brokers' pipeline settings: %v", err)
	}
	if props != kafkaconf.DeployedFile() {
		t.Fatalf("k8s/base/kafka-pipeline.properties drifted from libs/kafkaconf (run make generate):\n%s", props)
	}
	path := filepath.Join(t.TempDir(), "kafka-pipeline.properties")
	if err := os.WriteFile(path, []byte(props), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// budgetPropertiesFile writes the retention planned from the site's disk
// budget, when its overlay has one, to a file for the start script, and
// checks what it was planned from: the StatefulSet's brokers, and no more
// room than a broker's volume. Without one it returns a path that does not
// exist.
func budgetPropertiesFile(t *testing.T, set *Set, sts Workload, c *corev1.Container) (path, props string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "kafka-budget.properties")
	props, err := (&policy{set: set}).mountedConfigMapFile(sts.Namespace, sts, c, "/opt/cefiot/kafka-budget.properties")
	if err != nil {
		return path, ""
	}
	var budget, brokers int64
	for line := range strings.Lines(props) {
		for _, f := range strings.Fields(strings.TrimPrefix(line, "#")) {
			k, v, _ := strings.Cut(f, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "budget.bytes":
				budget = n
			case "brokers":
				brokers = n
			}
		}
	}
	if brokers != int64(sts.Replicas) {
		t.Errorf("the disk budget was planned for %d brokers, the StatefulSet has %d (kafka-budget.args, make generate)", brokers, sts.Replicas)
	}
	ss, ok := sts.Typed.(*appsv1.StatefulSet)
	if !ok || len(ss.Spec.VolumeClaimTemplates) == 0 {
		t.Fatalf("%s: no volume claim templates", sts.ID())
	}
	for _, vct := range ss.Spec.VolumeClaimTemplates {
		if size := vct.Spec.Resources.Requests.Storage().Value(); budget <= 0 || budget > size {
			t.Errorf("the disk budget %d bytes does not fit the %s volume of %d bytes", budget, vct.Name, size)
		}
	}
	if err := os.WriteFile(path, []byte(props), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("disk budget: %d bytes a broker, %d brokers", budget, brokers)
	return path, props
}

// checkPipelineSettings fails unless node i's server.properties holds
// every setting of libs/kafkaconf for a cluster of brokers (the
// replication of its size included), each key once.
func checkPipelineSettings(t *testing.T, i int, props string, brokers int) {
	t.Helper()
	seen := map[string]string{}
	for _, line := range strings.Split(props, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		if old, dup := seen[k]; dup {
			t.Errorf("kafka-%d: %s set twice (%q, then %q)", i, k, old, v)
		}
		seen[k] = v
	}
	rf, minISR := kafkaconf.Replication(brokers)
	want := append(append(kafkaconf.Pipeline(), kafkaconf.Security()...), kafkaconf.Replicated(rf, minISR)...)
	for _, p := range want {
		if got, ok := seen[p.Key]; !ok || got != p.Value {
			t.Errorf("kafka-%d: %s=%q, want %q as every cefiot cluster (libs/kafkaconf)", i, p.Key, got, p.Value)
		}
	}
}

// scriptFromVolume returns the start script the container runs, from the
// ConfigMap volume its command names.
func scriptFromVolume(t *testing.T, set *Set, w Workload, c *corev1.Container) string {
	t.Helper()
	if len(c.Command) != 2 {
		t.Fatalf("command %v: want [/bin/sh <script>]", c.Command)
	}
	p := &policy{set: set}
	s, err := p.mountedConfigMapFile(w.Namespace, w, c, c.Command[1])
	if err != nil {
		t.Fatalf("script %s: %v", c.Command[1], err)
	}
	return s
}

func writeExec(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
