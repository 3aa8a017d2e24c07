package enrich

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/services/enrich/internal/notify"
)

// notifier holds the event targets for the life of the process (the MQTT
// connection outlives workload restarts); each enrich workload runs a
// notifier on its output topic beside its transform.
type notifier struct {
	targets []notify.Target
	mqtt    *notify.MQTT
	policy  notify.Policy
	metrics *notify.Metrics
	cfg     notify.Config
}

// newNotifier builds the configured targets, or returns nil when none is.
func newNotifier(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*notifier, error) {
	if !cfg.Notify.Enabled() {
		return nil, nil
	}
	n := &notifier{cfg: cfg.Notify, metrics: notify.NewMetrics(reg),
		policy: notify.Policy{Queue: cfg.Notify.Queue, MaxAge: cfg.Notify.MaxAge}}
	if cfg.Notify.MQTTURL != "" {
		m, err := notify.NewMQTT(notify.MQTTOptions{Config: cfg.Notify, Site: cfg.Site, ClientID: "cefiot-enrich-" + cfg.Site + "-" + cfg.Node, Logger: logger})
		if err != nil {
			return nil, err
		}
		n.mqtt = m
		n.targets = append(n.targets, m)
	}
	if urls := config.List(cfg.Notify.WebhookURLs); len(urls) > 0 {
		tlsCfg, err := notify.WebhookTLS(cfg.Notify)
		if err != nil {
			return nil, err
		}
		secret, err := notify.WebhookSecret(cfg.Notify)
		if err != nil {
			return nil, err
		}
		for _, u := range urls {
			n.targets = append(n.targets, notify.NewWebhook(u, tlsCfg, secret))
		}
	}
	return n, nil
}

// run delivers the events of the enriched frames in topic until ctx ends.
func (n *notifier) run(ctx context.Context, e *enricher, logger *slog.Logger) error {
	err := notify.Run(ctx, notify.Params{
		Conn:            e.cfg.Kafka(e.cfg.KafkaBootstrap),
		Topic:           e.cfg.OutputTopic,
		Group:           pipeline.NotifyGroup(e.cfg.Site),
		DeadLetterTopic: pipeline.TopicEventsDeadLetter,
		Targets:         n.targets,
		Policy:          n.policy,
		FrameURL:        notify.FrameURL(n.cfg.FrameURL),
		Logger:          logger,
		Metrics:         n.metrics,
	})
	if err != nil {
		return fmt.Errorf("notifier: %w", err)
	}
	return nil
}

// close disconnects from the MQTT broker.
func (n *notifier) close() {
	if n != nil && n.mqtt != nil {
		n.mqtt.Close()
	}
}
