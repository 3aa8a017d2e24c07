package notify

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cefiot/cefiot/libs/config"
)

// Config is the notifier's part of enrich's configuration. It is off
// unless an MQTT broker or a webhook is named.
type Config struct {
	MQTTURL             string
	MQTTCA              string
	MQTTCert            string
	MQTTKey             string
	MQTTUsername        string
	MQTTPasswordFile    string
	MQTTTopicPrefix     string
	MQTTDiscoveryPrefix string
	WebhookURLs         string
	WebhookCA           string
	WebhookSecretFile   string
	FrameURL            string
	Queue               int
	MaxAge              time.Duration
}

// Register adds the notifier's flags to fs.
func (c *Config) Register(fs *flag.FlagSet) {
	fs.StringVar(&c.MQTTURL, "mqtt-url", "", "MQTT broker that motion events go to, mqtts://host:port (TLS only); empty: none")
	fs.StringVar(&c.MQTTCA, "mqtt-ca", "", "CA bundle (PEM) the MQTT broker's certificate must chain to; empty: the system's")
	fs.StringVar(&c.MQTTCert, "mqtt-cert", "", "client certificate (PEM) shown to the MQTT broker")
	fs.StringVar(&c.MQTTKey, "mqtt-key", "", "key of -mqtt-cert")
	fs.StringVar(&c.MQTTUsername, "mqtt-username", "", "MQTT user name (with -mqtt-password-file)")
	fs.StringVar(&c.MQTTPasswordFile, "mqtt-password-file", "", "file holding the MQTT password (read at start, never logged)")
	fs.StringVar(&c.MQTTTopicPrefix, "mqtt-topic-prefix", "cefiot", "first level of the MQTT topics: <prefix>/<site>/events, <prefix>/<site>/<camera>/motion, <prefix>/<site>/available")
	fs.StringVar(&c.MQTTDiscoveryPrefix, "mqtt-discovery-prefix", "homeassistant", "Home Assistant's MQTT discovery prefix: each camera is announced as a motion binary_sensor there (empty: no discovery)")
	fs.StringVar(&c.WebhookURLs, "webhook-urls", "", "comma-separated https:// URLs each motion event is POSTed to (JSON); empty: none")
	fs.StringVar(&c.WebhookCA, "webhook-ca", "", "CA bundle (PEM) the webhooks' certificates must chain to; empty: the system's")
	fs.StringVar(&c.WebhookSecretFile, "webhook-secret-file", "", "file holding the key of the HMAC-SHA256 signature of each webhook body (X-Cefiot-Signature-256); empty: unsigned")
	fs.StringVar(&c.FrameURL, "notify-frame-url", "", "address of a frame given in events, with {site}, {camera} and {frame_id} replaced, e.g. https://cloud.example/v1/frames/{frame_id}/jpeg")
	fs.IntVar(&c.Queue, "notify-queue", 1000, "events waiting for one target at most; more are dead-lettered at once (a receiver that is down never holds up the pipeline)")
	fs.DurationVar(&c.MaxAge, "notify-max-age", 2*time.Minute, "how long an event is retried before it goes to the events dead-letter topic")
}

// Enabled reports whether any target is configured.
func (c Config) Enabled() bool { return c.MQTTURL != "" || c.WebhookURLs != "" }

// Validate checks the configuration, naming the key of each problem.
func (c Config) Validate(ch *config.Checker) {
	if c.MQTTURL != "" {
		u, err := url.Parse(c.MQTTURL)
		switch {
		case err != nil:
			ch.Check(false, "mqtt-url", c.MQTTURL, "not a URL")
		case u.Scheme != "mqtts" && u.Scheme != "ssl" && u.Scheme != "tls":
			ch.Check(false, "mqtt-url", c.MQTTURL, "must be mqtts://host:port: events name cameras and frames, and travel only over TLS")
		case u.User != nil:
			ch.Check(false, "mqtt-url", u.Redacted(), "must not carry credentials: use -mqtt-username and -mqtt-password-file")
		case u.Port() == "":
			ch.Check(false, "mqtt-url", c.MQTTURL, "needs a port (8883 is MQTT over TLS)")
		}
		ch.Check(c.MQTTCert != "" || c.MQTTPasswordFile != "", "mqtt-url", c.MQTTURL, "needs a client identity: -mqtt-cert and -mqtt-key, or -mqtt-username and -mqtt-password-file")
		ch.Check((c.MQTTCert == "") == (c.MQTTKey == ""), "mqtt-key", c.MQTTKey, "-mqtt-cert and -mqtt-key go together")
		ch.Check((c.MQTTUsername == "") == (c.MQTTPasswordFile == ""), "mqtt-password-file", c.MQTTPasswordFile, "-mqtt-username and -mqtt-password-file go together")
		ch.NotEmpty("mqtt-topic-prefix", c.MQTTTopicPrefix)
		ch.Check(!strings.ContainsAny(c.MQTTTopicPrefix, "#+"), "mqtt-topic-prefix", c.MQTTTopicPrefix, "must not contain MQTT wildcards")
		ch.Check(!strings.ContainsAny(c.MQTTDiscoveryPrefix, "#+"), "mqtt-discovery-prefix", c.MQTTDiscoveryPrefix, "must not contain MQTT wildcards")
	}
	for _, raw := range config.List(c.WebhookURLs) {
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			ch.Check(false, "webhook-urls", redactedURL(raw), "not a URL")
		case u.Scheme != "https" || u.Host == "":
			ch.Check(false, "webhook-urls", redactedURL(raw), "must be an https:// URL: events travel only over TLS")
		}
	}
	if c.FrameURL != "" {
		ch.Check(strings.Contains(c.FrameURL, "{frame_id}"), "notify-frame-url", c.FrameURL, "must contain {frame_id}")
	}
	ch.Check(c.Queue >= 1 && c.Queue <= 1000000, "notify-queue", strconv.Itoa(c.Queue), "must be 1..1000000")
	ch.Check(c.MaxAge >= time.Second && c.MaxAge <= 24*time.Hour, "notify-max-age", c.MaxAge.String(), "must be 1s..24h")
}

// redactedURL names a URL without what may be a secret: user info and
// query (a token in a webhook URL is common).
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "redacted"
	}
	u.Fragment = ""
	return u.String()
}

// clientTLS builds the TLS configuration of a connection to a receiver:
// roots from caFile (the system's when empty), and the client
// certificate when given.
func clientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("read CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA bundle %s: no PEM certificate in it", caFile)
		}
		cfg.RootCAs = pool
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// readSecret reads a one-line secret from a file.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", path)
	}
	return s, nil
}

// WebhookTLS is the TLS configuration of the webhook connections.
func WebhookTLS(c Config) (*tls.Config, error) {
	cfg, err := clientTLS(c.WebhookCA, "", "")
	if err != nil {
		return nil, fmt.Errorf("webhook: -webhook-ca: %w", err)
	}
	return cfg, nil
}

// WebhookSecret reads the signing key, if one is configured.
func WebhookSecret(c Config) (string, error) {
	if c.WebhookSecretFile == "" {
		return "", nil
	}
	s, err := readSecret(c.WebhookSecretFile)
	if err != nil {
		return "", fmt.Errorf("webhook: -webhook-secret-file: %w", err)
	}
	return s, nil
}
