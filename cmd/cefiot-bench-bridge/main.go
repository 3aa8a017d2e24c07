// Command cefiot-bench-bridge compares the cefiot bridge with Apache Kafka
// MirrorMaker 2 (dedicated mode, connect-mirror jars from Maven Central) on
// the same two local Kafka clusters in one run, both secured as deployed
// (mutual TLS on every listener, the StandardAuthorizer, the site's ACLs),
// and prints a table with the ratio: records/s and MB/s forwarding a
// backlog of 100 KB records (MM2 at its best: tasks.max equal to the
// partitions, its producer batching tuned, at-least-once; the bridge with
// exactly-once transactions), the time from process start to the first
// forwarded record, and the time until a newly created topic is forwarded.
// Against the limit no replicator can pass, a plain producer writing the
// same records into the cloud cluster, it reports each one's fraction; and
// (-tls-compare, on by default) the bridge's MB/s between plaintext
// clusters, for what TLS costs.
//
// It needs the broker jars and the MM2 jars: scripts/fetch-kafka.sh
// --with-mm2. Usage: cefiot-bench-bridge -bin-dir bin [-records 1000]
// [-size 100000].
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/cefiot/cefiot/cmd/internal/bridgeharness"
	"github.com/cefiot/cefiot/cmd/internal/localenv"
	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/etcdx"
	"github.com/cefiot/cefiot/libs/harness/kafkalocal"
	"github.com/cefiot/cefiot/libs/harness/netx"
	"github.com/cefiot/cefiot/libs/harness/procs"
	"github.com/cefiot/cefiot/libs/harness/sitepki"
	"github.com/cefiot/cefiot/libs/kafkaacl"
	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/logging"
	"github.com/cefiot/cefiot/libs/program"
)

type options struct {
	binDir       string
	records      int
	size         int
	partitions   int
	newTopicWait time.Duration
	keep         bool
	bridgeArgs   string
	skipMM2      bool
	tlsCompare   bool
}

func main() { program.Main("cefiot-bench-bridge", parseAndRun) }

func parseAndRun(ctx context.Context, args []string) error {
	var o options
	fs := flag.NewFlagSet("cefiot-bench-bridge", flag.ContinueOnError)
	fs.StringVar(&o.binDir, "bin-dir", "bin", "directory with the bridge and scheduler binaries")
	fs.IntVar(&o.records, "records", 2000, "records in the backlog to forward")
	fs.IntVar(&o.size, "size", 100_000, "record value size in bytes")
	fs.IntVar(&o.partitions, "partitions", 4, "partitions of the edge topic")
	fs.DurationVar(&o.newTopicWait, "new-topic-wait", 60*time.Second, "longest wait for a new topic to be forwarded")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory")
	fs.BoolVar(&o.skipMM2, "skip-mm2", false, "measure the bridge alone (for tuning)")
	fs.BoolVar(&o.tlsCompare, "tls-compare", true, "also run the bridge between plaintext clusters, to report what TLS costs")
	fs.StringVar(&o.bridgeArgs, "bridge-args", "", "more flags for the bridge, space-separated")
	if err := config.Parse(fs, args, nil); err != nil {
		return err
	}
	return run(ctx, o)
}

// result is one contender's numbers.
type result struct {
	name        string
	firstRecord time.Duration // process start to first record in the cloud
	forward     time.Duration // first to last record of the backlog
	newTopic    time.Duration // 0: not within the wait
	records     int
	bytes       int64
}

func (r result) recordsPerSec() float64 { return float64(r.records) / r.forward.Seconds() }
func (r result) mbPerSec() float64      { return float64(r.bytes) / 1e6 / r.forward.Seconds() }

func run(ctx context.Context, o options) error {
	logger := logging.Discard()
	env, err := localenv.Find(o.binDir)
	if err != nil {
		return err
	}
	libs, binDir := env.KafkaLibs, env.BinDir
	mm2Libs := filepath.Join(filepath.Dir(libs), "mm2-libs")
	if _, err := os.Stat(filepath.Join(filepath.Dir(libs), ".mm2-libs.complete")); err != nil {
		return fmt.Errorf("MirrorMaker 2 jars missing in %s: run scripts/fetch-kafka.sh --with-mm2", mm2Libs)
	}
	dir, err := os.MkdirTemp("", "cefiot-bench-bridge-")
	if err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	} else {
		fmt.Println("work dir:", dir)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()

	secure, err := startPair(ctx, dir, "secure", libs, true, logger)
	if err != nil {
		return err
	}
	defer secure.stop()
	const topic = "bench.frames"
	if err := secure.backlog(ctx, o, topic); err != nil {
		return err
	}
	fmt.Printf("backlog: %d records x %d B = %.1f MB in %s (%d partitions), clusters mutual TLS with ACLs\n", o.records, o.size, float64(o.records*o.size)/1e6, topic, o.partitions)

	var mm2 result
	if o.skipMM2 {
		mm2 = result{name: "skipped", forward: time.Hour}
	} else if mm2, err = runMM2(ctx, o, dir, libs, mm2Libs, secure.edge, secure.cloud, topic); err != nil {
		return fmt.Errorf("MirrorMaker 2: %w", err)
	}
	br, err := runBridge(ctx, o, filepath.Join(dir, "secure"), binDir, secure, topic, logger)
	if err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	plain, err := plainProducer(ctx, o, secure.cloud)
	if err != nil {
		return fmt.Errorf("plain producer: %w", err)
	}
	var brPlaintext *result
	if o.tlsCompare {
		secure.stop()
		insecure, err := startPair(ctx, dir, "plaintext", libs, false, logger)
		if err != nil {
			return err
		}
		defer insecure.stop()
		if err := insecure.backlog(ctx, o, topic); err != nil {
			return err
		}
		r, err := runBridge(ctx, o, filepath.Join(dir, "plaintext"), binDir, insecure, topic, logger)
		if err != nil {
			return fmt.Errorf("bridge without TLS: %w", err)
		}
		brPlaintext = &r
	}
	printTable(o, mm2, br, plain, brPlaintext)
	return nil
}

// pair is an edge and a cloud cluster, secured as deployed (each site its
// CA, mutual TLS, ACLs; the cloud trusting the edge site) or plaintext.
type pair struct {
	edge, cloud       *kafkalocal.Cluster
	edgePKI, cloudPKI sitepki.Site
	secure            bool
}

func startPair(ctx context.Context, dir, name, libs string, secure bool, logger *slog.Logger) (*pair, error) {
	p := &pair{secure: secure}
	edgeCfg := kafkalocal.ClusterConfig{Name: "edge", BaseDir: filepath.Join(dir, name, "edge"), LibsDir: libs}
	cloudCfg := kafkalocal.ClusterConfig{Name: "cloud", BaseDir: filepath.Join(dir, name, "cloud"), LibsDir: libs}
	var err error
	if p.edgePKI, err = sitepki.Make(filepath.Join(dir, name, "pki", "edge"), "edge"); err != nil {
		return nil, err
	}
	if p.cloudPKI, err = sitepki.Make(filepath.Join(dir, name, "pki", "cloud"), "cloud"); err != nil {
		return nil, err
	}
	if secure {
		edgeCfg.TLS, cloudCfg.TLS = p.edgePKI.KafkaTLS(), p.cloudPKI.KafkaTLS(p.edgePKI)
	}
	fmt.Printf("starting an edge and a cloud Kafka cluster (1 broker each, %s) in %s\n", map[bool]string{true: "mutual TLS", false: "plaintext"}[secure], filepath.Join(dir, name))
	if p.edge, err = kafkalocal.Start(ctx, edgeCfg, logger); err != nil {
		return nil, err
	}
	if p.cloud, err = kafkalocal.Start(ctx, cloudCfg, logger); err != nil {
		p.stop()
		return nil, err
	}
	if secure {
		if err := p.edge.Grant(ctx, kafkaacl.Edge("edge")); err != nil {
			p.stop()
			return nil, err
		}
		if err := p.cloud.Grant(ctx, kafkaacl.CloudSite("edge")); err != nil {
			p.stop()
			return nil, err
		}
	}
	return p, nil
}

func (p *pair) stop() {
	for _, c := range []*kafkalocal.Cluster{p.edge, p.cloud} {
		if c != nil {
			_ = c.Stop(context.Background())
		}
	}
}

// backlog writes the records to forward into the edge cluster.
func (p *pair) backlog(ctx context.Context, o options, topic string) error {
	if err := bridgeharness.CreateTopic(ctx, p.edge.Conn(), topic, o.partitions, nil); err != nil {
		return err
	}
	f, err := bridgeharness.NewFeeder(p.edge.Conn(), topic, o.partitions, o.size)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Produce(o.records); err != nil {
		return err
	}
	return f.Stop(ctx)
}

// plainProducer writes the same records straight into the cloud cluster
// (idempotent, acks=all, over the same TLS): the rate no replicator can
// pass, since a replicator also reads them.
func plainProducer(ctx context.Context, o options, cloud *kafkalocal.Cluster) (result, error) {
	fmt.Println("plain producer into the cloud cluster (the limit)...")
	const topic = "bench.plain"
	if err := bridgeharness.CreateTopic(ctx, cloud.Conn(), topic, o.partitions, nil); err != nil {
		return result{}, err
	}
	f, err := bridgeharness.NewFeeder(cloud.Conn(), topic, o.partitions, o.size)
	if err != nil {
		return result{}, err
	}
	defer f.Close()
	start := time.Now()
	if err := f.Produce(o.records); err != nil {
		return result{}, err
	}
	if err := f.Stop(ctx); err != nil {
		return result{}, err
	}
	return result{name: "plain producer", forward: time.Since(start), records: o.records, bytes: int64(o.records) * int64(o.size)}, nil
}

// measure waits for the records of a backlog in cloudTopic, counting them
// with a consumer (isolation as given), and returns the arrival times of the
// first and the last.
func measure(ctx context.Context, bootstrap kafkax.Conn, cloudTopic string, want int, readCommitted bool, timeout time.Duration) (first, last time.Time, err error) {
	iso := "read_uncommitted"
	if readCommitted {
		iso = "read_committed"
	}
	c, err := kafka.NewConsumer(kafkax.Config(bootstrap, map[string]any{
		"group.id": "bench-counter-" + cloudTopic, "enable.auto.commit": false, "isolation.level": iso,
		"auto.offset.reset": "earliest", "fetch.max.bytes": 64 << 20, "max.partition.fetch.bytes": 16 << 20,
		"topic.metadata.refresh.interval.ms": 500,
	}))
	if err != nil {
		return first, last, err
	}
	defer c.Close()
	if err := c.SubscribeTopics([]string{"^" + strings.ReplaceAll(cloudTopic, ".", `\.`) + "$"}, nil); err != nil {
		return first, last, err
	}
	deadline := time.Now().Add(timeout)
	n := 0
	for n < want {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return first, last, fmt.Errorf("%d of %d records in %s within %v", n, want, cloudTopic, timeout)
		}
		if m, ok := c.Poll(100).(*kafka.Message); ok && m.TopicPartition.Error == nil {
			if n == 0 {
				first = time.Now()
			}
			n++
			last = time.Now()
		}
	}
	return first, last, nil
}

// newTopicLatency creates a topic at the edge with one record and returns
// how long it took to show up in cloudName (0 when not within wait).
func newTopicLatency(ctx context.Context, edgeBootstrap, cloudBootstrap kafkax.Conn, topic, cloudName string, readCommitted bool, wait time.Duration) (time.Duration, error) {
	start := time.Now()
	if err := bridgeharness.CreateTopic(ctx, edgeBootstrap, topic, 1, nil); err != nil {
		return 0, err
	}
	f, err := bridgeharness.NewFeeder(edgeBootstrap, topic, 1, 100)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := f.Produce(1); err != nil {
		return 0, err
	}
	if err := f.Stop(ctx); err != nil {
		return 0, err
	}
	_, last, err := measure(ctx, cloudBootstrap, cloudName, 1, readCommitted, wait)
	if err != nil {
		return 0, nil
	}
	return last.Sub(start), nil
}

func runMM2(ctx context.Context, o options, dir, libs, mm2Libs string, edge, cloud *kafkalocal.Cluster, topic string) (result, error) {
	fmt.Printf("MirrorMaker 2 (dedicated mode, at-least-once, tasks.max=%d as the partitions, producer batching tuned)...\n", o.partitions)
	edgeBS, cloudBS := edge.Conn(), cloud.Conn()
	props := fmt.Sprintf(`clusters = edge, cloud
edge.bootstrap.servers = %s
cloud.bootstrap.servers = %s
%s
%s
edge->cloud.enabled = true
tasks.max = %d
cloud.producer.linger.ms = 20
cloud.producer.batch.size = 1048576
cloud.producer.max.request.size = 16777216
edge.consumer.max.partition.fetch.bytes = 16777216
edge.consumer.fetch.max.bytes = 67108864
edge->cloud.topics = bench\\..*
cloud->edge.enabled = false
replication.factor = 1
checkpoints.topic.replication.factor = 1
heartbeats.topic.replication.factor = 1
offset-syncs.topic.replication.factor = 1
offset.storage.replication.factor = 1
status.storage.replication.factor = 1
config.storage.replication.factor = 1
sync.topic.acls.enabled = false
`, edgeBS, cloudBS, javaTLS("edge", edge), javaTLS("cloud", cloud), o.partitions)
	propsPath := filepath.Join(dir, "mm2.properties")
	if err := os.WriteFile(propsPath, []byte(props), 0o644); err != nil {
		return result{}, err
	}
	log4j := filepath.Join(dir, "mm2-log4j2.properties")
	if err := os.WriteFile(log4j, []byte("status = warn\nappender.c.type = Console\nappender.c.name = c\nappender.c.layout.type = PatternLayout\nappender.c.layout.pattern = [%d] %p %m (%c)%n\nrootLogger.level = INFO\nrootLogger.appenderRef.c.ref = c\n"), 0o644); err != nil {
		return result{}, err
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return result{}, err
	}
	start := time.Now()
	p, err := procs.Start(procs.Spec{Name: "mm2", Path: java, Args: []string{
		"-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-Dlog4j2.configurationFile=" + log4j,
		"-cp", filepath.Join(mm2Libs, "*") + ":" + filepath.Join(libs, "*"),
		"org.apache.kafka.connect.mirror.MirrorMaker", propsPath,
	}, LogPath: filepath.Join(dir, "mm2.log")})
	if err != nil {
		return result{}, err
	}
	defer p.Stop(context.Background(), 20*time.Second)
	done := make(chan struct{})
	go func() {
		select {
		case <-p.Done():
			fmt.Fprintf(os.Stderr, "MirrorMaker 2 exited: %v\n%s\n", p.Err(), p.Tail(20))
		case <-done:
		}
	}()
	defer close(done)
	first, last, err := measure(ctx, cloudBS, "edge."+topic, o.records, false, 10*time.Minute)
	if err != nil {
		return result{}, fmt.Errorf("%w\n%s", err, p.Tail(20))
	}
	r := result{name: "MirrorMaker 2", firstRecord: first.Sub(start), forward: last.Sub(first), records: o.records, bytes: int64(o.records) * int64(o.size)}
	if r.newTopic, err = newTopicLatency(ctx, edgeBS, cloudBS, "bench.new-mm2", "edge.bench.new-mm2", false, o.newTopicWait); err != nil {
		return r, err
	}
	return r, nil
}

func runBridge(ctx context.Context, o options, dir, binDir string, p *pair, topic string, logger *slog.Logger) (result, error) {
	edge, cloud, site := p.edge, p.cloud, p.edgePKI
	edgeBS, cloudBS := edge.Conn(), cloud.Conn()
	fmt.Printf("cefiot bridge (exactly-once transactions, %s)...\n", map[bool]string{true: "mutual TLS", false: "plaintext"}[p.secure])
	client, err := netx.FreeAddr()
	if err != nil {
		return result{}, err
	}
	peer, err := netx.FreeAddr()
	if err != nil {
		return result{}, err
	}
	ec := etcdx.EmbeddedConfig{Name: "bench", Dir: filepath.Join(dir, "etcd"), ClientAddr: client, PeerAddr: peer}
	if p.secure {
		etcdFiles := site.Files(access.Etcd)
		ec.TLS = &etcdFiles
	}
	emb, err := etcdx.StartEmbedded(ctx, ec, logger)
	if err != nil {
		return result{}, err
	}
	defer emb.Close()
	sched, err := bridgeharness.StartScheduler(bridgeharness.SchedulerConfig{BinDir: binDir, Dir: filepath.Join(dir, "scheduler"), EtcdEndpoint: emb.Endpoint(),
		Params: map[string]string{"topic-regex": `bench\..*`}, PKI: site, Plaintext: !p.secure})
	if err != nil {
		return result{}, err
	}
	defer sched.Stop(context.Background(), 10*time.Second)
	// The scheduler declares the workload before the bridge starts, so the
	// start time is the bridge's own.
	time.Sleep(2 * time.Second)
	b, err := bridgeharness.Start(bridgeharness.Config{BinDir: binDir, Dir: filepath.Join(dir, "bridge"),
		EdgeBootstrap: edge.BootstrapServers(), CloudBootstrap: cloud.BootstrapServers(), CloudTLSCA: p.cloudPKI.Files(access.Kafka).CA,
		EtcdEndpoint: emb.Endpoint(), Args: strings.Fields(o.bridgeArgs), PKI: site, Plaintext: !p.secure})
	if err != nil {
		return result{}, err
	}
	defer b.Stop(context.Background())
	first, last, err := measure(ctx, cloudBS, "edge-edge."+topic, o.records, true, 10*time.Minute)
	if err != nil {
		return result{}, fmt.Errorf("%w\n%s", err, b.Tail(20))
	}
	r := result{name: "cefiot bridge", firstRecord: first.Sub(b.Started), forward: last.Sub(first), records: o.records, bytes: int64(o.records) * int64(o.size)}
	if r.newTopic, err = newTopicLatency(ctx, edgeBS, cloudBS, "bench.new-bridge", "edge-edge.bench.new-bridge", true, o.newTopicWait); err != nil {
		return r, err
	}
	return r, nil
}

func fmtDur(d, wait time.Duration) string {
	if d == 0 {
		return "> " + wait.String()
	}
	return d.Round(10 * time.Millisecond).String()
}

func printTable(o options, mm2, br, plain result, brPlaintext *result) {
	ratio := func(a, b float64) string {
		if b == 0 {
			return "-"
		}
		return strconv.FormatFloat(a/b, 'f', 2, 64) + "x"
	}
	fmt.Println()
	fmt.Printf("bridge vs MirrorMaker 2: %d records x %d B, same edge and cloud clusters, one run\n", o.records, o.size)
	fmt.Printf("%-34s %22s %26s %10s\n", "", "MM2 (at-least-once)", "bridge (exactly-once)", "bridge/MM2")
	fmt.Printf("%-34s %22.0f %26.0f %10s\n", "records/s", mm2.recordsPerSec(), br.recordsPerSec(), ratio(br.recordsPerSec(), mm2.recordsPerSec()))
	fmt.Printf("%-34s %22.1f %26.1f %10s\n", "MB/s", mm2.mbPerSec(), br.mbPerSec(), ratio(br.mbPerSec(), mm2.mbPerSec()))
	fmt.Printf("%-34s %22s %26s %10s\n", "process start -> first record", fmtDur(mm2.firstRecord, 0), fmtDur(br.firstRecord, 0), ratio(mm2.firstRecord.Seconds(), br.firstRecord.Seconds())+" faster")
	nt := "-"
	if mm2.newTopic > 0 && br.newTopic > 0 {
		nt = ratio(mm2.newTopic.Seconds(), br.newTopic.Seconds()) + " faster"
	}
	fmt.Printf("%-34s %22s %26s %10s\n", "new topic created -> forwarded", fmtDur(mm2.newTopic, o.newTopicWait), fmtDur(br.newTopic, o.newTopicWait), nt)
	fmt.Println()
	verdict := "meets"
	if br.mbPerSec() < 1.2*mm2.mbPerSec() {
		verdict = "MISSES"
	}
	fmt.Printf("throughput ratio bridge/MM2: %s (%s the 1.2x target)\n", ratio(br.mbPerSec(), mm2.mbPerSec()), verdict)
	fmt.Printf("plain producer into the cloud (the limit): %.1f MB/s; the bridge reaches %.0f%% of it, MM2 %.0f%%\n",
		plain.mbPerSec(), 100*br.mbPerSec()/plain.mbPerSec(), 100*mm2.mbPerSec()/plain.mbPerSec())
	if brPlaintext != nil {
		fmt.Printf("what TLS costs the bridge: %.1f MB/s with mutual TLS and ACLs, %.1f MB/s plaintext (%.0f%%)\n",
			br.mbPerSec(), brPlaintext.mbPerSec(), 100*br.mbPerSec()/brPlaintext.mbPerSec())
	}
	if mm2.newTopic == 0 {
		fmt.Println("MM2 looks for new topics every refresh.topics.interval.seconds (default 600 s); the bridge every -topic-refresh (default 2 s).")
	}
}

// javaTLS is the MirrorMaker 2 client security of cluster alias: the
// cluster's own (super user) key pair, in the PEM key store kafkalocal
// writes, and its CA.
func javaTLS(alias string, c *kafkalocal.Cluster) string {
	conn := c.Conn()
	if conn.TLS == nil {
		return ""
	}
	return fmt.Sprintf("%[1]s.security.protocol = SSL\n%[1]s.ssl.keystore.type = PEM\n%[1]s.ssl.keystore.location = %[2]s\n%[1]s.ssl.truststore.type = PEM\n%[1]s.ssl.truststore.location = %[3]s\n",
		alias, c.KeystorePath(), conn.TLS.CA)
}
