package kafkalocal

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cefiot/cefiot/libs/kafkaconf"
)

func testNodes(n int) []Node {
	nodes := make([]Node, n)
	for i := range nodes {
		nodes[i] = Node{
			ID:             i + 1,
			Dir:            filepath.Join("base", "node-"+string(rune('1'+i))),
			BrokerAddr:     "127.0.0.1:" + string(rune('a'+i)),
			ControllerAddr: "127.0.0.1:c" + string(rune('a'+i)),
		}
	}
	return nodes
}

func parseProps(t *testing.T, b []byte) map[string]string {
	t.Helper()
	m := map[string]string{}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("bad line %q", line)
		}
		if _, dup := m[k]; dup {
			t.Fatalf("duplicate key %q", k)
		}
		m[k] = v
	}
	return m
}

func TestServerPropertiesReplication(t *testing.T) {
	for _, tc := range []struct {
		rf, minISR string
		n          int
	}{
		{n: 1, rf: "1", minISR: "1"},
		{n: 2, rf: "2", minISR: "1"},
		{n: 3, rf: "3", minISR: "2"},
		{n: 5, rf: "3", minISR: "2"},
	} {
		nodes := testNodes(tc.n)
		cfg := ClusterConfig{Name: "t", Brokers: tc.n}
		p := parseProps(t, serverProperties(cfg, nodes, nodes[tc.n-1], ""))
		for _, k := range []string{"default.replication.factor", "offsets.topic.replication.factor",
			"transaction.state.log.replication.factor", "share.coordinator.state.topic.replication.factor"} {
			if p[k] != tc.rf {
				t.Errorf("%d brokers: %s=%q, want %s", tc.n, k, p[k], tc.rf)
			}
		}
		for _, k := range []string{"min.insync.replicas", "transaction.state.log.min.isr", "share.coordinator.state.topic.min.isr"} {
			if p[k] != tc.minISR {
				t.Errorf("%d brokers: %s=%q, want %s", tc.n, k, p[k], tc.minISR)
			}
		}
		if got := strings.Count(p["controller.quorum.voters"], "@"); got != tc.n {
			t.Errorf("%d brokers: %d voters in %q", tc.n, got, p["controller.quorum.voters"])
		}
		if p["node.id"] != string(rune('0'+tc.n)) {
			t.Errorf("node.id=%q, want %d", p["node.id"], tc.n)
		}
	}
}

func TestServerPropertiesDefaultsAndOverrides(t *testing.T) {
	nodes := testNodes(1)
	cfg := ClusterConfig{Name: "t", Brokers: 1, Properties: map[string]string{
		"num.partitions":   "6",
		"compression.type": "zstd",
	}}
	p := parseProps(t, serverProperties(cfg, nodes, nodes[0], ""))
	want := map[string]string{
		"process.roles":                    "broker,controller",
		"controller.listener.names":        "CONTROLLER",
		"controller.quorum.voters":         "1@127.0.0.1:ca",
		"listeners":                        "CLIENT://127.0.0.1:a,CONTROLLER://127.0.0.1:ca",
		"advertised.listeners":             "CLIENT://127.0.0.1:a",
		"listener.security.protocol.map":   "CLIENT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"message.max.bytes":                "16777216",
		"replica.fetch.max.bytes":          "16777216",
		"auto.create.topics.enable":        "false",
		"group.initial.rebalance.delay.ms": "0",
		"num.partitions":                   "6",
		"compression.type":                 "zstd",
		"log.dirs":                         filepath.Join(nodes[0].Dir, "data"),
	}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("%s=%q, want %q", k, p[k], v)
		}
	}
}

func TestClusterID(t *testing.T) {
	for range 100 {
		id, err := newClusterID()
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 22 || strings.HasPrefix(id, "-") {
			t.Fatalf("bad id %q", id)
		}
		if err := validClusterID(id); err != nil {
			t.Fatal(err)
		}
	}
	if validClusterID("not-an-id") == nil {
		t.Error("accepted a bad id")
	}
}

func TestReadClusterID(t *testing.T) {
	dir := t.TempDir()
	if id, err := readClusterID(dir); err != nil || id != "" {
		t.Fatalf("unformatted: %q, %v", id, err)
	}
	meta := "#\n#Thu Nov 27 10:00:00 UTC 2025\nnode.id=1\ndirectory.id=x\nversion=1\ncluster.id=abc\n"
	if err := os.WriteFile(filepath.Join(dir, "meta.properties"), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
	if id, err := readClusterID(dir); err != nil || id != "abc" {
		t.Fatalf("got %q, %v", id, err)
	}
}

func TestAllocatePorts(t *testing.T) {
	b, c, err := allocatePorts("127.0.0.1", 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range append(b, c...) {
		if p == 0 || seen[p] {
			t.Fatalf("bad or repeated port %d in %v %v", p, b, c)
		}
		seen[p] = true
	}
	// A fixed base port lays out client/controller pairs.
	b, c, err = allocatePorts("127.0.0.1", b[0], 1)
	if err != nil {
		t.Fatal(err)
	}
	if c[0] != b[0]+1 {
		t.Fatalf("controller port %d, want %d", c[0], b[0]+1)
	}
}

func TestFindLibs(t *testing.T) {
	root := t.TempDir()
	t.Setenv(EnvLibs, "")
	t.Setenv(EnvVersion, "")

	_, err := FindLibs(root)
	if !errors.Is(err, ErrLibsNotFound) {
		t.Fatalf("want ErrLibsNotFound, got %v", err)
	}
	if !strings.Contains(err.Error(), "scripts/fetch-kafka.sh") {
		t.Errorf("error does not say how to fetch: %v", err)
	}

	libs := filepath.Join(root, ".cache", "kafka", DefaultVersion, "libs")
	if err := os.MkdirAll(libs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(libs, "kafka_2.13-"+DefaultVersion+".jar"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := FindLibs(root); err != nil || got != libs {
		t.Fatalf("FindLibs = %q, %v; want %q", got, err, libs)
	}

	t.Setenv(EnvVersion, "9.9.9")
	if _, err := FindLibs(root); !errors.Is(err, ErrLibsNotFound) || !strings.Contains(err.Error(), "9.9.9") {
		t.Fatalf("KAFKA_VERSION not honoured: %v", err)
	}

	t.Setenv(EnvLibs, libs)
	if got, err := FindLibs(filepath.Join(root, "elsewhere")); err != nil || got != libs {
		t.Fatalf("%s not honoured: %q, %v", EnvLibs, got, err)
	}
}

func TestFindRepoRoot(t *testing.T) {
	root := t.TempDir()
	deep := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "go.work"), []byte("go 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := FindRepoRoot(deep); err != nil || got != root {
		t.Fatalf("FindRepoRoot = %q, %v; want %q", got, err, root)
	}
}

func TestStartValidates(t *testing.T) {
	if _, err := Start(t.Context(), ClusterConfig{LibsDir: t.TempDir()}, nil); err == nil || !strings.Contains(err.Error(), "BaseDir") {
		t.Fatalf("missing BaseDir: %v", err)
	}
	if _, err := Start(t.Context(), ClusterConfig{BaseDir: t.TempDir(), LibsDir: t.TempDir()}, nil); !errors.Is(err, ErrLibsNotFound) {
		t.Fatalf("empty LibsDir: %v", err)
	}
}

func TestServerPropertiesWithTLS(t *testing.T) {
	nodes := []Node{{ID: 1, Dir: "/d/node-1", BrokerAddr: "127.0.0.1:a", ControllerAddr: "127.0.0.1:ca"}}
	cfg := ClusterConfig{Brokers: 1, TLS: &TLS{}}
	p := parseProps(t, serverProperties(cfg, nodes, nodes[0], "User:CN=kafka,OU=edge,O=cefiot"))
	for k, v := range map[string]string{
		"listener.security.protocol.map": "CLIENT:SSL,CONTROLLER:SSL",
		"ssl.client.auth":                "required",
		"ssl.keystore.type":              "PEM",
		"ssl.keystore.location":          "/d/node-1/tls/keystore.pem",
		"authorizer.class.name":          "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"allow.everyone.if.no.acl.found": "false",
		"super.users":                    "User:CN=kafka,OU=edge,O=cefiot",
		"inter.broker.listener.name":     "CLIENT",
	} {
		if p[k] != v {
			t.Errorf("%s=%q, want %q", k, p[k], v)
		}
	}
}

func TestServerPropertiesWithDiskBudget(t *testing.T) {
	nodes := testNodes(1)
	libs := t.TempDir()
	if err := os.WriteFile(filepath.Join(libs, "kafka_2.13-4.1.1.jar"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := ClusterConfig{BaseDir: t.TempDir(), LibsDir: libs, Java: "java",
		Properties: map[string]string{"message.max.bytes": "1048576"},
		DiskBudget: &kafkaconf.Budget{Bytes: 96 << 20, Topics: []kafkaconf.BudgetTopic{{Name: "t", Partitions: 2}}}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	p := parseProps(t, serverProperties(cfg, nodes, nodes[0], ""))
	if p["log.retention.bytes"] != strconv.FormatInt(cfg.budget.RetentionBytes, 10) || cfg.budget.RetentionBytes <= 0 ||
		p["log.segment.bytes"] != "1048576" || p["log.retention.check.interval.ms"] != "2000" {
		t.Errorf("budget properties: %v", p)
	}
	if cfg.budget.Budget.InternalPartitions != 20 || cfg.budget.Budget.MaxRecordBytes != 1<<20 {
		t.Errorf("budget planned for %+v, want the cluster's 20 internal partitions and 1 MiB records", cfg.budget.Budget)
	}
	// The pipeline's 16 MiB records need 16 MiB segments: 96 MiB is too
	// small for the site's 11 partitions.
	cfg.Properties, cfg.DiskBudget.Topics = nil, nil
	if _, err := cfg.withDefaults(); !errors.Is(err, kafkaconf.ErrBudgetTooSmall) {
		t.Errorf("96 MiB for a site's topics: %v, want ErrBudgetTooSmall", err)
	}
}
