package bridge

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/pki"
	"github.com/cefiot/cefiot/libs/tlsx"
)

func noEnv(string) (string, bool) { return "", false }

func TestParseConfigDefaults(t *testing.T) {
	c, err := ParseConfig([]string{"-node", "n1", "-insecure-plaintext"}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Topics != "frames.enriched" || c.TopicRegex != "" || c.BatchBytes != 16<<20 || c.RateLimit != 0 {
		t.Fatalf("defaults: %+v", c)
	}
	if got := TransactionalID("edge", "bridge"); got != "cefiot-bridge.edge.bridge" {
		t.Fatalf("transactional id = %q", got)
	}
}

func TestParseConfigNamesBadKeys(t *testing.T) {
	for _, tc := range []struct {
		args []string
		key  string
	}{
		{[]string{"-topic-regex", "(("}, `"topic-regex"`},
		// Secure by default: no key pair, no start.
		{[]string{"-node", "n1"}, `"tls-cert"`},
		{[]string{"-topics", " , "}, `"topics"`},
		{[]string{"-rate-limit", "-1"}, `"rate-limit"`},
		{[]string{"-transaction-timeout", "1s"}, `"transaction-timeout"`},
		{[]string{"-batch-bytes", "10"}, `"batch-bytes"`},
		{[]string{"-topic-refresh", "1ms"}, `"topic-refresh"`},
		{[]string{"-cloud-tls-cert", "node.crt"}, `"cloud-tls-key"`},
		{[]string{"-edge-topic-prefix", "_internal."}, `"edge-topic-prefix"`},
		{[]string{"-edge-topic-prefix", "a b"}, `"edge-topic-prefix"`},
	} {
		_, err := ParseConfig(append([]string{"-node", "n1"}, tc.args...), noEnv)
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%v: error %v does not name %s", tc.args, err, tc.key)
		}
	}
}

// TestCloudCredentialIsTheBoards: with -cloud-tls-cert the bridge shows the
// board's own certificate to the cloud (and its site certificate to the
// edge), trusting the cloud's bundle; a missing file stops it at start.
func TestCloudCredentialIsTheBoards(t *testing.T) {
	dir := t.TempDir()
	if _, _, _, err := pki.InitSite(dir, "edge", []string{"worker/bridge", "node/board-1"}, []string{"localhost"}, 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	site, board := tlsx.FilesIn(dir, "worker/bridge"), tlsx.FilesIn(dir, "node/board-1")
	args := append(site.Args(), "-node", "board-1", "-cloud-tls-ca", site.CA, "-cloud-tls-cert", board.Cert, "-cloud-tls-key", board.Key)
	c, err := ParseConfig(args, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := *c.Cloud().TLS; got != (tlsx.Files{Cert: board.Cert, Key: board.Key, CA: site.CA}) {
		t.Errorf("cloud credential = %+v, want the board's", got)
	}
	if got := *c.Edge().TLS; got != site {
		t.Errorf("edge credential = %+v, want the site's", got)
	}
	// An edge cluster several sites share has its own trust bundle; the
	// bridge still shows its site certificate there.
	shared := filepath.Join(dir, "shared-edge-ca.crt")
	if _, err := ParseConfig(append(args, "-edge-tls-ca", shared), noEnv); err == nil || !strings.Contains(err.Error(), `"edge-tls-ca"`) {
		t.Errorf("a missing edge trust bundle: %v, want an error naming edge-tls-ca", err)
	}
	ca, err := os.ReadFile(site.CA)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(shared, ca, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = ParseConfig(append(args, "-edge-tls-ca", shared), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := *c.Edge().TLS; got != (tlsx.Files{Cert: site.Cert, Key: site.Key, CA: shared}) {
		t.Errorf("edge credential with -edge-tls-ca = %+v", got)
	}
	args[len(args)-1] = filepath.Join(dir, "missing.key")
	if _, err := ParseConfig(args, noEnv); err == nil || !strings.Contains(err.Error(), `"cloud-tls-cert"`) {
		t.Errorf("a missing board key: %v, want an error naming cloud-tls-cert", err)
	}
}
