package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cefiot/cefiot/libs/audit"
	"github.com/cefiot/cefiot/libs/harness/localstack"
	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/libs/tlsx"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// checkAuditTrail acts on the edge site's admin APIs as the operator and as
// a viewer, allowed, refused and failing, over gRPC and REST, and reads
// every one of those calls back from the site's audit topic with the
// operator's own credentials (as kcat would): who, role, what, on what,
// from where and with which result.
func checkAuditTrail(ctx context.Context, t *testing.T, stack *localstack.Stack) {
	t.Helper()
	since := time.Now().Add(-time.Second)
	operator := schedulerClient(t, stack, "scheduler-edge")
	viewerID, err := stack.Identity(localstack.Viewer)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(stack.SchedulerGRPC("scheduler-edge"), viewerID.DialOption())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	viewer := cefiotv1.NewSchedulerServiceClient(conn)
	bridgeConn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", stack.Config().Ports.BridgeGRPC), stack.Operator().DialOption())
	if err != nil {
		t.Fatal(err)
	}
	defer bridgeConn.Close()

	if _, err := operator.CordonNode(ctx, &cefiotv1.CordonNodeRequest{Node: "local"}); err != nil {
		t.Fatal(err)
	}
	if _, err := operator.UncordonNode(ctx, &cefiotv1.UncordonNodeRequest{Node: "local"}); err != nil {
		t.Fatal(err)
	}
	if _, err := viewer.CordonNode(ctx, &cefiotv1.CordonNodeRequest{Node: "local"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("the viewer cordons: %v, want PermissionDenied", err)
	}
	if _, err := cefiotv1.NewBridgeServiceClient(bridgeConn).SetRateLimit(ctx, &cefiotv1.SetRateLimitRequest{BytesPerSecond: -1}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a negative rate limit: %v, want InvalidArgument", err)
	}
	// A page of another origin, through the operator's browser.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, stack.HTTP("scheduler-edge")+"/v1/nodes/local/drain", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "https://evil.example")
	resp, err := stack.OperatorHTTP().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a cross-origin drain: HTTP %d, want 403", resp.StatusCode)
	}

	op, vw := "spiffe://edge/"+localstack.Operator, "spiffe://edge/"+localstack.Viewer
	want := []audit.Record{
		{Who: op, Role: "operator", Service: "scheduler", Action: cefiotv1.SchedulerService_CordonNode_FullMethodName, Target: "node=local", Result: audit.ResultOK, Code: "OK"},
		{Who: op, Role: "operator", Service: "scheduler", Action: cefiotv1.SchedulerService_UncordonNode_FullMethodName, Target: "node=local", Result: audit.ResultOK, Code: "OK"},
		{Who: vw, Role: "viewer", Service: "scheduler", Action: cefiotv1.SchedulerService_CordonNode_FullMethodName, Target: "node=local", Result: audit.ResultRefused, Code: "PermissionDenied"},
		{Who: op, Role: "operator", Service: "bridge", Action: cefiotv1.BridgeService_SetRateLimit_FullMethodName, Target: "bytes_per_second=-1", Result: audit.ResultFailed, Code: "InvalidArgument"},
		{Who: op, Role: "operator", Service: "scheduler", Action: "POST /v1/nodes/local/drain", Result: audit.ResultRefused, Code: "403"},
	}
	files := stack.PKI("edge").Files(localstack.Operator)
	reader := kafkax.Conn{Bootstrap: stack.Edge.BootstrapServers(), TLS: &tlsx.Files{Cert: files.Cert, Key: files.Key, CA: files.CA}}
	got := readAudit(ctx, t, reader, since, len(want), func(rs []audit.Record) bool { return len(missing(want, rs)) == 0 })
	if m := missing(want, got); len(m) > 0 {
		t.Fatalf("the audit trail lacks %d records:\n%s\nit holds:\n%s", len(m), describeRecords(m), describeRecords(got))
	}
	for _, r := range got {
		if r.Site != "edge" || r.From == "" || r.Time.Before(since) {
			t.Errorf("record without site, address or time: %+v", r)
		}
	}
	t.Logf("the audit trail holds all %d calls (read as %s)", len(want), op)

	// The scheduler serves the trail newest first, filtered, to operators.
	listed, err := operator.ListAudit(ctx, &cefiotv1.ListAuditRequest{Action: "CordonNode"})
	if err != nil {
		t.Fatal(err)
	}
	rs := listed.GetRecords()
	if len(rs) < 2 || rs[0].GetWho() != vw || rs[0].GetResult() != audit.ResultRefused || rs[1].GetWho() != op || rs[1].GetResult() != audit.ResultOK {
		t.Errorf("ListAudit(action=CordonNode) = %v: want the viewer's refused cordon, then the operator's", rs)
	}
	for i := 1; i < len(rs); i++ {
		if rs[i].GetTime().AsTime().After(rs[i-1].GetTime().AsTime()) {
			t.Errorf("ListAudit is not newest first at %d", i)
		}
	}
	refused, err := operator.ListAudit(ctx, &cefiotv1.ListAuditRequest{Result: audit.ResultRefused, Who: "viewer/"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range refused.GetRecords() {
		if r.GetResult() != audit.ResultRefused || !strings.Contains(r.GetWho(), "viewer/") {
			t.Errorf("filtered ListAudit returned %v", r)
		}
	}
	if len(refused.GetRecords()) == 0 {
		t.Error("ListAudit(result=refused, who=viewer/) is empty")
	}
	if _, err := viewer.ListAudit(ctx, &cefiotv1.ListAuditRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a viewer reads the audit trail: %v, want PermissionDenied", err)
	}

	// And so does cefiotctl, with the credentials its config names.
	cmd := exec.CommandContext(ctx, filepath.Join(binDir(t), "cefiotctl"), "audit", "-action", "CordonNode", "-result", "refused")
	cmd.Env = append(os.Environ(), "CEFIOT_CONFIG="+stack.ClientConfigPath())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), localstack.Viewer) || !strings.Contains(string(out), "refused PermissionDenied") {
		t.Errorf("cefiotctl audit: %v\n%s", err, out)
	}
}

// readAudit reads the audit topic from the start until done holds for the
// records at or after since, or 60 s pass.
func readAudit(ctx context.Context, t *testing.T, conn kafkax.Conn, since time.Time, atLeast int, done func([]audit.Record) bool) []audit.Record {
	t.Helper()
	c, err := kafka.NewConsumer(conn.Config(map[string]any{"group.id": "audit-check", "auto.offset.reset": "earliest", "enable.auto.commit": false}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	topic := pipeline.TopicAudit
	if err := c.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: kafka.OffsetBeginning}}); err != nil {
		t.Fatal(err)
	}
	var out []audit.Record
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		m, err := c.ReadMessage(time.Second)
		if err != nil {
			if ke, ok := err.(kafka.Error); ok && ke.Code() == kafka.ErrTimedOut {
				if len(out) >= atLeast && done(out) {
					return out
				}
				continue
			}
			t.Fatalf("reading the audit topic: %v", err)
		}
		r, err := audit.Decode(m.Value)
		if err != nil {
			t.Fatalf("audit record %q: %v", m.Value, err)
		}
		if !r.Time.Before(since) {
			out = append(out, r)
		}
		if len(out) >= atLeast && done(out) {
			return out
		}
	}
	return out
}

// missing are the records of want no record of got matches (in the fields
// want sets).
func missing(want, got []audit.Record) []audit.Record {
	var out []audit.Record
	for _, w := range want {
		found := false
		for _, g := range got {
			if g.Who == w.Who && g.Role == w.Role && g.Service == w.Service && g.Action == w.Action &&
				(w.Target == "" || g.Target == w.Target) && g.Result == w.Result && g.Code == w.Code {
				found = true
			}
		}
		if !found {
			out = append(out, w)
		}
	}
	return out
}

func describeRecords(rs []audit.Record) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "  %s %s %s %s [%s] %s %s\n", r.Who, r.Role, r.Service, r.Action, r.Target, r.Result, r.Code)
	}
	return b.String()
}
