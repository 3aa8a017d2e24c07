package localstack

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/clientconfig"
	"github.com/cefiot/cefiot/libs/harness/kafkalocal"
	"github.com/cefiot/cefiot/libs/harness/sitepki"
	"github.com/cefiot/cefiot/libs/kafkaacl"
	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/libs/pki"
	"github.com/cefiot/cefiot/libs/tlsx"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// The stack is secure as deployed: each site has its own CA under
// <RunDir>/pki/<site> (see sitepki), every process runs with its own
// certificate, and the stack's own calls (tests, the benchmarks,
// cefiot-local's console and status lines) are made with the identities
// below.
const (
	// Operator is the person of the local default (operator/local).
	Operator = sitepki.Operator
	// Viewer is a read-only identity, for tests of what it may not do.
	Viewer = sitepki.Viewer
	// Admin may also define and delete workloads (admin/local): the
	// identity cefiotctl uses in the local default (its owner).
	Admin = sitepki.Admin
)

// PKIDir is the directory of site's CA and certificates.
func (s *Stack) PKIDir(site string) string { return filepath.Join(s.cfg.RunDir, "pki", site) }

// PKI is site's PKI.
func (s *Stack) PKI(site string) sitepki.Site { return sitepki.Site{Name: site, Dir: s.PKIDir(site)} }

// Sites are the stack's two sites (edge first).
func (s *Stack) Sites() []string { return []string{s.cfg.Site, "cloud"} }

// edgePKIs are the PKIs of every edge site the cloud admits: the stack's
// own, then the remote sites'.
func (s *Stack) edgePKIs() []sitepki.Site {
	out := []sitepki.Site{s.PKI(s.cfg.Site)}
	for _, site := range s.cfg.RemoteSites {
		out = append(out, s.PKI(site))
	}
	return out
}

// makePKI makes (or keeps) each site's CA and issues every component's
// certificate afresh, and each edge board its own cloud credential.
func (s *Stack) makePKI() error {
	for _, site := range append(s.Sites(), s.cfg.RemoteSites...) {
		var boards []string
		if site == s.cfg.Site {
			boards = s.EdgeBoards()
		}
		if _, err := sitepki.MakeWithBoards(s.PKIDir(site), site, boards); err != nil {
			return fmt.Errorf("localstack: %w", err)
		}
	}
	return nil
}

// RotateTLS reissues every certificate of both sites (same CAs, new keys)
// and has the Kafka brokers take theirs at once (kafkalocal.ReloadTLS); the
// services take theirs by themselves within tlsx.ReloadInterval.
func (s *Stack) RotateTLS(ctx context.Context) error {
	if s.cfg.InsecurePlaintext {
		return nil
	}
	if err := s.makePKI(); err != nil {
		return err
	}
	for _, c := range []*kafkalocal.Cluster{s.Edge, s.Cloud} {
		if err := c.ReloadTLS(ctx); err != nil {
			return fmt.Errorf("localstack: %w", err)
		}
	}
	return nil
}

// EdgeBoards are the edge site's boards (the -node of its workers): the
// simulated nodes, or the one board "local".
func (s *Stack) EdgeBoards() []string {
	if len(s.cfg.Nodes) == 0 {
		return []string{"local"}
	}
	out := make([]string, len(s.cfg.Nodes))
	for i, n := range s.cfg.Nodes {
		out[i] = n.Name
	}
	return out
}

// RevokeBoard locks one edge board out of the cloud cluster, as an
// operator does for a stolen board (kafkaacl.RevokeNode).
func (s *Stack) RevokeBoard(ctx context.Context, board string) error {
	if err := s.Cloud.RevokeNode(ctx, s.cfg.Site, board); err != nil {
		return fmt.Errorf("localstack: %w", err)
	}
	return nil
}

// Identity loads component's key pair in every site of the stack, as one
// client (see tlsx.Sites): the console, or an operator who works on both.
func (s *Stack) Identity(component string) (tlsx.Sites, error) {
	out, err := sitepki.Identity(component, s.PKI(s.Sites()[0]), s.PKI(s.Sites()[1]))
	if err != nil {
		return nil, fmt.Errorf("localstack: %w", err)
	}
	return out, nil
}

// Operator is the stack's operator (operator/local of both sites): the
// identity of tests, benchmarks and cefiot-local.
func (s *Stack) Operator() tlsx.Sites { return s.operator }

// OperatorHTTP is the operator's HTTPS client.
func (s *Stack) OperatorHTTP() *http.Client { return s.opHTTP }

// argValue is the value of flag name in args ("" if absent).
func argValue(args []string, name string) string {
	if i := slices.Index(args, name); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// ClientConfigPath is the operator's client config (cefiotctl finds it).
func (s *Stack) ClientConfigPath() string { return filepath.Join(s.cfg.RunDir, "cefiotctl.yaml") }

// writeClientConfig writes the operator's client config: both sites'
// schedulers and operator/local's files in each.
func (s *Stack) writeClientConfig() error {
	cfg := clientconfig.Config{CurrentSite: s.cfg.Site, Sites: map[string]clientconfig.Site{}}
	for _, site := range s.Sites() {
		f := tlsx.FilesIn(s.PKIDir(site), Admin)
		name := "scheduler-cloud"
		if site == s.cfg.Site {
			name = "scheduler-edge"
		}
		cs := clientconfig.Site{Scheduler: s.SchedulerGRPC(name), Cert: f.Cert, Key: f.Key, CA: f.CA}
		if site == "cloud" {
			cs.Sink = s.SinkGRPC()
		}
		cfg.Sites[site] = cs
	}
	if err := clientconfig.Write(s.ClientConfigPath(), cfg); err != nil {
		return fmt.Errorf("localstack: %w", err)
	}
	return nil
}

// securityArgs are the TLS flags of a process of bin in site on board (the
// bridge also trusts the cloud's CA, and shows the cloud its board's own
// credential), or -insecure-plaintext.
func (s *Stack) securityArgs(site, board, bin string) []string {
	if s.cfg.InsecurePlaintext {
		return []string{"-insecure-plaintext"}
	}
	args := s.PKI(site).ServiceArgs(bin)
	if bin == pipeline.KindBridge {
		args = append(args, "-cloud-tls-ca", s.PKI("cloud").Files(access.Kafka).CA)
		args = append(args, s.PKI(site).BoardArgs(board)...)
	}
	return args
}

func (s *Stack) scheme() string {
	if s.cfg.InsecurePlaintext {
		return "http"
	}
	return "https"
}

func (s *Stack) kafkaTLS(t *kafkalocal.TLS) *kafkalocal.TLS {
	if s.cfg.InsecurePlaintext {
		return nil
	}
	return t
}

func (s *Stack) etcdTLS(f *tlsx.Files) *tlsx.Files {
	if s.cfg.InsecurePlaintext {
		return nil
	}
	return f
}

// EdgeKafkaConn is the edge Kafka cluster as component of the edge site
// reaches it (plaintext with InsecurePlaintext).
func (s *Stack) EdgeKafkaConn(component string) kafkax.Conn {
	conn := kafkax.Conn{Bootstrap: s.Edge.BootstrapServers()}
	if !s.cfg.InsecurePlaintext {
		files := tlsx.FilesIn(s.PKIDir(s.cfg.Site), component)
		conn.TLS = &files
	}
	return conn
}

// OperatorDial is the gRPC credential of the stack's operator (plaintext
// with InsecurePlaintext).
func (s *Stack) OperatorDial() grpc.DialOption {
	if s.cfg.InsecurePlaintext {
		return grpc.WithTransportCredentials(insecure.NewCredentials())
	}
	return s.operator.DialOption()
}

// grantKafka gives every identity of the stack its rights in both
// clusters (libs/kafkaacl), and the operator read access for kcat.
func (s *Stack) grantKafka(ctx context.Context) error {
	if s.cfg.InsecurePlaintext {
		return nil
	}
	edge, cloud := s.cfg.Site, "cloud"
	edgeGrants := append(kafkaacl.Edge(edge), kafkaacl.Reader(pki.Identity{Site: edge, Component: Operator})...)
	if err := s.Edge.Grant(ctx, edgeGrants); err != nil {
		return fmt.Errorf("localstack: %w", err)
	}
	cloudGrants := append(kafkaacl.Cloud(cloud), kafkaacl.CloudSite(edge, s.EdgeBoards()...)...)
	for _, site := range s.cfg.RemoteSites {
		cloudGrants = append(cloudGrants, kafkaacl.CloudSite(site)...)
	}
	cloudGrants = append(cloudGrants, kafkaacl.Reader(pki.Identity{Site: cloud, Component: Operator})...)
	if err := s.Cloud.Grant(ctx, cloudGrants); err != nil {
		return fmt.Errorf("localstack: %w", err)
	}
	return nil
}
