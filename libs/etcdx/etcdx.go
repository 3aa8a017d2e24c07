// Package etcdx connects to a site's etcd and, for the local default and
// tests, runs an embedded etcd member.
package etcdx

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/cefiot/cefiot/libs/tlsx"
)

// Connect returns a client of the given cluster after checking that it
// answers within ctx. With tlsConf (the process's mutual-TLS client
// configuration) it presents its certificate and verifies the members';
// nil connects in plaintext (-insecure-plaintext).
func Connect(ctx context.Context, endpoints []string, tlsConf *tls.Config) (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{
		TLS:                  tlsConf,
		Endpoints:            endpoints,
		DialTimeout:          5 * time.Second,
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		Logger:               zap.NewNop(),
		// Reconnect within a quarter second of etcd coming back (the
		// default gRPC backoff grows to minutes): after an outage etcd
		// extends every lease only by its TTL and an election timeout
		// (1.5 s with the default 1 s lease), and a worker must renew in
		// that window or lose its assignments. A refused connection is
		// cheap to retry.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 250 * time.Millisecond},
			MinConnectTimeout: time.Second,
		})},
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client for %v: %w", endpoints, err)
	}
	checkCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// Permission denied is an answer: with authorization on, a worker may
	// read only its site's keys.
	if _, err := cli.Get(checkCtx, "health-probe"); err != nil && !errors.Is(err, rpctypes.ErrPermissionDenied) {
		cli.Close()
		return nil, fmt.Errorf("etcd at %v does not answer: %w", endpoints, err)
	}
	return cli, nil
}

// EmbeddedConfig configures an embedded single-member etcd.
type EmbeddedConfig struct {
	Name       string
	Dir        string
	ClientAddr string // host:port for clients
	PeerAddr   string // host:port for peers
	// TLS is the member's key pair and the site's trust bundle: clients
	// and peers must present a certificate the bundle signed (etcd rereads
	// the key pair at each handshake, so a rotated one takes effect
	// without a restart). nil serves plaintext (-insecure-plaintext).
	TLS *tlsx.Files
	// Heartbeat and ElectionTimeout tune raft (defaults 100ms and 1s).
	// etcd's shortest lease TTL is 1.5 election timeouts rounded up to a
	// second, so 50ms/500ms allows 1s worker leases.
	Heartbeat, ElectionTimeout time.Duration
	// Cluster lists every member of the cluster this member forms with
	// others, itself included (by Name); empty forms a single-member
	// cluster. All members must be given the same list.
	Cluster []EmbeddedPeer
}

// EmbeddedPeer is one member of an embedded etcd cluster: its name and
// its peer address (host:port).
type EmbeddedPeer struct{ Name, PeerAddr string }

// Embedded is a running embedded etcd member.
type Embedded struct {
	etcd *embed.Etcd
}

// StartEmbedded starts an etcd member and waits until it is ready: a
// single-member etcd, or a member of cfg.Cluster, which is ready once a
// quorum of the cluster's members runs (start them concurrently).
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig, logger *slog.Logger) (*Embedded, error) {
	ec := embed.NewConfig()
	ec.Name = cfg.Name
	ec.Dir = cfg.Dir
	ec.Logger = "zap"
	// etcd's own zap logs are noise next to the service's slog output,
	// including errors it logs for its listeners on every clean shutdown.
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	scheme := "http"
	if cfg.TLS != nil {
		scheme = "https"
		info := transport.TLSInfo{
			CertFile: cfg.TLS.Cert, KeyFile: cfg.TLS.Key, TrustedCAFile: cfg.TLS.CA,
			ClientCertFile: cfg.TLS.Cert, ClientKeyFile: cfg.TLS.Key, ClientCertAuth: true,
		}
		ec.ClientTLSInfo, ec.PeerTLSInfo = info, info
		ec.TlsMinVersion = "TLS1.2"
	}
	cu, err := url.Parse(scheme + "://" + cfg.ClientAddr)
	if err != nil {
		return nil, fmt.Errorf("etcd client address %q: %w", cfg.ClientAddr, err)
	}
	pu, err := url.Parse(scheme + "://" + cfg.PeerAddr)
	if err != nil {
		return nil, fmt.Errorf("etcd peer address %q: %w", cfg.PeerAddr, err)
	}
	ec.ListenClientUrls = []url.URL{*cu}
	ec.AdvertiseClientUrls = []url.URL{*cu}
	ec.ListenPeerUrls = []url.URL{*pu}
	ec.AdvertisePeerUrls = []url.URL{*pu}
	ec.InitialCluster = fmt.Sprintf("%s=%s", cfg.Name, pu.String())
	ec.InitialClusterToken = "cefiot-" + cfg.Name
	if len(cfg.Cluster) > 0 {
		members := make([]string, 0, len(cfg.Cluster))
		names := make([]string, 0, len(cfg.Cluster))
		for _, m := range cfg.Cluster {
			members = append(members, fmt.Sprintf("%s=%s://%s", m.Name, scheme, m.PeerAddr))
			names = append(names, m.Name)
		}
		if !slices.Contains(names, cfg.Name) {
			return nil, fmt.Errorf("etcd member %q is not in its cluster %v", cfg.Name, names)
		}
		ec.InitialCluster = strings.Join(members, ",")
		ec.InitialClusterToken = "cefiot-" + strings.Join(names, "-")
	}
	if cfg.Heartbeat > 0 {
		ec.TickMs = uint(cfg.Heartbeat / time.Millisecond)
	}
	if cfg.ElectionTimeout > 0 {
		ec.ElectionMs = uint(cfg.ElectionTimeout / time.Millisecond)
	}
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd in %s: %w", cfg.Dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd failed: %w", err)
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("embedded etcd not ready: %w", ctx.Err())
	}
	logger.Info("embedded etcd ready", "client", cu.String(), "dir", cfg.Dir)
	return &Embedded{etcd: e}, nil
}

// Endpoint is the client URL of the member.
func (e *Embedded) Endpoint() string { return e.etcd.Clients[0].Addr().String() }

// Err reports a fatal error of the member.
func (e *Embedded) Err() <-chan error { return e.etcd.Err() }

// Close stops the member.
func (e *Embedded) Close() { e.etcd.Close() }
