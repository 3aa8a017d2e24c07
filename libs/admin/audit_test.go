package admin

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/cefiot/cefiot/libs/audit"
	"github.com/cefiot/cefiot/libs/pki"
	"github.com/cefiot/cefiot/libs/tlsx"
)

type memSink struct {
	mu      sync.Mutex
	records []audit.Record
}

func (m *memSink) Append(_ context.Context, r audit.Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.records = append(m.records, r)
}

// peerOf is a call context from component of site over TLS.
func peerOf(t *testing.T, site, component string) context.Context {
	t.Helper()
	ca, err := pki.NewCA(site, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	is, err := ca.Issue(component, nil, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	state := tls.ConnectionState{PeerCertificates: []*x509.Certificate{is.Cert}}
	return peer.NewContext(context.Background(), &peer.Peer{
		Addr:     &net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 40000},
		AuthInfo: credentials.TLSInfo{State: state},
	})
}

// TestAuditInterceptorRecordsChangesOnly: a state-changing call is recorded
// with its caller, role, target, address and result, allowed, refused or
// failed; a read is not recorded.
func TestAuditInterceptorRecordsChangesOnly(t *testing.T) {
	sink := &memSink{}
	const change, read = "/cefiot.v1.X/Drain", "/cefiot.v1.X/List"
	s := &Server{service: "scheduler", site: "edge", audit: sink,
		policy: tlsx.Policy{Site: "edge", Rules: map[string][]string{"/cefiot.v1.X/": {"*"}, change: {"operator/*"}}}}
	call := func(ctx context.Context, method string, err error) {
		_, _ = s.auditInterceptor()(ctx, wrapperspb.String("n1"), &grpc.UnaryServerInfo{FullMethod: method},
			func(context.Context, any) (any, error) { return nil, err })
	}
	operator, viewer := peerOf(t, "edge", "operator/alice"), peerOf(t, "edge", "viewer/bob")
	call(operator, change, nil)
	call(viewer, change, status.Error(codes.PermissionDenied, "viewer/bob may not"))
	call(operator, change, status.Error(codes.NotFound, "no node n1"))
	call(operator, read, nil)
	call(context.Background(), change, status.Error(codes.Unauthenticated, "no peer"))

	want := []struct{ who, role, result, code string }{
		{"spiffe://edge/operator/alice", "operator", audit.ResultOK, "OK"},
		{"spiffe://edge/viewer/bob", "viewer", audit.ResultRefused, "PermissionDenied"},
		{"spiffe://edge/operator/alice", "operator", audit.ResultFailed, "NotFound"},
		{"unauthenticated", "none", audit.ResultRefused, "Unauthenticated"},
	}
	if len(sink.records) != len(want) {
		t.Fatalf("%d records, want %d (a read is not audited): %+v", len(sink.records), len(want), sink.records)
	}
	for i, w := range want {
		r := sink.records[i]
		if r.Who != w.who || r.Role != w.role || r.Result != w.result || r.Code != w.code || r.Action != change ||
			r.Target != "value=n1" || r.Service != "scheduler" || r.Site != "edge" {
			t.Errorf("record %d = %+v, want %+v", i, r, w)
		}
	}
	if sink.records[0].From != "10.0.0.7:40000" {
		t.Errorf("from = %q", sink.records[0].From)
	}
}

// TestAuditRefusalsBeforeGRPC: a state-changing HTTP request refused before
// it reached a gRPC method is recorded; one the gateway passed on is not
// (its method's interceptor records it); reads never are.
func TestAuditRefusalsBeforeGRPC(t *testing.T) {
	sink := &memSink{}
	s := &Server{service: "bridge", site: "edge", audit: sink}
	refuse := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusForbidden) })
	passOn := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		markReached(r)
		http.Error(w, "denied by the method", http.StatusForbidden)
	})
	for _, tc := range []struct {
		method string
		h      http.Handler
	}{{"POST", refuse}, {"POST", passOn}, {"GET", refuse}} {
		r := httptest.NewRequest(tc.method, "/v1/bridge/pause", strings.NewReader("{}"))
		s.auditRefusals(tc.h).ServeHTTP(httptest.NewRecorder(), r)
	}
	if len(sink.records) != 1 {
		t.Fatalf("%d records, want 1: %+v", len(sink.records), sink.records)
	}
	if r := sink.records[0]; r.Action != "POST /v1/bridge/pause" || r.Result != audit.ResultRefused || r.Code != "403" || r.Who != "unauthenticated" {
		t.Errorf("record %+v", r)
	}
}

type inProcessAddr struct{}

func (inProcessAddr) Network() string { return tlsx.InProcessNetwork }
func (inProcessAddr) String() string  { return "in-process" }

// TestAuditNamesThePersonBehindTheConsole: a call the gateway passes on for
// the console acting for a person is recorded as that person, via the
// console, from the browser's address.
func TestAuditNamesThePersonBehindTheConsole(t *testing.T) {
	sink := &memSink{}
	const change = "/cefiot.v1.X/Drain"
	s := &Server{service: "scheduler", site: "edge", audit: sink, policy: tlsx.Policy{Site: "edge", Rules: map[string][]string{change: {"operator/*"}}}}
	gateway := peerOf(t, "edge", "scheduler")
	p, _ := peer.FromContext(gateway)
	p.Addr = inProcessAddr{}
	ctx := metadata.NewIncomingContext(peer.NewContext(context.Background(), p), metadata.Pairs(
		tlsx.ForwardedCallerKey, "spiffe://edge/operator/alice", forwardedViaKey, "spiffe://edge/console", forwardedAddrKey, "192.0.2.9:5000"))
	_, _ = s.auditInterceptor()(ctx, wrapperspb.String("n1"), &grpc.UnaryServerInfo{FullMethod: change},
		func(context.Context, any) (any, error) { return nil, nil })
	if len(sink.records) != 1 {
		t.Fatalf("%d records", len(sink.records))
	}
	if r := sink.records[0]; r.Who != "spiffe://edge/operator/alice" || r.Via != "spiffe://edge/console" || r.From != "192.0.2.9:5000" || r.Role != "operator" {
		t.Errorf("record %+v", r)
	}
}
