package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
	"github.com/cefiot/cefiot/libs/harness/localstack"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// TestCloudKnowsSitesFromTheirReports: the cloud lists the edge site from
// its bridge's status reports alone (no call into the site): live, link
// up, its lag, gaps and the bridge's version, through the sink's API and
// cefiotctl. When the site's bridge dies the site is shown stale within
// 30 s; when the bridge is back the site is live again.
func TestCloudKnowsSitesFromTheirReports(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test on real Kafka; skipped with -short")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	video, _ := faultVideo(t, dir, 1500)
	stack := startStack(ctx, t, localstack.Config{
		BinDir: binDir(t), RunDir: filepath.Join(dir, "run"), KafkaLibs: kafkatest.Libs(t), Video: video, Realtime: true,
		Cameras: []string{"cam-1"},
	})
	exits := watchExits(ctx, t, stack)
	conn, err := grpc.NewClient(stack.SinkGRPC(), stack.Operator().DialOption())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sink := cefiotv1.NewSinkServiceClient(conn)
	site := func() *cefiotv1.CloudSite {
		r, err := sink.ListSites(ctx, &cefiotv1.ListSitesRequest{})
		if err != nil {
			t.Fatalf("ListSites: %v", err)
		}
		for _, s := range r.GetSites() {
			if s.GetSite() == "edge" {
				return s
			}
		}
		return nil
	}
	awaitStored(ctx, t, stack, 20)
	var s *cefiotv1.CloudSite
	awaitState(ctx, t, "the edge site live in the cloud's list", func() (bool, string) {
		s = site()
		return s != nil && !s.GetStale() && s.GetLink() == cefiotv1.LinkState_LINK_STATE_UP && s.GetLastCommitTime() != nil, fmt.Sprint(s)
	})
	if s.GetVersions()["bridge"] == "" || time.Since(s.GetLastSeen().AsTime()) > 30*time.Second || s.GetBacklogRecords() < 0 {
		t.Fatalf("the edge site as the cloud knows it: %v", s)
	}
	t.Logf("edge: last seen %v ago, lag %d records, %d offsets lost, bridge %s",
		time.Since(s.GetLastSeen().AsTime()).Round(time.Millisecond), s.GetBacklogRecords(), s.GetGapOffsets(), s.GetVersions()["bridge"])

	// cefiotctl asks the cloud's sink, with the credentials its config
	// names.
	cmd := exec.CommandContext(ctx, filepath.Join(binDir(t), "cefiotctl"), "sites")
	cmd.Env = append(os.Environ(), "CEFIOT_CONFIG="+stack.ClientConfigPath())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "edge") || !strings.Contains(string(out), "live") {
		t.Errorf("cefiotctl sites: %v\n%s", err, out)
	}

	// The bridge dies: the site goes stale within 30 s.
	exits.expect("bridge")
	stack.StopService(ctx, "bridge")
	silent := time.Now()
	awaitState(ctx, t, "the edge site stale", func() (bool, string) {
		s = site()
		return s.GetStale(), fmt.Sprintf("last seen %v ago", time.Since(s.GetLastSeen().AsTime()).Round(time.Second))
	})
	took := time.Since(silent)
	t.Logf("shown stale %.1fs after its bridge stopped", took.Seconds())
	if took > 30*time.Second {
		t.Errorf("shown stale %v after the site fell silent, want within 30 s", took)
	}
	if err := stack.StartService("bridge"); err != nil {
		t.Fatal(err)
	}
	awaitState(ctx, t, "the edge site live again", func() (bool, string) {
		s = site()
		return !s.GetStale(), fmt.Sprintf("last seen %v ago", time.Since(s.GetLastSeen().AsTime()).Round(time.Second))
	})
}
