package scheduler

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/pki"
)

func noEnv(string) (string, bool) { return "", false }

// TestBoardSignerCANamedWhenWrong: a board signer without its site's CA
// stops the scheduler at start, naming the key and the reason.
func TestBoardSignerCANamedWhenWrong(t *testing.T) {
	cloud := t.TempDir()
	ca, err := pki.NewCA("cloud", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"tls.crt": ca.CertPEM(), "tls.key": key} {
		if err := os.WriteFile(filepath.Join(cloud, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		dir, says string
	}{
		{t.TempDir(), "tls.crt"},
		{cloud, "site cloud's, not edge's"},
	} {
		_, err := ParseConfig([]string{"-site", "edge", "-insecure-plaintext", "-board-signer-ca", tc.dir}, noEnv)
		if err == nil || !strings.Contains(err.Error(), `"board-signer-ca"`) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("board-signer-ca %s: error %v, want the key named and %q", tc.dir, err, tc.says)
		}
	}
}
