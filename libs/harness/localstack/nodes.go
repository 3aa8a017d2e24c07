package localstack

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/cefiot/cefiot/libs/harness/netx"
	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/libs/placement"
)

// NodeSpec is one simulated edge node: its worker processes (one per
// service) run with -node Name and -labels Labels. With ProxyEtcd their
// etcd traffic goes through a proxy the stack can cut (PartitionNode), to
// partition the node from its site's control plane while its Kafka traffic
// keeps flowing.
type NodeSpec struct {
	Name      string
	Labels    string   // k=v,k=v
	Services  []string // of capture, enrich, bridge (default: all three)
	ProxyEtcd bool
}

// multiNode reports whether the edge runs simulated nodes and several
// scheduler replicas; then the edge etcd runs inside this process, so any
// scheduler replica can die without taking the site's etcd with it.
func (c Config) multiNode() bool {
	return len(c.Nodes) > 0 || c.EdgeSchedulers > 1 || c.EdgeEtcdMembers > 1
}

// ServiceNames are the service processes of this stack, in start order.
func (s *Stack) ServiceNames() []string {
	if !s.cfg.multiNode() && !s.cfg.CloudEnrich && s.cfg.SinkReplicas <= 1 {
		return slices.Clone(Services)
	}
	names := []string{"scheduler-edge"}
	for i := 2; i <= s.cfg.EdgeSchedulers; i++ {
		names = append(names, "scheduler-edge-"+strconv.Itoa(i))
	}
	names = append(names, "scheduler-cloud")
	if len(s.cfg.Nodes) == 0 {
		names = append(names, "capture", "enrich", "bridge")
	}
	for _, n := range s.cfg.Nodes {
		for _, svc := range n.services() {
			names = append(names, svc+"@"+n.Name)
		}
	}
	if s.cfg.CloudEnrich {
		names = append(names, "enrich-cloud")
	}
	return append(names, s.SinkNames()...)
}

func (n NodeSpec) services() []string {
	if len(n.Services) == 0 {
		return []string{pipeline.KindCapture, pipeline.KindEnrich, pipeline.KindBridge}
	}
	return n.Services
}

// NodeServices returns the processes of node.
func (s *Stack) NodeServices(node string) []string {
	var out []string
	for _, name := range s.ServiceNames() {
		if strings.HasSuffix(name, "@"+node) {
			out = append(out, name)
		}
	}
	return out
}

// KillNode sends SIGKILL to every process of node, as a power cut would.
func (s *Stack) KillNode(node string) {
	for _, name := range s.NodeServices(node) {
		s.KillService(name)
	}
}

// StartNode starts every process of node again.
func (s *Stack) StartNode(node string) error {
	for _, name := range s.NodeServices(node) {
		if err := s.StartService(name); err != nil {
			return err
		}
	}
	return nil
}

// PartitionNode cuts node from the edge etcd (its Kafka traffic continues).
func (s *Stack) PartitionNode(node string) error {
	p := s.proxies[node]
	if p == nil {
		return fmt.Errorf("localstack: node %q has no etcd proxy (NodeSpec.ProxyEtcd)", node)
	}
	p.Cut()
	return nil
}

// HealNode ends PartitionNode.
func (s *Stack) HealNode(node string) error {
	p := s.proxies[node]
	if p == nil {
		return fmt.Errorf("localstack: node %q has no etcd proxy (NodeSpec.ProxyEtcd)", node)
	}
	p.Heal()
	return nil
}

// CloudEtcd is the cloud etcd's client endpoint.
func (s *Stack) CloudEtcd() string { return addr(s.cfg.Ports.CloudEtcd) }

// SchedulerGRPC is the admin gRPC address of a scheduler process
// ("scheduler-edge", "scheduler-edge-2", "scheduler-cloud").
func (s *Stack) SchedulerGRPC(name string) string {
	switch name {
	case "scheduler-edge":
		return addr(s.cfg.Ports.EdgeSchedulerGRPC)
	case "scheduler-cloud":
		return addr(s.cfg.Ports.CloudSchedulerGRPC)
	}
	g, _ := s.dynamicPorts(name)
	return addr(g)
}

// ServiceGRPC is the admin gRPC address of any service process ("sink",
// "sink-2", "capture@node-1", ...).
func (s *Stack) ServiceGRPC(name string) string {
	p := s.cfg.Ports
	fixed := map[string]int{
		"scheduler-edge": p.EdgeSchedulerGRPC, "scheduler-cloud": p.CloudSchedulerGRPC,
		"capture": p.CaptureGRPC, "enrich": p.EnrichGRPC, "bridge": p.BridgeGRPC, "sink": p.SinkGRPC,
	}
	if port, ok := fixed[name]; ok {
		return addr(port)
	}
	g, _ := s.dynamicPorts(name)
	return addr(g)
}

// HTTP is the admin HTTP base URL of a service process.
func (s *Stack) HTTP(name string) string {
	p := s.cfg.Ports
	fixed := map[string]int{
		"scheduler-edge": p.EdgeSchedulerHTTP, "scheduler-cloud": p.CloudSchedulerHTTP,
		"capture": p.CaptureHTTP, "enrich": p.EnrichHTTP, "bridge": p.BridgeHTTP, "sink": p.SinkHTTP,
	}
	if port, ok := fixed[name]; ok {
		return s.scheme() + "://" + addr(port)
	}
	_, h := s.dynamicPorts(name)
	return s.scheme() + "://" + addr(h)
}

// dynamicPorts returns the (stable) admin ports of a process that has no
// fixed port in Ports.
func (s *Stack) dynamicPorts(name string) (grpcPort, httpPort int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.ports[name]; ok {
		return p[0], p[1]
	}
	// Neither another process's dynamic ports nor the fixed ones: a
	// service that has not bound its fixed port yet would lose it, and
	// the loser fails at every restart.
	taken := map[int]bool{}
	for _, p := range s.ports {
		taken[p[0]], taken[p[1]] = true, true
	}
	var ps [2]int
	for i := range ps {
		p, err := netx.FreePortOutsideEphemeral(func(p int) bool { return taken[p] || s.cfg.Ports.has(p) })
		if err == nil {
			ps[i], taken[p] = p, true
		}
	}
	s.ports[name] = ps
	return ps[0], ps[1]
}

// nodeSpecFor returns how to start a per-node worker process
// ("<service>@<node>"), a further scheduler replica ("scheduler-edge-N")
// or the cloud enrich worker ("enrich-cloud").
func (s *Stack) dynamicSpec(name string) (bin string, args []string, err error) {
	c := s.cfg
	g, h := s.dynamicPorts(name)
	if strings.HasPrefix(name, "scheduler-edge-") {
		return "scheduler", []string{
			"-kafka-bootstrap", s.Edge.BootstrapServers(), "-site", c.Site, "-replica-id", name, "-spec", filepath.Join(c.RunDir, "spec-edge.yaml"),
			"-etcd-endpoints", s.EdgeEtcd(), "-session-ttl", c.LeaseTTL.String(),
			"-grpc-addr", addr(g), "-http-addr", addr(h),
		}, nil
	}
	if isSinkReplica(name) {
		// Each replica is a cloud node of its own.
		args := []string{
			"-site", "cloud", "-node", name, "-etcd-endpoints", s.CloudEtcd(), "-lease-ttl", c.LeaseTTL.String(),
			"-grpc-addr", addr(g), "-http-addr", addr(h), "-kafka-bootstrap", s.Cloud.BootstrapServers(),
			"-store-dir", s.StoreDir(),
		}
		return "sink", append(args, s.sinkIndexArgs()...), nil
	}
	if name == "enrich-cloud" {
		return "enrich", []string{
			"-site", "cloud", "-node", "cloud", "-etcd-endpoints", s.CloudEtcd(), "-lease-ttl", c.LeaseTTL.String(),
			"-grpc-addr", addr(g), "-http-addr", addr(h), "-kafka-bootstrap", s.Cloud.BootstrapServers(),
		}, nil
	}
	svc, node, ok := strings.Cut(name, "@")
	if !ok {
		return "", nil, fmt.Errorf("localstack: unknown service %q", name)
	}
	var ns *NodeSpec
	for i := range c.Nodes {
		if c.Nodes[i].Name == node {
			ns = &c.Nodes[i]
		}
	}
	if ns == nil || !slices.Contains(ns.services(), svc) {
		return "", nil, fmt.Errorf("localstack: unknown service %q", name)
	}
	etcd := s.EdgeEtcd()
	if p := s.proxies[node]; p != nil {
		etcd = p.Addr()
	}
	args = []string{
		"-site", c.Site, "-node", node, "-labels", ns.Labels, "-etcd-endpoints", etcd,
		"-lease-ttl", c.LeaseTTL.String(), "-grpc-addr", addr(g), "-http-addr", addr(h),
	}
	switch svc {
	case "capture":
		args = append(args, "-kafka-bootstrap", s.Edge.BootstrapServers(), "-spool-dir", s.SpoolDir(node))
	case "enrich":
		args = append(args, "-kafka-bootstrap", s.Edge.BootstrapServers())
	case "bridge":
		args = append(args, "-edge-bootstrap", s.Edge.BootstrapServers(), "-cloud-bootstrap", s.Cloud.BootstrapServers())
	default:
		return "", nil, fmt.Errorf("localstack: service %q cannot run on an edge node", svc)
	}
	return svc, args, nil
}

// edgeWorkloads returns the workloads of the edge spec: one capture per
// camera (spread over the nodes of a multi-node stack), enrich and bridge.
func (s *Stack) edgeWorkloads() []placement.WorkloadSpec {
	cams := slices.Clone(s.cfg.Cameras)
	if len(cams) == 0 {
		cams = []string{s.cfg.Camera}
	}
	sort.Strings(cams)
	var out []placement.WorkloadSpec
	for _, cam := range cams {
		w := placement.WorkloadSpec{
			Name: pipeline.CaptureWorkload(cam), Kind: pipeline.KindCapture,
			Params: map[string]string{pipeline.ParamCamera: cam, pipeline.ParamSource: s.cfg.Video, pipeline.ParamRealtime: strconv.FormatBool(s.cfg.Realtime)},
		}
		if len(s.cfg.Nodes) > 0 {
			w.SpreadBy = "node"
		}
		out = append(out, w)
	}
	return append(out,
		placement.WorkloadSpec{Name: pipeline.KindEnrich, Kind: pipeline.KindEnrich},
		placement.WorkloadSpec{Name: pipeline.KindBridge, Kind: pipeline.KindBridge})
}
