// Package etcdtest starts a real embedded etcd member for tests.
package etcdtest

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cefiot/cefiot/libs/etcdx"
	"github.com/cefiot/cefiot/libs/harness/netx"
	"github.com/cefiot/cefiot/libs/logging"
)

// Start runs an embedded etcd in a temporary directory for the test and
// returns a connected client; both are closed when the test ends.
func Start(t testing.TB) (*etcdx.Embedded, *clientv3.Client) {
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
	e, err := etcdx.StartEmbedded(ctx, etcdx.EmbeddedConfig{Name: "test", Dir: t.TempDir(), ClientAddr: client, PeerAddr: peer}, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	cli, err := etcdx.Connect(ctx, []string{e.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return e, cli
}

// NewClient returns another client of the member, closed with the test.
func NewClient(t testing.TB, e *etcdx.Embedded) *clientv3.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli, err := etcdx.Connect(ctx, []string{e.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}
