// Package sitestatus reports a site's state to the cloud: every few
// seconds the bridge writes a cefiot.v1.SiteStatus record (its link,
// backlog, gaps, last commit and version) to the site's status topic in
// the cloud cluster, so that the cloud knows every site from the data it
// receives, without calling into the site. A report the WAN cannot carry
// is dropped after two intervals: the next one says more.
package sitestatus

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cefiot/cefiot/libs/buildinfo"
	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/pipeline"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// DefaultInterval is how often a bridge reports.
const DefaultInterval = 5 * time.Second

// Reporter writes a site's status reports.
type Reporter struct {
	Cloud    kafkax.Conn
	Site     string
	Interval time.Duration
	// Bridge returns the bridge's state at the time of a report.
	Bridge func() *cefiotv1.GetBridgeStatusResponse
	Logger *slog.Logger
}

// Report builds one report.
func (r *Reporter) Report(now time.Time) *cefiotv1.SiteStatus {
	return &cefiotv1.SiteStatus{
		Site: r.Site, ReportTime: timestamppb.New(now), ReportInterval: durationpb.New(r.Interval),
		Bridge: r.Bridge(), Versions: map[string]string{pipeline.KindBridge: buildinfo.Version()},
	}
}

// Run reports until ctx ends. It creates the site's status topic
// (compacted: the cloud needs each site's last report) when the cloud is
// reachable, and goes on reporting while it is not.
func (r *Reporter) Run(ctx context.Context) error {
	topic := pipeline.SiteStatusTopic(r.Site)
	p, err := kafka.NewProducer(kafkax.Config(r.Cloud, map[string]any{
		"enable.idempotence": true,
		"acks":               "all",
		"message.timeout.ms": int(2 * r.Interval / time.Millisecond),
		"linger.ms":          0,
	}))
	if err != nil {
		return fmt.Errorf("site status producer: %w", err)
	}
	defer p.Close()
	failing := false
	go func() {
		for ev := range p.Events() {
			m, ok := ev.(*kafka.Message)
			if !ok {
				continue
			}
			switch {
			case m.TopicPartition.Error != nil && !failing:
				failing = true
				r.Logger.Info("site status not delivered to the cloud; retrying with the next report", "topic", topic, "err", m.TopicPartition.Error)
			case m.TopicPartition.Error == nil && failing:
				failing = false
				r.Logger.Info("site status delivered to the cloud again", "topic", topic)
			}
		}
	}()
	created := false
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		if !created {
			cctx, cancel := context.WithTimeout(ctx, r.Interval)
			_, err := kafkax.EnsureTopic(cctx, r.Cloud, kafkax.TopicSpec{Name: topic, Partitions: 1,
				Configs: map[string]string{"cleanup.policy": "compact", "segment.ms": "3600000"}})
			cancel()
			created = err == nil
			if err != nil && ctx.Err() == nil {
				r.Logger.Debug("site status topic not created yet", "topic", topic, "err", err)
			}
		}
		if created {
			value, err := proto.Marshal(r.Report(time.Now()))
			if err != nil {
				return fmt.Errorf("encode site status: %w", err)
			}
			if err := p.Produce(&kafka.Message{
				TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
				Key:            []byte(r.Site), Value: value,
			}, nil); err != nil {
				r.Logger.Debug("site status not queued", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			p.Flush(1000)
			return nil
		case <-t.C:
		}
	}
}
