// Package sites keeps what the cloud knows of each edge site: the last
// status report its bridge sent (cefiot.v1.SiteStatus, on the site's
// status topic in the cloud cluster). The cloud learns about a site from
// the data it receives, never by calling into the site; a site whose
// reports stop for three report intervals is stale.
package sites

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/pipeline"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// StaleAfter is how many report intervals of silence make a site stale.
const StaleAfter = 3

// defaultInterval is assumed for a report that does not say its interval.
const defaultInterval = 5 * time.Second

// Registry holds each site's last report and when it arrived. It is safe
// for concurrent use.
type Registry struct {
	now   func() time.Time
	mu    sync.Mutex
	sites map[string]entry
}

type entry struct {
	report *cefiotv1.SiteStatus
	seen   time.Time
}

// NewRegistry returns an empty registry that tells the time with now (nil:
// time.Now).
func NewRegistry(now func() time.Time) *Registry {
	if now == nil {
		now = time.Now
	}
	return &Registry{now: now, sites: map[string]entry{}}
}

// Observe records a report received now. A report older than the one held
// for its site (a replay) changes nothing.
func (r *Registry) Observe(rep *cefiotv1.SiteStatus) {
	if rep.GetSite() == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.sites[rep.GetSite()]; ok && rep.GetReportTime().AsTime().Before(old.report.GetReportTime().AsTime()) {
		return
	}
	r.sites[rep.GetSite()] = entry{report: rep, seen: r.now()}
}

// List returns every site heard from, by name.
func (r *Registry) List() []*cefiotv1.CloudSite {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	out := make([]*cefiotv1.CloudSite, 0, len(r.sites))
	for name, e := range r.sites {
		interval := e.report.GetReportInterval().AsDuration()
		if interval <= 0 {
			interval = defaultInterval
		}
		b := e.report.GetBridge()
		out = append(out, &cefiotv1.CloudSite{
			Site: name, LastSeen: timestamppb.New(e.seen), Stale: now.Sub(e.seen) > StaleAfter*interval,
			Link: b.GetLink(), BacklogRecords: b.GetBacklogRecords(), BacklogBytes: b.GetBacklogBytes(),
			GapOffsets: b.GetGapOffsets(), Gaps: b.GetGaps(), Versions: e.report.GetVersions(),
			LastCommitTime: b.GetLastCommitTime(), Report: e.report,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetSite() < out[j].GetSite() })
	return out
}

// Follow reads every site's status topic in the cloud cluster into r until
// ctx ends, picking up new sites' topics every refresh. It assigns the
// partitions itself (no group membership, nothing committed): each start
// reads the compacted topics from their beginning.
func Follow(ctx context.Context, conn kafkax.Conn, group string, r *Registry, refresh time.Duration, logger *slog.Logger) error {
	c, err := kafka.NewConsumer(kafkax.Config(conn, map[string]any{
		"group.id": group, "enable.auto.commit": false, "isolation.level": "read_committed",
	}))
	if err != nil {
		return fmt.Errorf("site status consumer: %w", err)
	}
	defer c.Close()
	pattern := regexp.MustCompile(pipeline.SiteStatusPattern())
	assigned := map[string]bool{}
	next := time.Now()
	for ctx.Err() == nil {
		if !time.Now().Before(next) {
			next = time.Now().Add(refresh)
			if err := assignNew(c, pattern, assigned); err != nil {
				logger.Debug("listing the sites' status topics", "err", err)
			}
		}
		switch e := c.Poll(200).(type) {
		case *kafka.Message:
			rep := &cefiotv1.SiteStatus{}
			if err := proto.Unmarshal(e.Value, rep); err != nil {
				logger.Warn("site status record is not a SiteStatus; skipped", "where", kafkax.Where(e), "err", err)
				continue
			}
			if want := pipeline.SiteStatusTopic(rep.GetSite()); e.TopicPartition.Topic == nil || *e.TopicPartition.Topic != want {
				logger.Warn("site status record names another site than its topic's; skipped", "where", kafkax.Where(e), "site", rep.GetSite())
				continue
			}
			r.Observe(rep)
		case kafka.Error:
			if e.IsFatal() {
				return fmt.Errorf("site status consumer: %w", e)
			}
		}
	}
	return nil
}

// assignNew adds the partitions of status topics not assigned yet.
func assignNew(c *kafka.Consumer, pattern *regexp.Regexp, assigned map[string]bool) error {
	md, err := c.GetMetadata(nil, true, 2000)
	if err != nil {
		return err
	}
	var add []kafka.TopicPartition
	for name, t := range md.Topics {
		if assigned[name] || !pattern.MatchString(name) || t.Error.Code() != kafka.ErrNoError {
			continue
		}
		for _, p := range t.Partitions {
			topic := name
			add = append(add, kafka.TopicPartition{Topic: &topic, Partition: p.ID, Offset: kafka.OffsetBeginning})
		}
		assigned[name] = true
	}
	if len(add) == 0 {
		return nil
	}
	return c.IncrementalAssign(add)
}
