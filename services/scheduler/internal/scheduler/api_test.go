package scheduler

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/harness/etcdtest"
	"github.com/cefiot/cefiot/libs/harness/netx"
	"github.com/cefiot/cefiot/libs/harness/sitepki"
	"github.com/cefiot/cefiot/libs/logging"
	"github.com/cefiot/cefiot/libs/placement"
	"github.com/cefiot/cefiot/libs/tlsx"
	"github.com/cefiot/cefiot/libs/worker"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// Invalid admin calls are refused with InvalidArgument naming the field.
func TestAPIRefusesBadInputNamingTheField(t *testing.T) {
	_, cli := etcdtest.Start(t)
	keys, _ := placement.NewKeys("edge")
	s, _ := newScheduler(cli, Config{Site: "edge", ReplicaID: "s1", SessionTTL: time.Second, Resync: time.Second}, nil, prometheus.NewRegistry(), logging.Discard())
	a := &api{cli: cli, keys: keys, sched: s}
	ctx := context.Background()
	for name, tc := range map[string]struct {
		call  func() error
		field string
	}{
		"move without workload": {func() error { _, err := a.MoveWorkload(ctx, &cefiotv1.MoveWorkloadRequest{Node: "n"}); return err }, "workload"},
		"move without target": {func() error {
			_, err := a.MoveWorkload(ctx, &cefiotv1.MoveWorkloadRequest{Workload: "enrich"})
			return err
		}, "node"},
		"move with both": {func() error {
			_, err := a.MoveWorkload(ctx, &cefiotv1.MoveWorkloadRequest{Workload: "enrich", Node: "n", WorkerId: "w"})
			return err
		}, "worker_id"},
		"bad node name": {func() error { _, err := a.CordonNode(ctx, &cefiotv1.CordonNodeRequest{Node: "a/b"}); return err }, "node"},
		"empty spec":    {func() error { _, err := a.ApplySpec(ctx, &cefiotv1.ApplySpecRequest{}); return err }, "spec_yaml"},
		"spec bad kind": {func() error {
			_, err := a.ApplySpec(ctx, &cefiotv1.ApplySpecRequest{SpecYaml: "site: edge\nworkloads:\n - {name: x, kind: nope}\n"})
			return err
		}, "workloads[0].kind"},
		"spec for cloud": {func() error {
			_, err := a.ApplySpec(ctx, &cefiotv1.ApplySpecRequest{SpecYaml: "site: cloud\n"})
			return err
		}, "site"},
		"put no kind": {func() error {
			_, err := a.PutWorkload(ctx, &cefiotv1.PutWorkloadRequest{Workload: &cefiotv1.Workload{Name: "x"}})
			return err
		}, "workload.kind"},
		"put bad spread": {func() error {
			_, err := a.PutWorkload(ctx, &cefiotv1.PutWorkloadRequest{Workload: &cefiotv1.Workload{Name: "x", Kind: "enrich", SpreadBy: "a b"}})
			return err
		}, "workload.spread_by"},
		"get empty":        {func() error { _, err := a.GetWorkload(ctx, &cefiotv1.GetWorkloadRequest{}); return err }, "name"},
		"delete empty":     {func() error { _, err := a.DeleteWorkload(ctx, &cefiotv1.DeleteWorkloadRequest{Name: " "}); return err }, "name"},
		"audit bad result": {func() error { _, err := a.ListAudit(ctx, &cefiotv1.ListAuditRequest{Result: "maybe"}); return err }, "result"},
		"audit huge limit": {func() error { _, err := a.ListAudit(ctx, &cefiotv1.ListAuditRequest{Limit: 5000}); return err }, "limit"},
	} {
		err := tc.call()
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tc.field) {
			t.Errorf("%s: want InvalidArgument naming %q, got %v", name, tc.field, err)
		}
	}
	if _, err := a.ListAudit(ctx, &cefiotv1.ListAuditRequest{}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("the audit trail of a scheduler without Kafka: %v, want FailedPrecondition", err)
	}
	if _, err := a.MoveWorkload(ctx, &cefiotv1.MoveWorkloadRequest{Workload: "nothere", Node: "n"}); status.Code(err) != codes.NotFound {
		t.Errorf("move of an undeclared workload: %v", err)
	}
}

// The admin API over REST and gRPC: nodes, cordon, drain, move and the
// assignment watch, against a running scheduler and real workers.
func TestAdminCordonDrainMoveAndWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := runScheduler(ctx, t, "site: edge\nworkloads:\n - {name: 'capture:c1', kind: capture, params: {camera: c1, source: /v}}\n - {name: enrich, kind: enrich}\n")

	keys, _ := placement.NewKeys("edge")
	recs := map[string]*recorder{}
	for _, id := range []string{"n1", "n2", "n3"} {
		rec := newRecorder()
		recs[id] = rec
		w, err := worker.New(etcdtest.NewClient(t, s.etcd), worker.Config{
			Keys: keys, ID: "w-" + id, Node: id, Kinds: []string{"capture", "enrich"}, LeaseTTL: 2 * time.Second,
		}, rec.run, logging.Discard())
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = w.Run(ctx) }()
	}
	conn, err := grpc.NewClient(s.grpcAddr, s.as(t, sitepki.Operator).DialOption())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := cefiotv1.NewSchedulerServiceClient(conn)
	stream, err := c.WatchAssignments(ctx, &cefiotv1.WatchAssignmentsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan *cefiotv1.WatchAssignmentsResponse, 100)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				close(events)
				return
			}
			events <- m
		}
	}()
	owner := func(name string) string {
		for id, r := range recs {
			if _, ok := r.epoch(name); ok {
				return id
			}
		}
		return ""
	}
	all := []*recorder{recs["n1"], recs["n2"], recs["n3"]}
	waitFor(t, "both workloads run", func() bool { return owner("enrich") != "" && owner("capture:c1") != "" }, all...)

	// REST: nodes, and a move of a workload whose name has a colon.
	var nodes struct {
		Nodes []struct {
			Name      string   `json:"name"`
			Workloads []string `json:"workloads"`
		} `json:"nodes"`
	}
	getJSON(t, s.client(t, sitepki.Operator), s.url("/v1/nodes"), &nodes)
	if len(nodes.Nodes) != 3 {
		t.Fatalf("GET /v1/nodes: %+v", nodes)
	}
	from := owner("capture:c1")
	to := map[string]string{"n1": "n2", "n2": "n3", "n3": "n1"}[from]
	resp, err := s.client(t, sitepki.Operator).Post(s.url("/v1/workloads/capture:c1/move"), "application/json", strings.NewReader(`{"node":"`+to+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST move: %d %s", resp.StatusCode, body)
	}
	waitFor(t, "capture moved by REST", func() bool { return owner("capture:c1") == to }, all...)

	// Cordon: a cordoned node gets nothing new; drain moves what it has.
	target := owner("enrich")
	if _, err := c.CordonNode(ctx, &cefiotv1.CordonNodeRequest{Node: target}); err != nil {
		t.Fatal(err)
	}
	if owner("enrich") != target {
		t.Fatal("cordon moved a running workload")
	}
	dr, err := c.DrainNode(ctx, &cefiotv1.DrainNodeRequest{Node: target, Reason: "maintenance"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "enrich drained away", func() bool { o := owner("enrich"); return o != "" && o != target }, all...)
	if len(dr.GetMoved()) == 0 {
		t.Fatalf("drain response lists nothing moved: %v", dr)
	}
	ns, err := c.ListNodes(ctx, &cefiotv1.ListNodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns.GetNodes() {
		if n.GetName() == target && (!n.GetDrained() || len(n.GetWorkloads()) != 0) {
			t.Fatalf("drained node: %v", n)
		}
	}
	if _, err := c.UncordonNode(ctx, &cefiotv1.UncordonNodeRequest{Node: target}); err != nil {
		t.Fatal(err)
	}
	// A move to a node where nothing fits names the reason.
	if _, err := c.MoveWorkload(ctx, &cefiotv1.MoveWorkloadRequest{Workload: "enrich", Node: "nowhere"}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("move to an unknown node: %v", err)
	}

	// The watch saw the snapshot, the moves and the claims.
	deadline := time.After(10 * time.Second)
	var snapshot, assigned, claimed bool
	for !(snapshot && assigned && claimed) {
		select {
		case m, ok := <-events:
			if !ok {
				t.Fatal("watch ended")
			}
			snapshot = snapshot || m.GetSnapshot()
			for _, a := range m.GetAssignments() {
				assigned = assigned || (!m.GetSnapshot() && a.GetWorkload() == "capture:c1" && a.GetNode() == to)
			}
			claimed = claimed || (!m.GetSnapshot() && len(m.GetClaims()) > 0)
		case <-deadline:
			t.Fatalf("watch: snapshot %v, move seen %v, claim seen %v", snapshot, assigned, claimed)
		}
	}
}

func getJSON(t *testing.T, client *http.Client, url string, v any) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// testScheduler is a scheduler replica under test and its site's PKI.
type testScheduler struct {
	grpcAddr, httpAddr string
	pki                sitepki.Site
	etcd               *etcdtest.Member // the site's etcd (mutual TLS)
	cli                *clientv3.Client // a client of it
}

// as loads an identity of the scheduler's site.
func (s testScheduler) as(t *testing.T, component string) *tlsx.Source {
	t.Helper()
	src, err := s.pki.Load(component)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// client is an HTTPS client with an identity of the site.
func (s testScheduler) client(t *testing.T, component string) *http.Client {
	return s.as(t, component).HTTPClient()
}

func (s testScheduler) url(path string) string { return "https://" + s.httpAddr + path }

// runScheduler runs a scheduler replica of site edge with spec until ctx
// ends (the test fails if it returns an error), as deployed: with the
// site's certificates, on the site's etcd over mutual TLS.
func runScheduler(ctx context.Context, t *testing.T, spec string) testScheduler {
	t.Helper()
	dir := t.TempDir()
	site, err := sitepki.Make(filepath.Join(dir, "pki"), "edge")
	if err != nil {
		t.Fatal(err)
	}
	emb, cli := etcdtest.StartSecure(t, site)
	// Picked once etcd holds its ports, so that none is picked twice.
	grpcAddr, _ := netx.FreeAddr()
	httpAddr, _ := netx.FreeAddr()
	endpoint := emb.Endpoint()
	specPath := filepath.Join(dir, "spec.yaml")
	writeFile(t, specPath, spec)
	f := site.Files(access.Scheduler)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Site: "edge", ReplicaID: "s1", EtcdEndpoints: endpoint, SpecPath: specPath,
			SessionTTL: time.Second, Resync: time.Second, GRPCAddr: grpcAddr, HTTPAddr: httpAddr, LogLevel: "warn", LogFormat: "text",
			TLS: tlsx.Flags{Cert: f.Cert, Key: f.Key, CA: f.CA}})
	}()
	t.Cleanup(func() {
		<-ctx.Done() // the test cancels ctx before its cleanups run
		if err := <-done; err != nil {
			t.Errorf("scheduler: %v", err)
		}
	})
	return testScheduler{grpcAddr: grpcAddr, httpAddr: httpAddr, pki: site, etcd: emb, cli: cli}
}
