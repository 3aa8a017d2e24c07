package check

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
)

// TestKafkaStartScript runs the Kafka StatefulSet's start script as each
// node of the edge and cloud overlays would, with the real Kafka 4.1.1
// StorageTool formatting the data directory: the generated server.properties
// must be a valid KRaft config for that node (Kafka validates node id,
// quorum voters and listeners when it formats) and name the node's own
// listeners.
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
			env, errs := set.ContainerEnv(ns, c)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
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
					"POD_NAME=kafka-" + strconv.Itoa(i), "POD_NAMESPACE=" + ns}
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
				for _, want := range []string{"node.id=" + strconv.Itoa(i) + "\n", "advertised.listeners=PLAINTEXT://" + host + ":9092"} {
					if !strings.Contains(props, want) {
						t.Errorf("kafka-%d: server.properties lacks %q:\n%s", i, want, props)
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
				meta := readFile(t, dir+"/data/meta.properties")
				if !strings.Contains(meta, "cluster.id="+env["CLUSTER_ID"].Value) || !strings.Contains(meta, "node.id="+strconv.Itoa(i)) {
					t.Errorf("kafka-%d: formatted storage says:\n%s", i, meta)
				}
			}
		})
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
