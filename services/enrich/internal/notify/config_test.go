package notify

import (
	"flag"
	"strings"
	"testing"

	"github.com/cefiot/cefiot/libs/config"
)

func parse(t *testing.T, args ...string) error {
	t.Helper()
	var c Config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.Register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	var ch config.Checker
	c.Validate(&ch)
	return ch.Err()
}

func TestConfigRefusesInsecureOrIncompleteTargets(t *testing.T) {
	if err := parse(t); err != nil {
		t.Fatalf("no targets: %v", err)
	}
	if err := parse(t, "-mqtt-url", "mqtts://broker:8883", "-mqtt-cert", "c", "-mqtt-key", "k", "-webhook-urls", "https://ha.example/api/webhook/x", "-notify-frame-url", "https://c/{frame_id}"); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for _, tc := range []struct {
		args []string
		key  string
	}{
		{[]string{"-mqtt-url", "mqtt://broker:1883", "-mqtt-cert", "c", "-mqtt-key", "k"}, "mqtt-url"},
		{[]string{"-mqtt-url", "tcp://broker:1883", "-mqtt-cert", "c", "-mqtt-key", "k"}, "mqtt-url"},
		{[]string{"-mqtt-url", "mqtts://user:pw@broker:8883", "-mqtt-cert", "c", "-mqtt-key", "k"}, "mqtt-url"},
		{[]string{"-mqtt-url", "mqtts://broker:8883"}, "mqtt-url"},
		{[]string{"-mqtt-url", "mqtts://broker:8883", "-mqtt-cert", "c"}, "mqtt-key"},
		{[]string{"-mqtt-url", "mqtts://broker:8883", "-mqtt-username", "u"}, "mqtt-password-file"},
		{[]string{"-mqtt-url", "mqtts://broker:8883", "-mqtt-cert", "c", "-mqtt-key", "k", "-mqtt-topic-prefix", "a/#"}, "mqtt-topic-prefix"},
		{[]string{"-webhook-urls", "http://ha.example/hook"}, "webhook-urls"},
		{[]string{"-notify-frame-url", "https://c/frames"}, "notify-frame-url"},
		{[]string{"-notify-queue", "0"}, "notify-queue"},
		{[]string{"-notify-max-age", "10ms"}, "notify-max-age"},
	} {
		err := parse(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%v: err %v, want one naming %s", tc.args, err, tc.key)
		}
		if err != nil && strings.Contains(err.Error(), "pw@") {
			t.Errorf("%v: error %q shows the password", tc.args, err)
		}
	}
}
