package tlsx

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/cefiot/cefiot/libs/pki"
)

// writeIdentity writes component's key pair from ca into dir and returns
// its Files.
func writeIdentity(t *testing.T, dir string, ca *pki.CA, component string) Files {
	t.Helper()
	is, err := ca.Issue(component, []string{"127.0.0.1", "localhost"}, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	name := strings.ReplaceAll(component, "/", "-")
	f := Files{Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key"), CA: filepath.Join(dir, "ca-"+ca.Site+".crt")}
	for p, b := range map[string][]byte{f.Cert: is.CertPEM, f.Key: is.KeyPEM, f.CA: ca.CertPEM()} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func load(t *testing.T, f Files) *Source {
	t.Helper()
	s, err := Load(f, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// server runs a gRPC health service behind mutual TLS where only
// operators may call Check.
func server(t *testing.T, src *Source) string {
	t.Helper()
	pol := Policy{Site: src.Identity().Site, Rules: map[string][]string{"/grpc.health.v1.Health/Check": {"operator/*"}}}
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(src.ServerConfig())),
		grpc.ChainUnaryInterceptor(pol.UnaryInterceptor()), grpc.ChainStreamInterceptor(pol.StreamInterceptor()))
	healthpb.RegisterHealthServer(g, health.NewServer())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(l) }()
	t.Cleanup(g.Stop)
	return l.Addr().String()
}

func check(t *testing.T, addr string, creds credentials.TransportCredentials) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

func TestListenerRefusesStrangersAndWrongRoles(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.NewCA("door", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := pki.NewCA("door", time.Now()) // same site name, another key
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA("yard", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	addr := server(t, load(t, writeIdentity(t, dir, ca, "scheduler")))

	operator := load(t, writeIdentity(t, dir, ca, "operator/alice"))
	if err := check(t, addr, credentials.NewTLS(operator.ClientConfig())); err != nil {
		t.Fatalf("operator of the site refused: %v", err)
	}
	worker := load(t, writeIdentity(t, dir, ca, "worker/enrich"))
	if err := check(t, addr, credentials.NewTLS(worker.ClientConfig())); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("worker calling an operator method: %v, want PermissionDenied", err)
	}
	if err := check(t, addr, insecure.NewCredentials()); err == nil || status.Code(err) != codes.Unavailable {
		t.Fatalf("plaintext client: %v, want refused (Unavailable)", err)
	}
	fdir := filepath.Join(dir, "foreign")
	if err := os.Mkdir(fdir, 0o700); err != nil {
		t.Fatal(err)
	}
	mallory := load(t, writeIdentity(t, fdir, foreign, "operator/mallory"))
	if err := check(t, addr, credentials.NewTLS(mallory.ClientConfig())); err == nil {
		t.Fatal("a client certificate from a foreign CA was accepted")
	}
	odir := filepath.Join(dir, "yard")
	if err := os.Mkdir(odir, 0o700); err != nil {
		t.Fatal(err)
	}
	bob := load(t, writeIdentity(t, odir, other, "operator/bob"))
	if err := check(t, addr, credentials.NewTLS(bob.ClientConfig())); err == nil {
		t.Fatal("an operator of another site was accepted")
	}
	// A client without any certificate, trusting the server: refused at
	// the handshake.
	anon := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the attacker's side
	if err := check(t, addr, credentials.NewTLS(anon)); err == nil {
		t.Fatal("a client without a certificate was accepted")
	}
}

func TestPolicyRefusesOtherSitesAndPicksTheLongestRule(t *testing.T) {
	p := Policy{Site: "door", Rules: map[string][]string{
		"/cefiot.v1.SchedulerService/":          {"operator/*", "worker/*"},
		"/cefiot.v1.SchedulerService/DrainNode": {"operator/*"},
	}}
	cases := []struct {
		method string
		id     pki.Identity
		ok     bool
	}{
		{"/cefiot.v1.SchedulerService/ListWorkers", pki.Identity{Site: "door", Component: "worker/enrich"}, true},
		{"/cefiot.v1.SchedulerService/DrainNode", pki.Identity{Site: "door", Component: "worker/enrich"}, false},
		{"/cefiot.v1.SchedulerService/DrainNode", pki.Identity{Site: "door", Component: "operator/alice"}, true},
		{"/cefiot.v1.SchedulerService/DrainNode", pki.Identity{Site: "yard", Component: "operator/bob"}, false},
		{"/grpc.health.v1.Health/Check", pki.Identity{Site: "door", Component: "operator/alice"}, false}, // no default
	}
	for _, c := range cases {
		err := p.Check(c.method, c.id)
		if (err == nil) != c.ok {
			t.Errorf("%s by %s: %v, want allowed=%v", c.method, c.id, err, c.ok)
		}
		if err != nil && (status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), c.id.String())) {
			t.Errorf("refusal %v does not name the caller with PermissionDenied", err)
		}
	}
}

// Rotating the server's key pair and the site's trust bundle takes effect
// on the next handshake, without a restart.
func TestRotationWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.NewCA("door", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	srvFiles := writeIdentity(t, dir, ca, "scheduler")
	srv, err := Load(srvFiles, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(srv.expiry); int64(got) != srv.NotAfter().Unix() {
		t.Fatalf("expiry metric %v, want %d", got, srv.NotAfter().Unix())
	}
	addr := server(t, srv)
	cdir := filepath.Join(dir, "client")
	if err := os.Mkdir(cdir, 0o700); err != nil {
		t.Fatal(err)
	}
	cli := load(t, writeIdentity(t, cdir, ca, "operator/alice"))
	served := func() string {
		conn, err := tls.Dial("tcp", addr, cli.ClientConfig())
		if err != nil {
			return "refused: " + err.Error()
		}
		defer func() { _ = conn.Close() }()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := served()

	// A new key pair for the server, same CA.
	writeIdentity(t, dir, ca, "scheduler")
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	after := served()
	if after == before || strings.HasPrefix(after, "refused") {
		t.Fatalf("serial before %s, after %s: the new key pair is not served", before, after)
	}

	// A new CA for the whole site: the old client is refused, a client of
	// the new CA is accepted.
	ca2, err := pki.NewCA("door", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	writeIdentity(t, dir, ca2, "scheduler")
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := check(t, addr, credentials.NewTLS(cli.ClientConfig())); err == nil {
		t.Fatal("a client of the retired CA was accepted after the rotation")
	}
	writeIdentity(t, cdir, ca2, "operator/alice")
	if err := cli.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := check(t, addr, credentials.NewTLS(cli.ClientConfig())); err != nil {
		t.Fatalf("the rotated client was refused: %v", err)
	}
	if got := testutil.ToFloat64(srv.reloads.WithLabelValues("ok")); got != 2 {
		t.Fatalf("reloads counted %v, want 2", got)
	}

	// Files that do not fit together keep the current material.
	if err := os.WriteFile(srvFiles.Key, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := srv.Reload(); err == nil || !strings.Contains(err.Error(), srvFiles.Key) {
		t.Fatalf("a broken key file: %v, want an error naming it", err)
	}
	if err := check(t, addr, credentials.NewTLS(cli.ClientConfig())); err != nil {
		t.Fatalf("after a failed reload the server stopped serving: %v", err)
	}
}
