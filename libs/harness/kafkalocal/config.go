package kafkalocal

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cefiot/cefiot/libs/harness/netx"
	"github.com/cefiot/cefiot/libs/kafkaconf"
	"github.com/cefiot/cefiot/libs/pipeline"
)

// MaxMessageBytes is the broker's message.max.bytes and
// replica.fetch.max.bytes (libs/kafkaconf): room for a camera frame per
// record.
const MaxMessageBytes = pipeline.MaxRecordBytes

// Defaults applied by [Start] to zero fields of [ClusterConfig].
const (
	DefaultName         = "kafka"
	DefaultHost         = "127.0.0.1"
	DefaultStopTimeout  = 30 * time.Second
	DefaultStartTimeout = 2 * time.Minute
)

// DefaultJVMOpts are the JVM flags of each broker: a small heap and G1 tuned
// for short pauses, as Kafka's own scripts do, sized so that three brokers fit
// a 2-core machine.
var DefaultJVMOpts = []string{
	"-Xms256m",
	"-Xmx512m",
	"-XX:+UseG1GC",
	"-XX:MaxGCPauseMillis=20",
	"-XX:InitiatingHeapOccupancyPercent=35",
	"-XX:+ExplicitGCInvokesConcurrent",
	"-Djava.awt.headless=true",
}

// toolJVMOpts are the JVM flags of short-lived tools (StorageTool): startup
// time matters, throughput does not.
var toolJVMOpts = []string{
	"-Xmx256m",
	"-XX:+UseSerialGC",
	"-XX:TieredStopAtLevel=1",
	"-Djava.awt.headless=true",
}

// ClusterConfig describes a local KRaft cluster. Zero fields get defaults.
type ClusterConfig struct {
	// Name labels the cluster in logs and errors (default "kafka").
	Name string
	// Brokers is the number of combined controller+broker nodes, with node
	// ids 1..Brokers (default 1).
	Brokers int
	// BaseDir holds one directory per node, node-<id> (required). An
	// existing formatted BaseDir is reused with its data and cluster id.
	BaseDir string
	// LibsDir is the directory of Kafka jars (required); see [FindLibs].
	LibsDir string
	// Host is the address all listeners bind and advertise (default
	// 127.0.0.1).
	Host string
	// BasePort, when not 0, fixes the ports: node i listens for clients on
	// BasePort+2(i-1) and for the controller quorum on BasePort+2(i-1)+1,
	// so 19092 gives 19092/19093, 19094/19095, ... When 0, free ports are
	// picked.
	BasePort int
	// ClusterID is the KRaft cluster id (22 characters, base64url of 16
	// bytes). Empty means the id already in BaseDir or a new random one.
	ClusterID string
	// Java is the java binary (default $JAVA_HOME/bin/java, else java on
	// PATH).
	Java string
	// JVMOpts replaces [DefaultJVMOpts] when not nil.
	JVMOpts []string
	// Properties are added to or override the generated server.properties
	// of every node.
	Properties map[string]string
	// StopTimeout is how long a stop waits after SIGTERM before SIGKILL
	// (default 30s).
	StopTimeout time.Duration
	// StartTimeout bounds Start and StartBroker when their ctx has no
	// deadline (default 2m).
	StartTimeout time.Duration
	// TLS, when set, makes every listener (clients, inter-broker,
	// controller) mutual TLS and turns on the StandardAuthorizer with
	// allow.everyone.if.no.acl.found=false: a client needs ACLs for
	// everything it does. nil: plaintext and no authorization.
	TLS *TLS
	// DiskBudget, when set, is the room of each node's log dir: the
	// brokers' retention is planned from it (kafkaconf.PlanBudget), so that
	// they delete their oldest records rather than fill the disk. Set
	// Bytes, and Topics when the cluster holds others than a site's
	// (kafkaconf.SiteTopics of pipeline.DefaultPartitions) and
	// IngressBytesPerSec; the brokers, internal partitions and record size
	// are the cluster's.
	DiskBudget *kafkaconf.Budget

	budget *kafkaconf.BudgetPlan // planned from DiskBudget by withDefaults
}

// Internal topics' partitions of every cluster (Kafka's default is 50 each).
const (
	offsetsPartitions     = 10
	transactionPartitions = 10
)

// TLS is a cluster's security: the brokers' key pair and the trust bundles
// of the clients it admits.
type TLS struct {
	// Cert and Key are the brokers' key pair (PEM, PKCS#8 key), issued for
	// Host. Its identity is the cluster's super user (the brokers and
	// controllers among themselves, and Admin).
	Cert, Key string
	// TrustBundles are the PEM files of the CAs a client's certificate may
	// chain to: the cluster's own site, and for a cloud cluster every site
	// whose bridge writes to it. Removing a site's bundle (and restarting
	// the brokers) locks the whole site out.
	TrustBundles []string
	// CA is the bundle the brokers' own certificate chains to, which the
	// cluster's tools trust.
	CA string
}

// Validate reports what [Start] would refuse in cfg, starting nothing.
func (cfg ClusterConfig) Validate() error {
	_, err := cfg.withDefaults()
	return err
}

// withDefaults validates cfg and fills in its zero fields.
func (cfg ClusterConfig) withDefaults() (ClusterConfig, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.Brokers == 0 {
		cfg.Brokers = 1
	}
	if cfg.Brokers < 0 {
		return cfg, fmt.Errorf("brokers must be positive, got %d", cfg.Brokers)
	}
	if cfg.DiskBudget != nil {
		plan, err := planBudget(cfg)
		if err != nil {
			return cfg, err
		}
		cfg.budget = &plan
	}
	if cfg.BaseDir == "" {
		return cfg, errors.New("BaseDir is required")
	}
	base, err := filepath.Abs(cfg.BaseDir)
	if err != nil {
		return cfg, fmt.Errorf("base dir: %w", err)
	}
	cfg.BaseDir = base
	if cfg.LibsDir == "" {
		return cfg, errors.New("LibsDir is required (see kafkalocal.FindLibs)")
	}
	libs, err := filepath.Abs(cfg.LibsDir)
	if err != nil {
		return cfg, fmt.Errorf("libs dir: %w", err)
	}
	if err := checkLibs(libs); err != nil {
		return cfg, err
	}
	cfg.LibsDir = libs
	if cfg.Host == "" {
		cfg.Host = DefaultHost
	}
	if cfg.BasePort < 0 || (cfg.BasePort > 0 && cfg.BasePort+2*cfg.Brokers-1 > 65535) {
		return cfg, fmt.Errorf("base port %d out of range for %d brokers", cfg.BasePort, cfg.Brokers)
	}
	if cfg.ClusterID != "" {
		if err := validClusterID(cfg.ClusterID); err != nil {
			return cfg, err
		}
	}
	if cfg.Java == "" {
		cfg.Java, err = findJava()
		if err != nil {
			return cfg, err
		}
	}
	if cfg.JVMOpts == nil {
		cfg.JVMOpts = slices.Clone(DefaultJVMOpts)
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	return cfg, nil
}

// planBudget plans cfg.DiskBudget for the cluster's brokers, internal
// partitions and largest record.
func planBudget(cfg ClusterConfig) (kafkaconf.BudgetPlan, error) {
	b := *cfg.DiskBudget
	b.Brokers = cfg.Brokers
	// The cluster's own settings, or what cfg.Properties set instead.
	setting := func(key string, def int64) (int64, error) {
		v, ok := cfg.Properties[key]
		if !ok {
			return def, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s %q: %w", key, v, err)
		}
		return n, nil
	}
	offsets, err := setting("offsets.topic.num.partitions", offsetsPartitions)
	if err != nil {
		return kafkaconf.BudgetPlan{}, err
	}
	transactions, err := setting("transaction.state.log.num.partitions", transactionPartitions)
	if err != nil {
		return kafkaconf.BudgetPlan{}, err
	}
	b.InternalPartitions = int(offsets + transactions)
	if b.MaxRecordBytes, err = setting("message.max.bytes", MaxMessageBytes); err != nil {
		return kafkaconf.BudgetPlan{}, err
	}
	if b.Topics == nil {
		b.Topics = kafkaconf.SiteTopics(pipeline.DefaultPartitions)
	}
	return kafkaconf.PlanBudget(b)
}

func findJava() (string, error) {
	if home := os.Getenv("JAVA_HOME"); home != "" {
		java := filepath.Join(home, "bin", "java")
		if _, err := os.Stat(java); err == nil {
			return java, nil
		}
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return "", fmt.Errorf("no java (17+) on PATH or in JAVA_HOME: %w", err)
	}
	return java, nil
}

// property is one line of server.properties.
type property struct{ key, value string }

// fromConf converts libs/kafkaconf's properties.
func fromConf(ps []kafkaconf.Property) []property {
	out := make([]property, len(ps))
	for i, p := range ps {
		out[i] = property{p.Key, p.Value}
	}
	return out
}

// serverProperties renders the server.properties of node n.
func serverProperties(cfg ClusterConfig, nodes []Node, n Node, superUser string) []byte {
	voters := make([]string, len(nodes))
	for i, o := range nodes {
		voters[i] = fmt.Sprintf("%d@%s", o.ID, o.ControllerAddr)
	}
	rf, minISR := kafkaconf.Replication(cfg.Brokers)
	protocol := "PLAINTEXT"
	if cfg.TLS != nil {
		protocol = "SSL"
	}
	props := []property{
		{"process.roles", "broker,controller"},
		{"node.id", strconv.Itoa(n.ID)},
		{"controller.quorum.voters", strings.Join(voters, ",")},
		{"listeners", "CLIENT://" + n.BrokerAddr + ",CONTROLLER://" + n.ControllerAddr},
		{"advertised.listeners", "CLIENT://" + n.BrokerAddr},
		{"listener.security.protocol.map", "CLIENT:" + protocol + ",CONTROLLER:" + protocol},
		{"inter.broker.listener.name", "CLIENT"},
		{"controller.listener.names", "CONTROLLER"},
		{"log.dirs", filepath.Join(n.Dir, "data")},

		{"num.partitions", "1"},
		{"offsets.topic.num.partitions", strconv.Itoa(offsetsPartitions)},
		{"transaction.state.log.num.partitions", strconv.Itoa(transactionPartitions)},
		{"group.initial.rebalance.delay.ms", "0"},
		{"log.retention.hours", "87600"},
		{"log.retention.bytes", "-1"},

		// Light threading for a 2-core machine running up to three brokers,
		// and a log cleaner buffer that fits a 512 MiB heap.
		{"num.network.threads", "2"},
		{"num.io.threads", "4"},
		{"num.recovery.threads.per.data.dir", "1"},
		{"background.threads", "4"},
		{"log.cleaner.dedupe.buffer.size", strconv.Itoa(32 << 20)},

		// Notice a dead node in seconds rather than tens of seconds.
		{"broker.heartbeat.interval.ms", "1000"},
		{"broker.session.timeout.ms", "6000"},
		{"replica.lag.time.max.ms", "10000"},
	}
	// What every cefiot cluster runs with, deployed ones too.
	props = append(props, fromConf(kafkaconf.Pipeline())...)
	props = append(props, fromConf(kafkaconf.Replicated(rf, minISR))...)
	if cfg.budget != nil {
		for _, p := range cfg.budget.Properties() {
			props = setProperty(props, p.Key, p.Value)
		}
	}
	if cfg.TLS != nil {
		props = append(props, tlsProperties(n, superUser)...)
	}
	for _, k := range slices.Sorted(maps.Keys(cfg.Properties)) {
		props = setProperty(props, k, cfg.Properties[k])
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# Generated by kafkalocal for cluster %q node %d; rewritten on every start.\n", cfg.Name, n.ID)
	for _, p := range props {
		fmt.Fprintf(&b, "%s=%s\n", p.key, escapeProperty(p.value))
	}
	return []byte(b.String())
}

// setProperty sets key in props, in its place when it is there.
func setProperty(props []property, key, value string) []property {
	for i := range props {
		if props[i].key == key {
			props[i].value = value
			return props
		}
	}
	return append(props, property{key, value})
}

// escapeProperty escapes a value for a Java properties file.
func escapeProperty(v string) string {
	r := strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	return r.Replace(v)
}

// newClusterID returns a random KRaft cluster id as Kafka's Uuid.randomUuid
// makes them: 16 random bytes, base64url without padding, never starting
// with '-' (which would read as a command-line flag).
func newClusterID() (string, error) {
	for {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("random cluster id: %w", err)
		}
		id := base64.RawURLEncoding.EncodeToString(b[:])
		if !strings.HasPrefix(id, "-") && b != [16]byte{} {
			return id, nil
		}
	}
}

func validClusterID(id string) error {
	b, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil || len(b) != 16 {
		return fmt.Errorf("cluster id %q is not a base64url-encoded 16-byte UUID", id)
	}
	return nil
}

// readClusterID returns the cluster.id of a formatted data dir, or "" when
// dataDir is not formatted.
func readClusterID(dataDir string) (string, error) {
	raw, err := os.ReadFile(filepath.Join(dataDir, "meta.properties"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cluster.id="); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("%s/meta.properties has no cluster.id", dataDir)
}

// allocatePorts returns the client and controller port of each of n nodes:
// from basePort when it is set (checking each is free), else free ports
// chosen by the kernel.
func allocatePorts(host string, basePort, n int) (broker, controller []int, err error) {
	broker, controller = make([]int, n), make([]int, n)
	if basePort > 0 {
		for i := range n {
			broker[i], controller[i] = basePort+2*i, basePort+2*i+1
		}
		for _, p := range append(slices.Clone(broker), controller...) {
			l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
			if err != nil {
				return nil, nil, fmt.Errorf("port %d is not free (another cluster running?): %w", p, err)
			}
			l.Close()
		}
		return broker, controller, nil
	}
	ports, err := netx.FreePorts(host, 2*n)
	if err != nil {
		return nil, nil, err
	}
	for i := range n {
		broker[i], controller[i] = ports[2*i], ports[2*i+1]
	}
	return broker, controller, nil
}
