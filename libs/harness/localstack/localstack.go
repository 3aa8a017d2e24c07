// Package localstack composes the real cefiot services on one machine: two
// sites (edge and cloud), each with its own Kafka cluster (KRaft, local
// processes), its own scheduler with embedded etcd, and its workers, all as
// separate processes started from the built service binaries.
//
// It serves `make run` (through cmd/cefiot-local), the end-to-end tests and
// the benchmarks, so all three exercise the same composition.
//
// For fault tests and benchmarks it can also simulate several edge nodes
// (Config.Nodes: each node's workers are separate processes with their own
// -node and -labels, killable together with KillNode, and optionally cut
// from etcd with PartitionNode) and several edge scheduler replicas
// (Config.EdgeSchedulers); the edge etcd then runs in this process so any
// replica can die. Config.CloudEnrich adds an idle enrich worker to the
// cloud site, the target of cross-site moves.
package localstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/etcdx"
	"github.com/cefiot/cefiot/libs/harness/kafkalocal"
	"github.com/cefiot/cefiot/libs/harness/netx"
	"github.com/cefiot/cefiot/libs/harness/pglocal"
	"github.com/cefiot/cefiot/libs/harness/procs"
	"github.com/cefiot/cefiot/libs/kafkaconf"
	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/libs/placement"
	"github.com/cefiot/cefiot/libs/service"
	"github.com/cefiot/cefiot/libs/tlsx"
)

// Config describes a local stack.
type Config struct {
	BinDir    string // directory with capture, enrich, bridge, sink, scheduler
	RunDir    string // data and logs; reused across runs
	KafkaLibs string // Kafka jars
	Video     string // video file, image folder or live stream URL fed to the camera
	Camera    string // camera id (default cam-1)
	Site      string // edge site name (default edge)
	Realtime  bool   // pace the video at its frame rate
	Ports     Ports  // zero value: free ports
	LeaseTTL  time.Duration
	Logger    *slog.Logger

	// Cameras are the camera ids fed from Video (default: Camera).
	Cameras []string
	// Nodes simulates several edge nodes, each with its own worker
	// processes, instead of one node "local" (see NodeSpec).
	Nodes []NodeSpec
	// EdgeSchedulers is the number of edge scheduler replicas (default 1).
	EdgeSchedulers int
	// EdgeEtcdMembers is the number of members of the edge site's etcd
	// (default 1); more than one makes a multi-node stack, whose members
	// StopEdgeEtcdMember and StartEdgeEtcdMember stop and start.
	EdgeEtcdMembers int
	// CloudEnrich starts an enrich worker in the cloud site, idle until
	// enrich is moved there (cefiotctl move enrich -to-site cloud).
	CloudEnrich bool
	// BinaryArgs adds arguments to every process of a binary ("capture":
	// {"-thumbnail-width", "0"}), checked against its flags like the rest.
	BinaryArgs map[string][]string
	// EdgeDiskBudget, when not 0, is the room of the edge Kafka's log dir:
	// its retention is planned from it (kafkaconf.PlanBudget) for the
	// site's topics, and a budget too small for them stops Start.
	EdgeDiskBudget int64
	// InsecurePlaintext runs everything without TLS or authorization, to
	// measure what security costs (a benchmark's comparison only: the
	// local default, the tests and the other benchmarks run secure).
	InsecurePlaintext bool
	// EdgeBrokers is the number of brokers of the edge Kafka cluster
	// (default 1); with 3, topics get replication 3 and min.insync 2.
	EdgeBrokers int
	// Index is where the sink keeps its frame index: IndexBolt (default, a
	// file under StoreDir) or IndexPostgres (a PostgreSQL server the stack
	// starts, from Debian's package; required by SinkReplicas > 1).
	Index string
	// SinkReplicas is the number of sink processes (default 1), sharing
	// one PostgreSQL index, one object store and one consumer group.
	SinkReplicas int
	// RemoteSites are more edge sites whose bridges run outside the stack
	// (a fan-in benchmark's): each gets its own CA (PKI), and the cloud
	// cluster trusts it and grants it its site's rights, as it does the
	// stack's own edge site.
	RemoteSites []string
}

// Ports are the listening ports of the stack.
type Ports struct {
	EdgeKafka, CloudKafka                  int // first broker port (controller = +1)
	EdgeEtcd, EdgeEtcdPeer                 int
	CloudEtcd, CloudEtcdPeer               int
	EdgeSchedulerGRPC, EdgeSchedulerHTTP   int
	CloudSchedulerGRPC, CloudSchedulerHTTP int
	CaptureGRPC, CaptureHTTP               int
	EnrichGRPC, EnrichHTTP                 int
	BridgeGRPC, BridgeHTTP                 int
	SinkGRPC, SinkHTTP                     int
}

// DefaultPorts are the fixed ports of `make run`, as the README documents.
func DefaultPorts() Ports {
	return Ports{
		EdgeKafka: 19092, CloudKafka: 29092,
		EdgeEtcd: 2379, EdgeEtcdPeer: 2380, CloudEtcd: 2479, CloudEtcdPeer: 2480,
		EdgeSchedulerGRPC: 9100, EdgeSchedulerHTTP: 8100,
		CloudSchedulerGRPC: 9200, CloudSchedulerHTTP: 8200,
		CaptureGRPC: 9101, CaptureHTTP: 8101,
		EnrichGRPC: 9102, EnrichHTTP: 8102,
		BridgeGRPC: 9103, BridgeHTTP: 8103,
		SinkGRPC: 9104, SinkHTTP: 8104,
	}
}

// fields are the ports the stack chooses itself when they are 0 (the
// Kafka ports are the clusters' to choose).
func (p *Ports) fields() []*int {
	return []*int{
		&p.EdgeEtcd, &p.EdgeEtcdPeer, &p.CloudEtcd, &p.CloudEtcdPeer,
		&p.EdgeSchedulerGRPC, &p.EdgeSchedulerHTTP, &p.CloudSchedulerGRPC, &p.CloudSchedulerHTTP,
		&p.CaptureGRPC, &p.CaptureHTTP, &p.EnrichGRPC, &p.EnrichHTTP,
		&p.BridgeGRPC, &p.BridgeHTTP, &p.SinkGRPC, &p.SinkHTTP,
	}
}

// has reports whether port is one of p's.
func (p *Ports) has(port int) bool {
	for _, f := range p.fields() {
		if *f == port {
			return true
		}
	}
	return false
}

func (p *Ports) fillFree() error {
	fields := p.fields()
	taken := map[int]bool{}
	for _, f := range fields {
		taken[*f] = true
	}
	for _, f := range fields {
		if *f != 0 {
			continue
		}
		// Below the ephemeral range: an outgoing connection cannot grab
		// the port before the service binds it.
		port, err := netx.FreePortOutsideEphemeral(func(p int) bool { return taken[p] })
		if err != nil {
			return err
		}
		*f, taken[port] = port, true
	}
	return nil
}

// edgeKafka is the edge cluster's config, its security aside.
func (s *Stack) edgeKafka() kafkalocal.ClusterConfig {
	var budget *kafkaconf.Budget
	if s.cfg.EdgeDiskBudget != 0 {
		budget = &kafkaconf.Budget{Bytes: s.cfg.EdgeDiskBudget}
	}
	return kafkalocal.ClusterConfig{
		Name: "edge", Brokers: s.cfg.EdgeBrokers, BaseDir: filepath.Join(s.cfg.RunDir, "kafka-edge"), LibsDir: s.cfg.KafkaLibs, BasePort: s.cfg.Ports.EdgeKafka,
		DiskBudget: budget,
	}
}

// Services are the service processes in start order.
var Services = []string{"scheduler-edge", "scheduler-cloud", "capture", "enrich", "bridge", "sink"}

// Stack is a running local stack.
type Stack struct {
	cfg    Config
	logger *slog.Logger
	Edge   *kafkalocal.Cluster
	Cloud  *kafkalocal.Cluster

	mu    sync.Mutex
	procs map[string]*procs.Proc
	exits chan Exit
	done  chan struct{} // closed by Stop: no more restarts
	once  sync.Once

	ports    map[string][2]int // admin ports of processes without fixed ones
	operator tlsx.Sites        // operator/local of both sites
	opHTTP   *http.Client      // its HTTPS client
	edgeEtcd []*etcdx.Embedded // multi-node stacks only; nil: stopped
	proxies  map[string]*netx.Proxy
	pg       *pglocal.Server // Config.Index postgres only
	pgDir    string
}

// Start starts both Kafka clusters, both schedulers and the four workers.
// On error everything started so far is stopped.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	if cfg.Camera == "" {
		cfg.Camera = "cam-1"
	}
	if cfg.Site == "" {
		cfg.Site = "edge"
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = service.DefaultLeaseTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.EdgeSchedulers == 0 {
		cfg.EdgeSchedulers = 1
	}
	if cfg.EdgeEtcdMembers == 0 {
		cfg.EdgeEtcdMembers = 1
	}
	if cfg.EdgeEtcdMembers > 1 {
		for _, n := range cfg.Nodes {
			if n.ProxyEtcd {
				return nil, fmt.Errorf("localstack: node %s: an etcd proxy reaches one member; EdgeEtcdMembers is %d", n.Name, cfg.EdgeEtcdMembers)
			}
		}
	}
	if cfg.EdgeBrokers == 0 {
		cfg.EdgeBrokers = 1
	}
	if cfg.SinkReplicas == 0 {
		cfg.SinkReplicas = 1
	}
	if cfg.Index == "" {
		cfg.Index = IndexBolt
	}
	switch {
	case cfg.Index != IndexBolt && cfg.Index != IndexPostgres:
		return nil, fmt.Errorf("localstack: Index %q: want %s or %s", cfg.Index, IndexBolt, IndexPostgres)
	case cfg.SinkReplicas > 1 && cfg.Index != IndexPostgres:
		return nil, fmt.Errorf("localstack: %d sink replicas need the shared index (Index %s)", cfg.SinkReplicas, IndexPostgres)
	}
	for _, site := range cfg.RemoteSites {
		if site == cfg.Site || site == "cloud" {
			return nil, fmt.Errorf("localstack: remote site %q is one of the stack's own sites", site)
		}
	}
	if cfg.Video == "" {
		return nil, errors.New("localstack: no video given")
	}
	if !isStreamURL(cfg.Video) {
		if cfg.Video, err = filepath.Abs(cfg.Video); err != nil {
			return nil, fmt.Errorf("localstack: video path: %w", err)
		}
		if _, err := os.Stat(cfg.Video); err != nil {
			return nil, fmt.Errorf("localstack: video: %w", err)
		}
	}
	for _, bin := range append(pipeline.Kinds(), "scheduler") {
		if _, err := os.Stat(filepath.Join(cfg.BinDir, bin)); err != nil {
			return nil, fmt.Errorf("localstack: service binary %s missing in %s (run make build): %w", bin, cfg.BinDir, err)
		}
	}
	if err := cfg.Ports.fillFree(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.RunDir, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("localstack: run dir: %w", err)
	}
	s := &Stack{cfg: cfg, logger: cfg.Logger, procs: map[string]*procs.Proc{}, exits: make(chan Exit, 16), done: make(chan struct{}),
		ports: map[string][2]int{}, proxies: map[string]*netx.Proxy{}}
	defer func() {
		if err != nil {
			stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_ = s.Stop(stopCtx)
		}
	}()

	// A disk budget too small for the edge site stops the stack before
	// anything starts.
	if err := s.edgeKafka().Validate(); err != nil {
		return s, fmt.Errorf("localstack: edge kafka: %w", err)
	}
	if err := s.makePKI(); err != nil {
		return s, err
	}
	if s.operator, err = s.Identity(Operator); err != nil {
		return s, err
	}
	if err := s.writeClientConfig(); err != nil {
		return s, err
	}
	s.opHTTP = s.operator.HTTPClient()
	if cfg.InsecurePlaintext {
		s.opHTTP = &http.Client{}
	}
	// Both clusters start in parallel: each JVM takes seconds.
	var wg sync.WaitGroup
	var edgeErr, cloudErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		edge := s.edgeKafka()
		edge.TLS = s.kafkaTLS(s.PKI(cfg.Site).KafkaTLS())
		s.Edge, edgeErr = kafkalocal.Start(ctx, edge, cfg.Logger)
	}()
	go func() {
		defer wg.Done()
		s.Cloud, cloudErr = kafkalocal.Start(ctx, kafkalocal.ClusterConfig{
			Name: "cloud", Brokers: 1, BaseDir: filepath.Join(cfg.RunDir, "kafka-cloud"), LibsDir: cfg.KafkaLibs, BasePort: cfg.Ports.CloudKafka,
			// The cloud admits the edge site's bridge: it trusts the
			// edge CA too (and its ACLs confine that site to its names).
			TLS: s.kafkaTLS(s.PKI("cloud").KafkaTLS(s.edgePKIs()...)),
		}, cfg.Logger)
	}()
	wg.Wait()
	if err := errors.Join(edgeErr, cloudErr); err != nil {
		return s, fmt.Errorf("localstack: kafka: %w", err)
	}
	if err := s.grantKafka(ctx); err != nil {
		return s, err
	}
	if cfg.sharedIndex() {
		if err := s.startPostgres(ctx); err != nil {
			return s, err
		}
	}
	if err := s.writeSpecs(); err != nil {
		return s, err
	}
	if cfg.multiNode() {
		if err := s.startEdgeEtcd(ctx); err != nil {
			return s, err
		}
	}
	if err := s.checkArgs(ctx); err != nil {
		return s, err
	}
	for _, name := range s.ServiceNames() {
		if err := s.StartService(name); err != nil {
			return s, err
		}
	}
	return s, nil
}

// checkArgs holds the arguments the stack passes to each binary against
// the flags that binary lists for -h, as k8s/check does for the manifests:
// a renamed flag fails here, at start, naming the process and the flag.
func (s *Stack) checkArgs(ctx context.Context) error {
	known := map[string]config.Flags{}
	for _, name := range s.ServiceNames() {
		sp, err := s.spec(name)
		if err != nil {
			return err
		}
		flags, ok := known[sp.Path]
		if !ok {
			if flags, err = config.BinaryFlags(ctx, sp.Path); err != nil {
				return fmt.Errorf("localstack: %w", err)
			}
			known[sp.Path] = flags
		}
		if err := config.CheckArgs(flags, sp.Args); err != nil {
			return fmt.Errorf("localstack: arguments of %s (%s): %w", name, filepath.Base(sp.Path), err)
		}
	}
	return nil
}

// Config returns the effective configuration (with the ports chosen).
func (s *Stack) Config() Config { return s.cfg }

// SinkHTTP is the sink's REST base URL.
func (s *Stack) SinkHTTP() string {
	return s.scheme() + "://127.0.0.1:" + strconv.Itoa(s.cfg.Ports.SinkHTTP)
}

// SinkGRPC is the sink's gRPC address.
func (s *Stack) SinkGRPC() string { return "127.0.0.1:" + strconv.Itoa(s.cfg.Ports.SinkGRPC) }

// SpoolDir is the capture spool directory of an edge node ("": the
// single node of a one-node stack).
func (s *Stack) SpoolDir(node string) string {
	if node == "" {
		return filepath.Join(s.cfg.RunDir, "capture-spool")
	}
	return filepath.Join(s.cfg.RunDir, "capture-spool-"+node)
}

// StoreDir is the sink's frame store.
func (s *Stack) StoreDir() string { return filepath.Join(s.cfg.RunDir, "sink-store") }

// Exit is a service process that exited on its own.
type Exit struct {
	Service string
	Err     error // with the tail of its log
}

func (e Exit) Error() string { return e.Err.Error() }

// Exits reports every service process that exits on its own while the
// stack runs (the stack starts it again, see StartService).
func (s *Stack) Exits() <-chan Exit { return s.exits }

// PID is the process id of a running service process (0 if none).
func (s *Stack) PID(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.procs[name]; p != nil {
		return p.PID()
	}
	return 0
}

func (s *Stack) writeSpecs() error {
	specs := map[string]*placement.Spec{
		"edge":  {Site: s.cfg.Site, Workloads: s.edgeWorkloads()},
		"cloud": {Site: "cloud", Workloads: s.cloudWorkloads()},
	}
	for name, spec := range specs {
		b, err := spec.Encode()
		if err != nil {
			return fmt.Errorf("localstack: %w", err)
		}
		if err := os.WriteFile(filepath.Join(s.cfg.RunDir, "spec-"+name+".yaml"), b, 0o644); err != nil {
			return fmt.Errorf("localstack: write spec: %w", err)
		}
	}
	return nil
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// isStreamURL reports whether video names a live camera (http, rtsp).
func isStreamURL(video string) bool {
	return strings.HasPrefix(video, "http://") || strings.HasPrefix(video, "rtsp://")
}

// spec returns how to start a service process.
func (s *Stack) spec(name string) (procs.Spec, error) {
	p, c := s.cfg.Ports, s.cfg
	edgeEtcd, cloudEtcd := s.EdgeEtcd(), addr(p.CloudEtcd)
	common := func(site, etcd string, grpcPort, httpPort int) []string {
		return []string{
			"-site", site, "-node", "local", "-etcd-endpoints", etcd,
			"-lease-ttl", c.LeaseTTL.String(),
			"-grpc-addr", addr(grpcPort), "-http-addr", addr(httpPort),
		}
	}
	var bin string
	var args []string
	switch name {
	case "scheduler-edge", "scheduler-cloud":
		site, etcd, peer, g, h := c.Site, p.EdgeEtcd, p.EdgeEtcdPeer, p.EdgeSchedulerGRPC, p.EdgeSchedulerHTTP
		specFile := "spec-edge.yaml"
		if name == "scheduler-cloud" {
			site, etcd, peer, g, h = "cloud", p.CloudEtcd, p.CloudEtcdPeer, p.CloudSchedulerGRPC, p.CloudSchedulerHTTP
			specFile = "spec-cloud.yaml"
		}
		bin = "scheduler"
		kafka := s.Edge.BootstrapServers()
		if site == "cloud" {
			kafka = s.Cloud.BootstrapServers()
		}
		args = []string{"-kafka-bootstrap", kafka,
			"-site", site, "-replica-id", name, "-spec", filepath.Join(c.RunDir, specFile),
			"-etcd-dir", filepath.Join(c.RunDir, "etcd-"+site), "-etcd-client-addr", addr(etcd), "-etcd-peer-addr", addr(peer),
			"-session-ttl", c.LeaseTTL.String(),
			"-grpc-addr", addr(g), "-http-addr", addr(h), "-etcd-observers", Operator,
		}
		if name == "scheduler-edge" && c.multiNode() {
			args = []string{
				"-kafka-bootstrap", kafka, "-site", site, "-replica-id", name, "-spec", filepath.Join(c.RunDir, specFile),
				"-etcd-endpoints", edgeEtcd, "-session-ttl", c.LeaseTTL.String(),
				"-grpc-addr", addr(g), "-http-addr", addr(h), "-etcd-observers", Operator,
			}
		}
	case "capture":
		bin = "capture"
		args = append(common(c.Site, edgeEtcd, p.CaptureGRPC, p.CaptureHTTP), "-kafka-bootstrap", s.Edge.BootstrapServers(),
			"-spool-dir", s.SpoolDir(""))
	case "enrich":
		bin = "enrich"
		args = append(common(c.Site, edgeEtcd, p.EnrichGRPC, p.EnrichHTTP), "-kafka-bootstrap", s.Edge.BootstrapServers())
	case "bridge":
		bin = "bridge"
		args = append(common(c.Site, edgeEtcd, p.BridgeGRPC, p.BridgeHTTP),
			"-edge-bootstrap", s.Edge.BootstrapServers(), "-cloud-bootstrap", s.Cloud.BootstrapServers())
	case "sink":
		bin = "sink"
		args = append(common("cloud", cloudEtcd, p.SinkGRPC, p.SinkHTTP),
			"-kafka-bootstrap", s.Cloud.BootstrapServers(), "-store-dir", s.StoreDir())
		args = append(args, s.sinkIndexArgs()...)
	default:
		var err error
		if bin, args, err = s.dynamicSpec(name); err != nil {
			return procs.Spec{}, err
		}
	}
	args = append(args, s.securityArgs(argValue(args, "-site"), argValue(args, "-node"), bin)...)
	args = append(args, c.BinaryArgs[bin]...)
	var env []string
	if bin == "sink" {
		env = s.sinkIndexEnv()
	}
	return procs.Spec{
		Name: name, Path: filepath.Join(c.BinDir, bin), Args: args, Env: env,
		LogPath: filepath.Join(c.RunDir, "logs", name+".log"),
	}, nil
}

// StartService starts (or restarts) one service process and supervises it:
// if it exits on its own (a crash, a kill -9 from outside, a worker that
// could not prove it stopped in time), the exit is reported on Exits and the
// process is started again after a back-off, as the kubelet or systemd
// would on a real node. StopService and KillService end the supervision.
func (s *Stack) StartService(name string) error {
	sp, err := s.spec(name)
	if err != nil {
		return err
	}
	return s.startSupervised(name, sp)
}

// StopService stops one service gracefully and forgets it.
func (s *Stack) StopService(ctx context.Context, name string) {
	s.mu.Lock()
	p := s.procs[name]
	delete(s.procs, name)
	s.mu.Unlock()
	if p != nil {
		p.Stop(ctx, 15*time.Second)
	}
}

// KillService sends SIGKILL to one service and forgets it.
func (s *Stack) KillService(name string) {
	s.mu.Lock()
	p := s.procs[name]
	delete(s.procs, name)
	s.mu.Unlock()
	if p != nil {
		p.Kill()
	}
}

// Stop stops every service (workers first, schedulers last) and both
// clusters; nothing it started is left running.
func (s *Stack) Stop(ctx context.Context) error {
	s.once.Do(func() { close(s.done) })
	names := s.ServiceNames()
	for i := len(names) - 1; i >= 0; i-- {
		s.StopService(ctx, names[i])
	}
	// Anything started by name outside the list (none normally).
	s.mu.Lock()
	rest := make([]string, 0, len(s.procs))
	for name := range s.procs {
		rest = append(rest, name)
	}
	s.mu.Unlock()
	for _, name := range rest {
		s.StopService(ctx, name)
	}
	s.stopEdgeEtcd()
	var errs []error
	for _, c := range []*kafkalocal.Cluster{s.Edge, s.Cloud} {
		if c != nil {
			if err := c.Stop(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	errs = append(errs, s.stopPostgres(ctx))
	return errors.Join(errs...)
}
