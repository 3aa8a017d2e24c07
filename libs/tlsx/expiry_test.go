package tlsx

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/pki"
)

// A certificate that expires within ExpiryWarning makes Watch warn, naming
// the file; one with longer to live does not.
func TestWatchWarnsBeforeExpiry(t *testing.T) {
	ca, err := pki.NewCA("door", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		validity time.Duration
		warn     bool
	}{{3 * 24 * time.Hour, true}, {30 * 24 * time.Hour, false}} {
		dir := t.TempDir()
		is, err := ca.Issue("scheduler", nil, tc.validity, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		f := Files{Cert: filepath.Join(dir, "s.crt"), Key: filepath.Join(dir, "s.key"), CA: filepath.Join(dir, "ca.crt")}
		for p, b := range map[string][]byte{f.Cert: is.CertPEM, f.Key: is.KeyPEM, f.CA: ca.CertPEM()} {
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		var logs bytes.Buffer
		src, err := Load(f, slog.New(slog.NewTextHandler(&logs, nil)), nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // one round: reload and the expiry check
		src.Watch(ctx, time.Hour)
		warned := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "expires soon") && strings.Contains(logs.String(), f.Cert)
		if warned != tc.warn {
			t.Errorf("valid for %v: warned %v, want %v; logs:\n%s", tc.validity, warned, tc.warn, logs.String())
		}
	}
}
