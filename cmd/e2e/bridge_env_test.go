package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cefiot/cefiot/cmd/internal/bridgeharness"
	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/etcdx"
	"github.com/cefiot/cefiot/libs/harness/etcdtest"
	"github.com/cefiot/cefiot/libs/harness/kafkalocal"
	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
	"github.com/cefiot/cefiot/libs/harness/netem"
	"github.com/cefiot/cefiot/libs/harness/netx"
	"github.com/cefiot/cefiot/libs/harness/sitepki"
	"github.com/cefiot/cefiot/libs/kafkaacl"
	"github.com/cefiot/cefiot/libs/kafkaconf"
	"github.com/cefiot/cefiot/libs/logging"
)

// bridgeEnv is an edge and a cloud Kafka cluster, an etcd for the edge site
// and the bridge binary; with a namespace, the bridge runs behind two links:
// lan to the edge cluster and etcd, wan to the cloud cluster.
type bridgeEnv struct {
	t           *testing.T
	bins, dir   string
	edge, cloud *kafkalocal.Cluster
	etcd        string
	cli         *clientv3.Client
	ns          *netem.Namespace
	lan, wan    *netem.Link
	pki         sitepki.Site // the edge site's
	cloudPKI    sitepki.Site // the cloud's
}

type envOptions struct {
	edgeBrokers int
	netns       bool
	edgeProps   map[string]string
	edgeBase    string            // the edge cluster's BaseDir (default a temporary one)
	edgeBudget  *kafkaconf.Budget // the edge cluster's disk budget
}

func newBridgeEnv(t *testing.T, o envOptions) *bridgeEnv {
	t.Helper()
	e := &bridgeEnv{t: t, bins: binDir(t), dir: t.TempDir()}
	edgeHost, cloudHost := "127.0.0.1", "127.0.0.1"
	if o.netns {
		if err := netem.Available(); err != nil {
			t.Skipf("network namespaces unavailable: %v", err)
		}
		ns, err := netem.NewNamespace("cfbridge")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := ns.Close(); err != nil {
				t.Errorf("delete namespace: %v", err)
			}
		})
		e.ns = ns
		if e.lan, err = ns.AddLink("lan"); err != nil {
			t.Fatal(err)
		}
		if e.wan, err = ns.AddLink("wan"); err != nil {
			t.Fatal(err)
		}
		edgeHost, cloudHost = e.lan.HostIP.String(), e.wan.HostIP.String()
	}
	if o.edgeBrokers == 0 {
		o.edgeBrokers = 1
	}
	// Secure as deployed: each site its CA, both clusters mutual TLS with
	// ACLs, the cloud trusting the edge site's bridge.
	var err error
	if e.pki, err = sitepki.Make(filepath.Join(e.dir, "pki", "edge"), "edge", edgeHost); err != nil {
		t.Fatal(err)
	}
	if e.cloudPKI, err = sitepki.Make(filepath.Join(e.dir, "pki", "cloud"), "cloud", cloudHost); err != nil {
		t.Fatal(err)
	}
	// Both clusters start at once; kafkatest registers their cleanup.
	e.edge = kafkatest.StartConfigForTest(t, kafkalocal.ClusterConfig{Name: "edge", Brokers: o.edgeBrokers, Host: edgeHost, Properties: o.edgeProps, TLS: e.pki.KafkaTLS(),
		BaseDir: o.edgeBase, DiskBudget: o.edgeBudget})
	e.cloud = kafkatest.StartConfigForTest(t, kafkalocal.ClusterConfig{Name: "cloud", Brokers: 1, Host: cloudHost, TLS: e.cloudPKI.KafkaTLS(e.pki)})
	grantCtx, grantCancel := context.WithTimeout(context.Background(), time.Minute)
	defer grantCancel()
	if err := e.edge.Grant(grantCtx, kafkaacl.Edge("edge")); err != nil {
		t.Fatal(err)
	}
	if err := e.cloud.Grant(grantCtx, kafkaacl.CloudSite("edge")); err != nil {
		t.Fatal(err)
	}
	if o.netns {
		client, peer := freeOn(t, edgeHost), freeOn(t, edgeHost)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		etcdFiles := e.pki.Files(access.Etcd)
		emb, err := etcdx.StartEmbedded(ctx, etcdx.EmbeddedConfig{Name: "edge", Dir: t.TempDir(), ClientAddr: client, PeerAddr: peer, TLS: &etcdFiles}, logging.Discard())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(emb.Close)
		e.etcd = emb.Endpoint()
		sched, err := e.pki.Load(access.Scheduler)
		if err != nil {
			t.Fatal(err)
		}
		if e.cli, err = etcdx.Connect(ctx, []string{e.etcd}, sched.ClientConfig()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.cli.Close() })
	} else {
		emb, cli := etcdtest.StartSecure(t, e.pki)
		e.etcd, e.cli = emb.Endpoint(), cli
	}
	return e
}

func freeOn(t *testing.T, host string) string {
	addr, err := netx.FreeAddrOn(host)
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// schedule starts the site's scheduler with a bridge workload of params.
func (e *bridgeEnv) schedule(params map[string]string) { e.scheduleOn(e.etcd, "scheduler", params) }

func (e *bridgeEnv) scheduleOn(etcd, name string, params map[string]string) {
	e.t.Helper()
	p, err := bridgeharness.StartScheduler(bridgeharness.SchedulerConfig{BinDir: e.bins, Dir: filepath.Join(e.dir, name), EtcdEndpoint: etcd, Params: params, PKI: e.pki})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p.Stop(ctx, 10*time.Second)
		if e.t.Failed() {
			e.t.Logf("scheduler log tail:\n%s", p.Tail(40))
		}
	})
}

// startBridge starts a bridge process; it is stopped when the test ends and
// its log tail is printed when the test failed.
func (e *bridgeEnv) startBridge(args ...string) *bridgeharness.Bridge {
	return e.startBridgeOn(e.etcd, bridgeWorker, args...)
}

// startBridgeOn starts a bridge worker of another control plane (etcd).
func (e *bridgeEnv) startBridgeOn(etcd, workerID string, args ...string) *bridgeharness.Bridge {
	e.t.Helper()
	cfg := bridgeharness.Config{
		BinDir: e.bins, Dir: e.bridgeDir(workerID), WorkerID: workerID,
		EdgeBootstrap: e.edge.BootstrapServers(), CloudBootstrap: e.cloud.BootstrapServers(), CloudTLSCA: e.cloudPKI.Files(access.Kafka).CA,
		EtcdEndpoint: etcd, Args: args, PKI: e.pki,
	}
	if e.ns != nil {
		cfg.NS, cfg.AdminHost = e.ns, e.lan.NsIP.String()
	}
	b, err := bridgeharness.Start(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b.Stop(ctx)
	})
	return b
}

// bridgeDir is the directory of a bridge worker's log: "bridge" for the
// test's own worker, the worker id for any other (a zombie), so that each
// log tells one process's story.
func (e *bridgeEnv) bridgeDir(workerID string) string {
	if workerID == bridgeWorker {
		return filepath.Join(e.dir, "bridge")
	}
	return filepath.Join(e.dir, workerID)
}

// bridgeWorker is the worker id of the test's own bridge.
const bridgeWorker = "bridge-test"

// bridgeLogs is the text of every bridge log of the test.
func (e *bridgeEnv) bridgeLogs() map[string][]byte {
	paths, _ := filepath.Glob(filepath.Join(e.dir, "*", "bridge.log"))
	out := map[string][]byte{}
	for _, p := range paths {
		if data, err := os.ReadFile(p); err == nil {
			out[filepath.Base(filepath.Dir(p))] = data
		}
	}
	return out
}

// logTail prints each bridge log's tail when the test failed.
func (e *bridgeEnv) logTailOnFailure() {
	e.t.Cleanup(func() {
		if !e.t.Failed() {
			return
		}
		for name, data := range e.bridgeLogs() {
			const n = 12000
			if len(data) > n {
				data = data[len(data)-n:]
			}
			e.t.Logf("%s log tail:\n%s", name, data)
		}
	})
}

func (e *bridgeEnv) createEdgeTopic(topic string, partitions int, configs map[string]string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bridgeharness.CreateTopic(ctx, e.edge.Conn(), topic, partitions, configs); err != nil {
		e.t.Fatal(err)
	}
}

func (e *bridgeEnv) feeder(topic string, partitions, size int) *bridgeharness.Feeder {
	e.t.Helper()
	f, err := bridgeharness.NewFeeder(e.edge.Conn(), topic, partitions, size)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(f.Close)
	return f
}

// checkCopy waits for the cloud copy of topic and fails the test on any
// difference.
func (e *bridgeEnv) checkCopy(t *testing.T, topic string, skip func(int32, int64) bool) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	diff, n, err := bridgeharness.AwaitCopy(ctx, e.edge.Conn(), e.cloud.Conn(), topic, "edge-edge."+topic, skip)
	if err != nil {
		t.Fatal(err)
	}
	if diff != "" {
		t.Fatalf("cloud copy of %s differs from the edge topic:\n%s", topic, diff)
	}
	return n
}
