package scheduler

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/etcdx"
	"github.com/cefiot/cefiot/libs/harness/sitepki"
	"github.com/cefiot/cefiot/libs/placement"
	"github.com/cefiot/cefiot/libs/tlsx"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// TestAdminPortsRefuseStrangers attacks both admin ports of a real
// scheduler: a plaintext client, a client of an impostor CA that claims the
// same site, and valid identities without the right (a viewer, a worker)
// are each refused; an operator is not.
func TestAdminPortsRefuseStrangers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := runScheduler(ctx, t, "site: edge\nworkloads:\n - {name: enrich, kind: enrich}\n")
	foreignOperator := impostorIdentity(t, sitepki.Operator)
	callCtx, callCancel := context.WithTimeout(ctx, 30*time.Second)
	defer callCancel()
	schedulerAs := func(cred grpc.DialOption) cefiotv1.SchedulerServiceClient {
		conn, err := grpc.NewClient(s.grpcAddr, cred)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return cefiotv1.NewSchedulerServiceClient(conn)
	}
	operator := schedulerAs(s.as(t, sitepki.Operator).DialOption())
	// The operator's first call waits for the scheduler to listen.
	if _, err := operator.ListNodes(callCtx, &cefiotv1.ListNodesRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("operator ListNodes: %v", err)
	}

	t.Run("grpc", func(t *testing.T) {
		for _, tc := range []struct {
			who  string
			cli  cefiotv1.SchedulerServiceClient
			call func(cefiotv1.SchedulerServiceClient) error
			want codes.Code
		}{
			{"plaintext", schedulerAs(grpc.WithTransportCredentials(insecure.NewCredentials())), listNodes, codes.Unavailable},
			{"impostor CA", schedulerAs(foreignOperator.DialOption()), listNodes, codes.Unavailable},
			{"viewer cordons", schedulerAs(s.as(t, sitepki.Viewer).DialOption()), cordon, codes.PermissionDenied},
			{"viewer applies a spec", schedulerAs(s.as(t, sitepki.Viewer).DialOption()), applySpec, codes.PermissionDenied},
			{"worker lists nodes", schedulerAs(s.as(t, access.Worker("enrich")).DialOption()), listNodes, codes.PermissionDenied},
			{"worker moves", schedulerAs(s.as(t, access.Worker("enrich")).DialOption()), move, codes.PermissionDenied},
			{"viewer lists nodes", schedulerAs(s.as(t, sitepki.Viewer).DialOption()), listNodes, codes.OK},
			// Past authorization: the node is unknown.
			{"operator cordons", operator, cordon, codes.NotFound},
			{"viewer reads the audit trail", schedulerAs(s.as(t, sitepki.Viewer).DialOption()), listAudit, codes.PermissionDenied},
			{"console reads the audit trail by itself", schedulerAs(s.as(t, access.Console).DialOption()), listAudit, codes.PermissionDenied},
			// Past authorization: this scheduler has no Kafka.
			{"operator reads the audit trail", operator, listAudit, codes.FailedPrecondition},
			// Replacing the pipeline is an administrator's.
			{"operator applies a spec", operator, applySpec, codes.PermissionDenied},
			{"operator defines a workload", operator, putPlain, codes.PermissionDenied},
			{"operator deletes a workload", operator, deleteEnrich, codes.PermissionDenied},
			{"operator puts a handoff copy", operator, putRemoteCopy, codes.OK},
			{"admin defines a workload", schedulerAs(s.as(t, sitepki.Admin).DialOption()), putPlain, codes.OK},
			// Past authorization: the spec is empty.
			{"admin applies a spec", schedulerAs(s.as(t, sitepki.Admin).DialOption()), applySpec, codes.InvalidArgument},
		} {
			err := tc.call(tc.cli)
			if got := status.Code(err); got != tc.want {
				t.Errorf("%s: got %v (%v), want %v", tc.who, got, err, tc.want)
			}
		}
	})

	t.Run("https", func(t *testing.T) {
		viewer := s.client(t, sitepki.Viewer)
		anonymous, err := s.pki.AnonymousClient()
		if err != nil {
			t.Fatal(err)
		}
		forged := func(r *http.Request) {
			r.Header.Set("Grpc-Metadata-"+tlsx.ForwardedCallerKey, "spiffe://edge/operator/local")
		}
		for _, tc := range []struct {
			who, method, path string
			client            *http.Client
			edit              func(*http.Request)
			want              int // 0: the connection is refused
		}{
			{"no certificate", "GET", "/v1/nodes", anonymous, nil, http.StatusUnauthorized},
			{"no certificate, probe", "GET", "/healthz", anonymous, nil, http.StatusOK},
			{"impostor CA", "GET", "/v1/nodes", foreignOperator.HTTPClient(), nil, 0},
			{"viewer drains", "POST", "/v1/nodes/local/drain", viewer, nil, http.StatusForbidden},
			{"viewer forges the gateway's header", "POST", "/v1/nodes/local/drain", viewer, forged, http.StatusForbidden},
			{"viewer profiles", "GET", "/debug/pprof/", viewer, nil, http.StatusForbidden},
			{"worker reads metrics", "GET", "/metrics", s.client(t, access.Worker("enrich")), nil, http.StatusForbidden},
			{"viewer reads metrics", "GET", "/metrics", viewer, nil, http.StatusOK},
			{"viewer lists nodes", "GET", "/v1/nodes", viewer, nil, http.StatusOK},
			{"operator profiles", "GET", "/debug/pprof/", s.client(t, sitepki.Operator), nil, http.StatusOK},
			// Past authorization: the node is unknown.
			{"operator drains", "POST", "/v1/nodes/local/drain", s.client(t, sitepki.Operator), nil, http.StatusNotFound},
			// A web page the operator opens cannot use the operator's
			// certificate: another origin, a form, a foreign host name.
			{"operator's browser, from another origin", "POST", "/v1/nodes/local/drain", s.client(t, sitepki.Operator), header("Origin", "https://evil.example"), http.StatusForbidden},
			{"operator's browser, a cross-site fetch", "POST", "/v1/nodes/local/drain", s.client(t, sitepki.Operator), header("Sec-Fetch-Site", "cross-site"), http.StatusForbidden},
			{"operator's browser, a form", "POST", "/v1/nodes/local/drain", s.client(t, sitepki.Operator), header("Content-Type", "application/x-www-form-urlencoded"), http.StatusUnsupportedMediaType},
			{"operator's browser, text/plain", "POST", "/v1/nodes/local/drain", s.client(t, sitepki.Operator), header("Content-Type", "text/plain"), http.StatusUnsupportedMediaType},
			{"operator under a foreign host name", "POST", "/v1/nodes/local/drain", s.client(t, sitepki.Operator), func(r *http.Request) { r.Host = "evil.example" }, http.StatusMisdirectedRequest},
			{"operator's browser, same origin", "POST", "/v1/nodes/local/drain", s.client(t, sitepki.Operator), header("Origin", "https://"+s.httpAddr), http.StatusNotFound},
			// The console acts only for a person, whose role decides.
			{"console drains by itself", "POST", "/v1/nodes/local/drain", s.client(t, access.Console), nil, http.StatusForbidden},
			{"console drains for a viewer", "POST", "/v1/nodes/local/drain", s.client(t, access.Console), header(access.OnBehalfOf, sitepki.Viewer), http.StatusForbidden},
			{"console drains for an operator", "POST", "/v1/nodes/local/drain", s.client(t, access.Console), header(access.OnBehalfOf, sitepki.Operator), http.StatusNotFound},
			{"console lists for a viewer", "GET", "/v1/nodes", s.client(t, access.Console), header(access.OnBehalfOf, sitepki.Viewer), http.StatusOK},
			{"a viewer claims to act for an operator", "POST", "/v1/nodes/local/drain", viewer, header(access.OnBehalfOf, sitepki.Operator), http.StatusForbidden},
			{"console acts for a bad name", "POST", "/v1/nodes/local/drain", s.client(t, access.Console), header(access.OnBehalfOf, "Operator/../x"), http.StatusBadRequest},
		} {
			req, _ := http.NewRequestWithContext(callCtx, tc.method, s.url(tc.path), strings.NewReader("{}"))
			req.Header.Set("Content-Type", "application/json")
			if tc.edit != nil {
				tc.edit(req)
			}
			resp, err := tc.client.Do(req)
			switch {
			case tc.want == 0 && err == nil:
				resp.Body.Close()
				t.Errorf("%s: %s %s answered HTTP %d, want the handshake refused", tc.who, tc.method, tc.path, resp.StatusCode)
			case tc.want != 0 && err != nil:
				t.Errorf("%s: %s %s: %v", tc.who, tc.method, tc.path, err)
			case tc.want != 0:
				resp.Body.Close()
				if resp.StatusCode != tc.want {
					t.Errorf("%s: %s %s: HTTP %d, want %d", tc.who, tc.method, tc.path, resp.StatusCode, tc.want)
				}
			}
		}
		// Plain HTTP on the HTTPS port gets no API answer.
		if resp, err := http.Get("http://" + s.httpAddr + "/v1/nodes"); err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("plain HTTP: HTTP %d, want 400 (an HTTP request to an HTTPS server)", resp.StatusCode)
			}
		}
	})
}

// TestEtcdRefusesStrangers attacks the site's etcd as the scheduler runs
// it (mutual TLS on the client port): a plaintext client and a client of an
// impostor CA get no answer; the scheduler's identity does.
func TestEtcdRefusesStrangers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := runScheduler(ctx, t, "site: edge\nworkloads:\n - {name: enrich, kind: enrich}\n")
	foreign := impostorIdentity(t, access.Scheduler)
	for _, tc := range []struct {
		who  string
		conf *tls.Config
	}{{"plaintext", nil}, {"impostor CA", foreign.ClientConfig()}} {
		connectCtx, connectCancel := context.WithTimeout(ctx, 3*time.Second)
		cli, err := etcdx.Connect(connectCtx, []string{s.etcd.Endpoint()}, tc.conf)
		connectCancel()
		if err == nil {
			cli.Close()
			t.Errorf("%s: etcd answered", tc.who)
		}
	}
	if _, err := s.cli.Get(ctx, "probe"); err != nil {
		t.Errorf("the scheduler's identity: %v", err)
	}

	// A valid identity without the right: a worker registers and claims,
	// but may not declare a workload, assign one or mark a spec applied;
	// a viewer (no etcd user) may not even read.
	keys, _ := placement.NewKeys("edge")
	worker := etcdAs(ctx, t, s, access.Worker("enrich"))
	if _, err := worker.Put(ctx, keys.Worker("enrich-x"), "{}"); err != nil {
		t.Errorf("a worker registering: %v", err)
	}
	for _, key := range []string{keys.Workload("evil"), keys.Assignment("enrich"), keys.SpecApplied()} {
		if _, err := worker.Put(ctx, key, "{}"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
			t.Errorf("a worker writing %s: %v, want permission denied", key, err)
		}
	}
	if _, err := etcdAs(ctx, t, s, sitepki.Viewer).Get(ctx, keys.Prefix(), clientv3.WithPrefix()); err == nil {
		t.Error("a viewer read the site's keys")
	}
}

// impostorIdentity is component's key pair from an impostor CA that claims
// site edge: every server of the real site must refuse it.
func impostorIdentity(t *testing.T, component string) *tlsx.Source {
	t.Helper()
	impostor, err := sitepki.Foreign(filepath.Join(t.TempDir(), "impostor"), "edge")
	if err != nil {
		t.Fatal(err)
	}
	src, err := impostor.Load(component)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// etcdAs is a client of the site's etcd with component's certificate (no
// check that it answers: a refused identity gets its error per request).
func etcdAs(ctx context.Context, t *testing.T, s testScheduler, component string) *clientv3.Client {
	t.Helper()
	src := s.as(t, component)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.etcd.Endpoint()}, TLS: src.ClientConfig(), DialTimeout: 5 * time.Second, Context: ctx})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func listNodes(c cefiotv1.SchedulerServiceClient) error {
	return within10s(func(ctx context.Context) error { _, err := c.ListNodes(ctx, &cefiotv1.ListNodesRequest{}); return err })
}

func cordon(c cefiotv1.SchedulerServiceClient) error {
	return within10s(func(ctx context.Context) error {
		_, err := c.CordonNode(ctx, &cefiotv1.CordonNodeRequest{Node: "local", Reason: "test"})
		return err
	})
}

func applySpec(c cefiotv1.SchedulerServiceClient) error {
	return within10s(func(ctx context.Context) error { _, err := c.ApplySpec(ctx, &cefiotv1.ApplySpecRequest{}); return err })
}

func move(c cefiotv1.SchedulerServiceClient) error {
	return within10s(func(ctx context.Context) error {
		_, err := c.MoveWorkload(ctx, &cefiotv1.MoveWorkloadRequest{Workload: "enrich", Node: "x"})
		return err
	})
}

func within10s(call func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return call(ctx)
}

// header sets one request header.
func header(key, value string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set(key, value) }
}

func listAudit(c cefiotv1.SchedulerServiceClient) error {
	_, err := c.ListAudit(context.Background(), &cefiotv1.ListAuditRequest{})
	return err
}

func putPlain(c cefiotv1.SchedulerServiceClient) error {
	_, err := c.PutWorkload(context.Background(), &cefiotv1.PutWorkloadRequest{Workload: &cefiotv1.Workload{Name: "extra", Kind: "enrich"}})
	return err
}

func putRemoteCopy(c cefiotv1.SchedulerServiceClient) error {
	_, err := c.PutWorkload(context.Background(), &cefiotv1.PutWorkloadRequest{Workload: &cefiotv1.Workload{Name: "enrich.cloud", Kind: "enrich", HomeSite: "cloud"}})
	return err
}

func deleteEnrich(c cefiotv1.SchedulerServiceClient) error {
	_, err := c.DeleteWorkload(context.Background(), &cefiotv1.DeleteWorkloadRequest{Name: "enrich"})
	return err
}
