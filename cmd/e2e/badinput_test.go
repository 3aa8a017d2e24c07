package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/netx"
)

// TestServicesRefuseBadConfig starts each service binary with a bad value
// and checks that it exits non-zero naming the key and the reason.
func TestServicesRefuseBadConfig(t *testing.T) {
	bins := binDir(t)
	deadAddr, err := netx.FreeAddr() // nothing listens there
	if err != nil {
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
		{"unreachable broker", "enrich", []string{"-kafka-bootstrap", deadAddr, "-kafka-wait", "1s"}, nil, []string{"kafka-bootstrap", deadAddr, "does not answer"}},
		{"unreachable cloud broker", "bridge", []string{"-cloud-bootstrap", deadAddr, "-edge-bootstrap", deadAddr, "-kafka-wait", "1s"}, nil, []string{"bootstrap", deadAddr, "does not answer"}},
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
