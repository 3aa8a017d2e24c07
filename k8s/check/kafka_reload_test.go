package check

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/harness/sitepki"
)

// TestKafkaStartScriptReloadsTLS runs the cloud overlay's Kafka start
// script with Kafka stubbed (a process that runs until TERM) and a renewed
// Secret: the script rewrites the key and trust stores and sets them again
// as the broker's dynamic config on every listener (kafka-configs.sh, as
// the brokers' own identity), with no restart; the kubelet's TERM reaches
// Kafka and the script ends with it.
func TestKafkaStartScriptReloadsTLS(t *testing.T) {
	set := render(t, "overlays/cloud")
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
	site := env["SITE"].Value
	pkiDir := filepath.Join(t.TempDir(), site)
	tlsDir, dir, stub := t.TempDir(), t.TempDir(), t.TempDir()
	secret := func() string { // issue the brokers' key pair, as a renewed Secret
		t.Helper()
		s, err := sitepki.Make(pkiDir, site)
		if err != nil {
			t.Fatal(err)
		}
		kf := s.Files(access.Kafka)
		copyFile(t, kf.Cert, filepath.Join(tlsDir, "tls.crt"))
		copyFile(t, kf.Key, filepath.Join(tlsDir, "tls.key"))
		copyFile(t, kf.CA, filepath.Join(tlsDir, "ca.crt"))
		return readFile(t, kf.Cert)
	}
	secret()
	calls := filepath.Join(dir, "configs-calls")
	writeExec(t, filepath.Join(stub, "bin", "kafka-storage.sh"), "#!/bin/sh\nexit 0\n")
	writeExec(t, filepath.Join(stub, "bin", "kafka-server-start.sh"), "#!/bin/sh\ntrap 'exit 0' TERM\nwhile :; do sleep 0.1; done\n")
	writeExec(t, filepath.Join(stub, "bin", "kafka-configs.sh"), "#!/bin/sh\necho \"$@\" >> \""+calls+"\"\n")
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "KAFKA_HOME=" + stub, "CONFIG_DIR=" + dir + "/config",
		"DATA_DIR=" + dir + "/data", "POD_NAME=kafka-0", "POD_NAMESPACE=" + ns, "TLS_DIR=" + tlsDir,
		"CLIENT_CAS_DIR=" + dir + "/none", "TLS_RELOAD_SECONDS=1", "PIPELINE_PROPERTIES=" + pipelinePropertiesFile(t, set, sts, c)}
	for k, v := range env {
		if !strings.HasPrefix(v.Value, "<") && k != "LOG_DIR" && k != "KAFKA_HEAP_OPTS" {
			cmd.Env = append(cmd.Env, k+"="+v.Value)
		}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { _ = cmd.Process.Kill() }()
	await := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			select {
			case err := <-exited:
				t.Fatalf("the script ended (%v) waiting for %s:\n%s", err, what, out.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s:\n%s", what, out.String())
			}
		}
	}
	keystore := filepath.Join(dir, "config", "keystore.pem")
	await("the key store", func() bool { _, err := os.Stat(keystore); return err == nil })
	renewed := secret()
	await("the reload", func() bool { _, err := os.Stat(calls); return err == nil })
	if !strings.Contains(readFile(t, keystore), renewed) {
		t.Error("the key store does not hold the renewed certificate")
	}
	args := readFile(t, calls)
	for _, want := range []string{"--entity-type brokers --entity-name 0", "--alter", "--command-config " + dir + "/config/admin.properties"} {
		if !strings.Contains(args, want) {
			t.Errorf("kafka-configs.sh %s: lacks %q", args, want)
		}
	}
	for _, listener := range []string{"client", "controller", "external"} {
		for _, store := range []string{"keystore", "truststore"} {
			if want := "listener.name." + listener + ".ssl." + store + ".location="; !strings.Contains(args, want) {
				t.Errorf("kafka-configs.sh %s: lacks %s", args, want)
			}
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("the script ended with %v after TERM:\n%s", err, out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the script did not end 10 s after TERM:\n%s", out.String())
	}
}
