package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/harness/kafkalocal"
	"github.com/cefiot/cefiot/libs/harness/netx"
	"github.com/cefiot/cefiot/libs/harness/sitepki"
	"github.com/cefiot/cefiot/libs/pipeline"
)

// TestServicesRefuseBadConfig starts each service binary with a bad value
// and checks that it exits non-zero naming the key and the reason.
func TestServicesRefuseBadConfig(t *testing.T) {
	bins := binDir(t)
	deadAddr, err := netx.FreeAddr() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	site, err := sitepki.Make(filepath.Join(t.TempDir(), "pki"), "edge")
	if err != nil {
		t.Fatal(err)
	}
	enrichTLS := site.ServiceArgs(pipeline.KindEnrich)
	bridgeTLS := append(site.ServiceArgs(pipeline.KindBridge), "-cloud-tls-ca", site.Files(access.Kafka).CA)
	garbage := filepath.Join(t.TempDir(), "garbage.crt")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		bin  string
		args []string
		env  []string
		want []string
	}{
		{"malformed batch size", "enrich", []string{"-batch-size", "0"}, nil, []string{`"batch-size"`, "must be 1..10000"}},
		{"malformed duration from env", "bridge", nil, []string{"CEFIOT_BATCH_WAIT=soon"}, []string{`"batch-wait"`, "CEFIOT_BATCH_WAIT", "invalid duration"}},
		{"bad regex", "sink", []string{"-topic-pattern", "^edge-(("}, nil, []string{`"topic-pattern"`, "missing closing )"}},
		{"bad site", "capture", []string{"-site", "a/b"}, nil, []string{`"site"`}},
		{"missing spec", "scheduler", []string{"-spec", "/nonexistent/spec.yaml"}, nil, []string{`"spec"`, "no such file"}},
		{"unreachable broker", "enrich", append([]string{"-kafka-bootstrap", deadAddr, "-kafka-wait", "1s"}, enrichTLS...), nil, []string{"kafka-bootstrap", deadAddr, "does not answer"}},
		{"unreachable cloud broker", "bridge", append([]string{"-cloud-bootstrap", deadAddr, "-edge-bootstrap", deadAddr, "-kafka-wait", "1s"}, bridgeTLS...), nil, []string{"bootstrap", deadAddr, "does not answer"}},
		// Secure by default: no key pair, no start; a bad one is named.
		{"no certificate", "sink", nil, nil, []string{`"tls-cert"`, "-insecure-plaintext turns it off"}},
		{"bridge without the cloud's CA", "bridge", site.ServiceArgs(pipeline.KindBridge), nil, []string{`"cloud-tls-ca"`}},
		{"garbage certificate", "capture", append(site.ServiceArgs(pipeline.KindCapture), "-tls-cert", garbage), nil, []string{garbage}},
		{"unknown flag", "sink", []string{"-no-such-flag"}, nil, []string{"no-such-flag"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(bins, tc.bin), tc.args...)
			cmd.Env = append(cmd.Environ(), tc.env...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("%s exited 0 with bad input; output:\n%s", tc.bin, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output does not name %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestEveryProgramPrintsUsage runs every service and every program under
// cmd/ with -h: each prints its usage to standard output and exits 0.
func TestEveryProgramPrintsUsage(t *testing.T) {
	bins := binDir(t)
	wd, _ := os.Getwd()
	root, err := kafkalocal.FindRepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	programs := pipeline.Kinds()
	programs = append(programs, "scheduler")
	mains, _ := filepath.Glob(filepath.Join(root, "cmd", "*", "main.go"))
	for _, m := range mains {
		programs = append(programs, filepath.Base(filepath.Dir(m)))
	}
	if len(programs) < 10 {
		t.Fatalf("found only %v", programs)
	}
	for _, name := range programs {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(bins, name)
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("%s is not built (make build builds every program): %v", name, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var stdout, stderr strings.Builder
			cmd := exec.CommandContext(ctx, path, "-h")
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s -h: %v\nstderr:\n%s", name, err, stderr.String())
			}
			if !strings.Contains(stdout.String(), "Usage") || !strings.Contains(stdout.String(), "\n  -") {
				t.Fatalf("%s -h printed no usage with flags to stdout:\n%s\nstderr:\n%s", name, stdout.String(), stderr.String())
			}
		})
	}
}
