package capture

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cefiot/cefiot/services/capture/internal/videoio"
)

// TestSpoolConfigChecked: bad spool and decoding settings stop the service
// at start, naming the key.
func TestSpoolConfigChecked(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	noEnv := func(string) (string, bool) { return "", false }
	cfg, err := ParseConfig([]string{"-insecure-plaintext", "-spool-dir", filepath.Join(dir, "spool")}, noEnv)
	if err != nil {
		t.Fatalf("defaults with a writable spool dir: %v", err)
	}
	if cfg.Accel() != videoio.AccelAny {
		t.Fatalf("decoding acceleration by default: %s, want any", cfg.Accel())
	}
	if cfg.SpoolMaxBytes != 1<<30 || cfg.SpoolAfter <= 0 {
		t.Fatalf("spool defaults: %d bytes, after %v", cfg.SpoolMaxBytes, cfg.SpoolAfter)
	}
	for _, tc := range []struct {
		args []string
		key  string
	}{
		{[]string{"-spool-dir", filepath.Join(file, "spool")}, "spool-dir"},
		{[]string{"-spool-dir", ""}, "spool-dir"},
		{[]string{"-spool-dir", dir, "-spool-max-bytes", "1000"}, "spool-max-bytes"},
		{[]string{"-spool-dir", dir, "-spool-max-bytes", "-1"}, "spool-max-bytes"},
		{[]string{"-spool-dir", dir, "-spool-after", "0s"}, "spool-after"},
		{[]string{"-spool-dir", dir, "-hwaccel", "cuda"}, "hwaccel"},
	} {
		if _, err := ParseConfig(append([]string{"-insecure-plaintext"}, tc.args...), noEnv); err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%v: %v, want an error naming %s", tc.args, err, tc.key)
		}
	}
}
