package bridge

import (
	"strings"
	"testing"
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
	} {
		_, err := ParseConfig(append([]string{"-node", "n1"}, tc.args...), noEnv)
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%v: error %v does not name %s", tc.args, err, tc.key)
		}
	}
}
