// Package bridgeharness runs a real bridge process for fault tests and
// benchmarks: it starts the site's scheduler (the real binary, on an etcd of
// the caller) with a spec holding one bridge workload, starts the bridge
// binary (optionally inside a network namespace, see libs/harness/netem), and
// offers the admin client, a record feeder for the edge cluster and an
// exactly-once checker that compares an edge topic with its cloud copy
// partition by partition.
package bridgeharness

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"google.golang.org/grpc"

	"github.com/cefiot/cefiot/libs/harness/netem"
	"github.com/cefiot/cefiot/libs/harness/netx"
	"github.com/cefiot/cefiot/libs/harness/procs"
	"github.com/cefiot/cefiot/libs/harness/sitepki"
	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/libs/placement"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// Config describes a bridge process.
type Config struct {
	BinDir         string // holds the bridge binary
	Dir            string // logs
	Site           string // default "edge"
	Workload       string // default "bridge"
	WorkerID       string // default "bridge-test"
	Params         map[string]string
	EdgeBootstrap  string
	CloudBootstrap string
	// CloudTLSCA is the cloud cluster's trust bundle (-cloud-tls-ca).
	CloudTLSCA   string
	EtcdEndpoint string
	// AdminHost is the address the admin listeners bind (default
	// 127.0.0.1; the namespace side of a link when NS is set).
	AdminHost string
	// AdminPorts are the gRPC and HTTP ports; zero: free ports (inside a
	// namespace every port is free; a host port is as good as any).
	AdminPorts [2]int
	NS         *netem.Namespace
	Args       []string // more flags
	Env        []string
	// PKI is the site's PKI (sitepki.Make); the bridge runs as
	// worker/bridge and Client calls as the site's operator.
	PKI sitepki.Site
	// Plaintext runs the bridge with -insecure-plaintext (a benchmark's
	// comparison; never a test of a guarantee).
	Plaintext bool
}

// SchedulerConfig describes a scheduler process for the bridge's site.
type SchedulerConfig struct {
	BinDir       string
	Dir          string
	Site         string // default "edge"
	EtcdEndpoint string
	// EtcdPeerAddr, when set, has the scheduler run the site's etcd
	// itself (one embedded member under Dir) serving clients at
	// EtcdEndpoint and its peers here, as the local default's schedulers
	// do.
	EtcdPeerAddr string
	// AdminPorts are the gRPC and HTTP ports; zero: free ports picked here
	// (a caller starting many processes picks them all at once instead,
	// so that no two pick the same).
	AdminPorts [2]int
	// Params of the bridge workload in the spec.
	Params map[string]string
	NS     *netem.Namespace // nil: run on the host
	PKI    sitepki.Site     // the site's PKI (sitepki.Make)
	// Plaintext: -insecure-plaintext (a benchmark's comparison).
	Plaintext bool
}

// StartScheduler writes a spec with one bridge workload and starts the
// site's scheduler on the given etcd; the scheduler assigns the workload
// to the bridge worker and reassigns it when a bridge process dies.
func StartScheduler(cfg SchedulerConfig) (*procs.Proc, error) {
	if cfg.Site == "" {
		cfg.Site = "edge"
	}
	spec := &placement.Spec{Site: cfg.Site, Workloads: []placement.WorkloadSpec{
		{Name: pipeline.KindBridge, Kind: pipeline.KindBridge, Params: cfg.Params},
	}}
	body, err := spec.Encode()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	specPath := filepath.Join(cfg.Dir, "spec.yaml")
	if err := os.WriteFile(specPath, body, 0o644); err != nil {
		return nil, err
	}
	gp, hp, err := adminPorts(cfg.AdminPorts)
	if err != nil {
		return nil, err
	}
	etcd := []string{"-etcd-endpoints", cfg.EtcdEndpoint}
	if cfg.EtcdPeerAddr != "" {
		etcd = []string{"-etcd-dir", filepath.Join(cfg.Dir, "etcd"), "-etcd-client-addr", cfg.EtcdEndpoint, "-etcd-peer-addr", cfg.EtcdPeerAddr}
	}
	args := append([]string{"-site", cfg.Site, "-replica-id", "scheduler-test", "-spec", specPath}, etcd...)
	args = append(args, "-session-ttl", "2s", "-resync", "1s",
		"-grpc-addr", "127.0.0.1:"+strconv.Itoa(gp), "-http-addr", "127.0.0.1:"+strconv.Itoa(hp))
	args = append(args, securityArgs(cfg.PKI, "scheduler", cfg.Plaintext)...)
	return procs.Start(procs.Spec{Name: "scheduler", Path: filepath.Join(cfg.BinDir, "scheduler"), Args: args,
		LogPath: filepath.Join(cfg.Dir, "scheduler.log")})
}

// Bridge is a running bridge process.
type Bridge struct {
	cfg      Config
	proc     *procs.Proc
	GRPCAddr string
	HTTPAddr string
	Started  time.Time
}

func (c *Config) defaults() {
	if c.Site == "" {
		c.Site = "edge"
	}
	if c.Workload == "" {
		c.Workload = "bridge"
	}
	if c.WorkerID == "" {
		c.WorkerID = "bridge-test"
	}
	if c.AdminHost == "" {
		c.AdminHost = "127.0.0.1"
	}
}

// adminPorts are the given gRPC and HTTP ports, or two free ones.
func adminPorts(given [2]int) (grpcPort, httpPort int, err error) {
	if given[0] != 0 && given[1] != 0 {
		return given[0], given[1], nil
	}
	ports, err := netx.FreePorts("127.0.0.1", 2)
	if err != nil {
		return 0, 0, err
	}
	return ports[0], ports[1], nil
}

// Start starts a bridge process; a scheduler (StartScheduler) assigns it
// the bridge workload.
func Start(cfg Config) (*Bridge, error) {
	cfg.defaults()
	gp, hp, err := adminPorts(cfg.AdminPorts)
	if err != nil {
		return nil, err
	}
	b := &Bridge{cfg: cfg,
		GRPCAddr: net.JoinHostPort(cfg.AdminHost, strconv.Itoa(gp)),
		HTTPAddr: net.JoinHostPort(cfg.AdminHost, strconv.Itoa(hp))}
	args := append([]string{
		"-site", cfg.Site, "-node", "test", "-worker-id", cfg.WorkerID, "-etcd-endpoints", cfg.EtcdEndpoint,
		"-lease-ttl", "2s", "-grpc-addr", b.GRPCAddr, "-http-addr", b.HTTPAddr,
		"-edge-bootstrap", cfg.EdgeBootstrap, "-cloud-bootstrap", cfg.CloudBootstrap, "-log-level", "info",
	}, securityArgs(cfg.PKI, pipeline.KindBridge, cfg.Plaintext)...)
	if !cfg.Plaintext {
		args = append(args, "-cloud-tls-ca", cfg.CloudTLSCA)
	}
	args = append(args, cfg.Args...)
	path := filepath.Join(cfg.BinDir, "bridge")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("bridge binary: %w", err)
	}
	if cfg.NS != nil {
		path, args = cfg.NS.Wrap(path, args...)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	b.Started = time.Now()
	p, err := procs.Start(procs.Spec{Name: "bridge", Path: path, Args: args, Env: cfg.Env, LogPath: filepath.Join(cfg.Dir, "bridge.log")})
	if err != nil {
		return nil, err
	}
	b.proc = p
	return b, nil
}

// Kill sends SIGKILL and waits for the exit.
func (b *Bridge) Kill() { b.proc.Kill() }

// Stop stops the bridge gracefully.
func (b *Bridge) Stop(ctx context.Context) { b.proc.Stop(ctx, 15*time.Second) }

// Done is closed when the process has exited.
func (b *Bridge) Done() <-chan struct{} { return b.proc.Done() }

// PID is the process id.
func (b *Bridge) PID() int { return b.proc.PID() }

// Err is how the process exited, once Done is closed (nil for status 0).
func (b *Bridge) Err() error { return b.proc.Err() }

// Tail returns the last n lines of the bridge log.
func (b *Bridge) Tail(n int) string { return b.proc.Tail(n) }

// Client dials the admin gRPC API.
func (b *Bridge) Client() (cefiotv1.BridgeServiceClient, func(), error) {
	op, err := b.cfg.PKI.Load(sitepki.Operator)
	if err != nil {
		return nil, nil, err
	}
	conn, err := grpc.NewClient(b.GRPCAddr, op.DialOption())
	if err != nil {
		return nil, nil, err
	}
	return cefiotv1.NewBridgeServiceClient(conn), func() { conn.Close() }, nil
}

// AwaitStatus polls the bridge status until ok accepts it or ctx ends; it
// returns the last status seen.
func AwaitStatus(ctx context.Context, c cefiotv1.BridgeServiceClient, ok func(*cefiotv1.GetBridgeStatusResponse) bool) (*cefiotv1.GetBridgeStatusResponse, error) {
	var last *cefiotv1.GetBridgeStatusResponse
	var lastErr error
	for {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		st, err := c.GetBridgeStatus(rctx, &cefiotv1.GetBridgeStatusRequest{})
		cancel()
		if err == nil {
			last = st
			if ok(st) {
				return st, nil
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if last == nil {
				return nil, fmt.Errorf("no bridge status: %w (last error: %v)", ctx.Err(), lastErr)
			}
			return last, fmt.Errorf("condition not met: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// HTTPClient is an HTTPS client of the bridge's admin port, as the site's
// operator.
func (b *Bridge) HTTPClient() (*http.Client, error) {
	op, err := b.cfg.PKI.Load(sitepki.Operator)
	if err != nil {
		return nil, err
	}
	return op.HTTPClient(), nil
}

// securityArgs are a process's TLS flags, or -insecure-plaintext.
func securityArgs(site sitepki.Site, bin string, plaintext bool) []string {
	if plaintext {
		return []string{"-insecure-plaintext"}
	}
	return site.ServiceArgs(bin)
}
