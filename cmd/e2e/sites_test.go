package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/cefiot/cefiot/libs/console"
	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
	"github.com/cefiot/cefiot/libs/harness/localstack"
	"github.com/cefiot/cefiot/libs/logging"
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

	checkConsoleCloudViewWithoutEdge(ctx, t, stack)

	// The report failing waits print: one line per service, each stage
	// registered and counting.
	report := stack.PipelineReport(ctx)
	for _, svc := range []string{"capture", "enrich", "bridge", "sink"} {
		if !strings.Contains(report, "\n"+svc+": registered=true") && !strings.HasPrefix(report, svc+": registered=true") {
			t.Errorf("pipeline report has no live line for %s:\n%s", svc, report)
		}
	}

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

// checkConsoleCloudViewWithoutEdge serves a console whose edge targets
// answer nothing (a site behind NAT: its admin API cannot be reached from
// the cloud) and reads its first snapshot: the edge site is still listed,
// live, from the sink's view of the bridge's reports.
func checkConsoleCloudViewWithoutEdge(ctx context.Context, t *testing.T, stack *localstack.Stack) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nowhere := "https://" + l.Addr().String()
	_ = l.Close() // connections to it are refused from now on
	targets := []console.Target{
		{Name: "scheduler-cloud", URL: stack.HTTP("scheduler-cloud")}, {Name: "sink", URL: stack.HTTP("sink")},
		{Name: "scheduler-edge", URL: nowhere}, {Name: "capture", URL: nowhere}, {Name: "enrich", URL: nowhere}, {Name: "bridge", URL: nowhere},
	}
	h, err := console.New(targets, logging.Discard(), stack.OperatorHTTP())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()
	snap := firstSnapshot(ctx, t, srv.URL+"/api/stream")
	for _, s := range snap.Sites {
		if s.Site == "edge" {
			t.Fatalf("the console reached the edge scheduler it was told is unreachable: %+v", s)
		}
	}
	sink := snap.Services["sink"]
	if sink == nil || sink.Error != "" {
		t.Fatalf("the console's view of the cloud sink: %+v", sink)
	}
	var listed struct {
		Site     string    `json:"site"`
		Stale    bool      `json:"stale"`
		LastSeen time.Time `json:"lastSeen"`
	}
	var sites []json.RawMessage
	if err := json.Unmarshal(sink.Sites, &sites); err != nil {
		t.Fatalf("sink sites in the console's snapshot: %v: %s", err, sink.Sites)
	}
	found := false
	for _, raw := range sites {
		if err := json.Unmarshal(raw, &listed); err == nil && listed.Site == "edge" {
			found = !listed.Stale
			break
		}
	}
	if !found {
		t.Fatalf("the console's cloud view does not list the edge site live with no edge admin API reachable: %s", sink.Sites)
	}
	t.Logf("console, with every edge admin API unreachable: the edge site listed live from the cloud's data (last seen %v ago)",
		time.Since(listed.LastSeen).Round(time.Millisecond))
}

// firstSnapshot reads the console's event stream up to its first
// snapshot.
func firstSnapshot(ctx context.Context, t *testing.T, streamURL string) console.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, streamURL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<22)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "snapshot":
			var s console.Snapshot
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &s); err != nil {
				t.Fatalf("console snapshot is not JSON: %v", err)
			}
			return s
		}
	}
	t.Fatalf("the console's stream ended without a snapshot: %v", sc.Err())
	return console.Snapshot{}
}
