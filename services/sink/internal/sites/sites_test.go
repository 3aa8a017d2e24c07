package sites

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

func report(site string, at time.Time, backlog int64) *cefiotv1.SiteStatus {
	return &cefiotv1.SiteStatus{Site: site, ReportTime: timestamppb.New(at), ReportInterval: durationpb.New(5 * time.Second),
		Bridge:   &cefiotv1.GetBridgeStatusResponse{Link: cefiotv1.LinkState_LINK_STATE_UP, BacklogRecords: backlog, GapOffsets: 7, Gaps: 1},
		Versions: map[string]string{"bridge": "abc"}}
}

func TestSitesGoStaleAfterThreeSilentIntervals(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	r := NewRegistry(func() time.Time { return now })
	r.Observe(report("yard", now, 10))
	r.Observe(report("door", now, 0))
	r.Observe(report("", now, 0)) // no site: ignored
	got := r.List()
	if len(got) != 2 || got[0].GetSite() != "door" || got[1].GetSite() != "yard" {
		t.Fatalf("sites %v", got)
	}
	y := got[1]
	if y.GetStale() || y.GetBacklogRecords() != 10 || y.GetGapOffsets() != 7 || y.GetGaps() != 1 ||
		y.GetLink() != cefiotv1.LinkState_LINK_STATE_UP || y.GetVersions()["bridge"] != "abc" || !y.GetLastSeen().AsTime().Equal(now) {
		t.Fatalf("yard %v", y)
	}
	// A replayed older report changes nothing.
	r.Observe(report("yard", now.Add(-time.Minute), 99))
	if r.List()[1].GetBacklogRecords() != 10 {
		t.Fatal("an older report replaced a newer one")
	}
	// door goes on reporting; yard falls silent.
	now = now.Add(15 * time.Second)
	r.Observe(report("door", now, 0))
	if got := r.List(); got[1].GetStale() {
		t.Fatal("stale at exactly three intervals")
	}
	now = now.Add(time.Second)
	got = r.List()
	if got[0].GetStale() || !got[1].GetStale() {
		t.Fatalf("after 16 s: door stale %v, yard stale %v; want false, true", got[0].GetStale(), got[1].GetStale())
	}
}
