// Package etcdtest starts a real embedded etcd member for tests: plaintext
// for the unit tests of the libraries, or mutual TLS with a site's
// certificates for tests of processes that run as deployed.
package etcdtest

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/etcdx"
	"github.com/cefiot/cefiot/libs/harness/netx"
	"github.com/cefiot/cefiot/libs/harness/sitepki"
	"github.com/cefiot/cefiot/libs/logging"
	"github.com/cefiot/cefiot/libs/tlsx"
)

// Member is a running embedded etcd and how its test clients connect.
type Member struct {
	*etcdx.Embedded
	clientTLS *tls.Config // nil: plaintext
}

// Start runs a plaintext embedded etcd in a temporary directory for the
// test and returns a connected client; both are closed when the test ends.
func Start(t testing.TB) (*Member, *clientv3.Client) {
	t.Helper()
	return start(t, nil, nil)
}

// StartSecure runs the site's etcd as deployed: mutual TLS with the site's
// etcd certificate; the returned client (and NewClient's) connect as the
// site's scheduler.
func StartSecure(t testing.TB, site sitepki.Site) (*Member, *clientv3.Client) {
	t.Helper()
	files := site.Files(access.Etcd)
	src, err := site.Load(access.Scheduler)
	if err != nil {
		t.Fatal(err)
	}
	return start(t, &files, src.ClientConfig())
}

func start(t testing.TB, files *tlsx.Files, clientTLS *tls.Config) (*Member, *clientv3.Client) {
	t.Helper()
	client, err := netx.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	peer, err := netx.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := etcdx.StartEmbedded(ctx, etcdx.EmbeddedConfig{Name: "test", Dir: t.TempDir(), ClientAddr: client, PeerAddr: peer, TLS: files}, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	m := &Member{Embedded: e, clientTLS: clientTLS}
	return m, NewClient(t, m)
}

// NewClient returns another client of the member, closed with the test.
func NewClient(t testing.TB, m *Member) *clientv3.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli, err := etcdx.Connect(ctx, []string{m.Endpoint()}, m.clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}
