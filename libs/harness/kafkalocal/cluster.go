package kafkalocal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/cefiot/cefiot/libs/harness/procs"
	"github.com/cefiot/cefiot/libs/kafkaconf"
)

// Node describes one combined controller+broker node of a [Cluster].
type Node struct {
	// ID is the node.id, 1..Brokers.
	ID int
	// Dir is the node's directory, <BaseDir>/node-<ID>.
	Dir string
	// BrokerAddr is the host:port of the client (PLAINTEXT) listener.
	BrokerAddr string
	// ControllerAddr is the host:port of the controller quorum listener.
	ControllerAddr string
	// LogFile receives the node's stdout and stderr.
	LogFile string
	// PID is the node's process id when Nodes was called (0 if none).
	PID int
	// Running reports whether the node's process was running when Nodes
	// was called.
	Running bool
}

// Cluster is a running local KRaft cluster started by [Start]. Its methods
// are safe for concurrent use; operations on one node are serialised.
type Cluster struct {
	cfg       ClusterConfig
	logger    *slog.Logger
	clusterID string
	nodes     []*node
}

type node struct {
	info Node // Running is unused here

	mu       sync.Mutex // serialises start, stop and kill of this node
	proc     *proc      // nil before the first start
	stopping bool       // the current proc's exit was asked for
}

// Start starts a KRaft cluster of cfg.Brokers combined nodes and waits until
// every node answers on its listener with all brokers registered in the
// metadata. ctx bounds the wait (cfg.StartTimeout when ctx has no deadline)
// but not the life of the cluster: call [Cluster.Stop]. A nil logger
// discards logs.
func Start(ctx context.Context, cfg ClusterConfig, logger *slog.Logger) (*Cluster, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("kafkalocal: start cluster %q: %w", cfg.Name, err)
	}
	c := &Cluster{cfg: cfg, logger: logger.With("cluster", cfg.Name)}
	if err := c.start(ctx); err != nil {
		return nil, fmt.Errorf("kafkalocal: start cluster %q: %w", cfg.Name, err)
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx, c.cfg.StartTimeout)
	defer cancel()
	begin := time.Now()

	bports, cports, err := allocatePorts(c.cfg.Host, c.cfg.BasePort, c.cfg.Brokers)
	if err != nil {
		return err
	}
	nodes := make([]Node, c.cfg.Brokers)
	for i := range nodes {
		dir := filepath.Join(c.cfg.BaseDir, "node-"+strconv.Itoa(i+1))
		nodes[i] = Node{
			ID:             i + 1,
			Dir:            dir,
			BrokerAddr:     net.JoinHostPort(c.cfg.Host, strconv.Itoa(bports[i])),
			ControllerAddr: net.JoinHostPort(c.cfg.Host, strconv.Itoa(cports[i])),
			LogFile:        filepath.Join(dir, "broker.log"),
		}
		c.nodes = append(c.nodes, &node{info: nodes[i]})
		if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
			return fmt.Errorf("node %d: %w", i+1, err)
		}
	}
	if c.clusterID, err = c.resolveClusterID(); err != nil {
		return err
	}
	superUser := ""
	if c.cfg.TLS != nil {
		if superUser, err = superUserOf(c.cfg.TLS); err != nil {
			return err
		}
	}
	for _, n := range nodes {
		if c.cfg.TLS != nil {
			if err := writeStores(c.cfg.TLS, n); err != nil {
				return fmt.Errorf("node %d: %w", n.ID, err)
			}
		}
		if err := os.WriteFile(c.propsPath(n), serverProperties(c.cfg, nodes, n, superUser), 0o644); err != nil {
			return fmt.Errorf("node %d: write server.properties: %w", n.ID, err)
		}
		if err := os.WriteFile(c.log4jPath(n), []byte(kafkaconf.Log4j2Properties), 0o644); err != nil {
			return fmt.Errorf("node %d: write log4j2.properties: %w", n.ID, err)
		}
	}

	if err := c.forEachNode(func(n *node) error { return c.format(ctx, n.info) }); err != nil {
		return err
	}
	formatted := time.Since(begin)

	for _, n := range c.nodes {
		n.mu.Lock()
		err := c.startProc(n)
		n.mu.Unlock()
		if err != nil {
			c.killAll()
			return err
		}
	}
	all := make([]int, len(c.nodes))
	for i := range all {
		all[i] = i + 1
	}
	err = c.forEachNode(func(n *node) error {
		n.mu.Lock()
		p := n.proc
		n.mu.Unlock()
		return c.awaitReady(ctx, n, p, all)
	})
	if err != nil {
		c.killAll()
		return err
	}
	if b := c.cfg.budget; b != nil {
		c.logger.Info("kafka retention planned from the disk budget", "budget_bytes", b.Budget.Bytes,
			"partitions", b.Partitions, "retention_bytes", b.RetentionBytes, "segment_bytes", b.SegmentBytes, "headroom_bytes", b.Headroom)
	}
	c.logger.Info("kafka cluster ready",
		"brokers", len(c.nodes),
		"bootstrap", c.BootstrapServers(),
		"cluster_id", c.clusterID,
		"dir", c.cfg.BaseDir,
		"format", formatted.Round(time.Millisecond),
		"elapsed", time.Since(begin).Round(time.Millisecond))
	return nil
}

// resolveClusterID returns the cluster id already in the data dirs, which
// must agree with each other and with cfg.ClusterID, else cfg.ClusterID or a
// new id.
func (c *Cluster) resolveClusterID() (string, error) {
	id := c.cfg.ClusterID
	for _, n := range c.nodes {
		dataDir := filepath.Join(n.info.Dir, "data")
		existing, err := readClusterID(dataDir)
		if err != nil {
			return "", fmt.Errorf("node %d: %w", n.info.ID, err)
		}
		switch {
		case existing == "":
		case id == "":
			id = existing
		case id != existing:
			return "", fmt.Errorf("node %d: %s is formatted for cluster %s, not %s; remove %s or use another BaseDir",
				n.info.ID, dataDir, existing, id, c.cfg.BaseDir)
		}
	}
	if id != "" {
		return id, nil
	}
	return newClusterID()
}

func (c *Cluster) propsPath(n Node) string { return filepath.Join(n.Dir, "server.properties") }
func (c *Cluster) log4jPath(n Node) string { return filepath.Join(n.Dir, "log4j2.properties") }

func (c *Cluster) classpath() string { return filepath.Join(c.cfg.LibsDir, "*") }

// format runs Kafka's StorageTool on a node; an already formatted node is
// left as it is.
func (c *Cluster) format(ctx context.Context, n Node) error {
	args := append(slices.Clone(toolJVMOpts),
		"-Dlog4j2.configurationFile="+c.log4jPath(n),
		"-cp", c.classpath(),
		"kafka.tools.StorageTool", "format",
		"--cluster-id", c.clusterID,
		"--config", c.propsPath(n),
		"--ignore-formatted",
	)
	cmd := exec.CommandContext(ctx, c.cfg.Java, args...)
	cmd.Dir = n.Dir
	out, err := cmd.CombinedOutput()
	logPath := filepath.Join(n.Dir, "format.log")
	if werr := os.WriteFile(logPath, out, 0o644); werr != nil {
		c.logger.Warn("write format log", "node", n.ID, "err", werr)
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = fmt.Errorf("%w (%v)", ctxErr, err)
		}
		return procs.WithLogTail(fmt.Errorf("node %d: format storage: %w", n.ID, err), logPath, lastLines(string(out), 20))
	}
	c.logger.Debug("storage formatted", "node", n.ID, "result", lastLines(string(out), 1))
	return nil
}

// startProc starts the JVM of n; the caller holds n.mu.
func (c *Cluster) startProc(n *node) error {
	args := append(slices.Clone(c.cfg.JVMOpts),
		"-Dlog4j2.configurationFile="+c.log4jPath(n.info),
		"-Dkafka.logs.dir="+n.info.Dir,
		"-cp", c.classpath(),
		"kafka.Kafka", c.propsPath(n.info),
	)
	logger := c.logger.With("node", n.info.ID)
	var p *proc
	p, err := startProc(c.cfg.Java, args, n.info.Dir, n.info.LogFile, func(err error) {
		n.mu.Lock()
		// A stop or kill holds n.mu while it waits for the exit, so this
		// reads the stopping flag of the process that just exited.
		expected := n.stopping && n.proc == p
		n.mu.Unlock()
		if expected {
			logger.Debug("kafka node exited", "status", exitStatus(err))
		} else {
			logger.Error("kafka node exited unexpectedly", "status", exitStatus(err), "log", n.info.LogFile)
		}
	})
	if err != nil {
		return fmt.Errorf("node %d: %w", n.info.ID, err)
	}
	n.proc, n.stopping = p, false
	logger.Debug("kafka node started", "pid", p.pid, "addr", n.info.BrokerAddr)
	return nil
}

// errExited cancels a readiness wait whose process exited.
var errExited = errors.New("process exited")

// awaitReady waits until node n, running p, answers a DescribeCluster on its
// own listener with this cluster's id and every broker of want registered
// and unfenced. A Kafka broker accepts requests only once it has caught up
// with the metadata and been unfenced, so an answer means the node is
// serving.
func (c *Cluster) awaitReady(ctx context.Context, n *node, p *proc, want []int) error {
	id := n.info.ID
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-p.done:
			cancel(errExited)
		case <-ctx.Done():
		}
	}()

	adm, err := newAdmin(c.connTo(n.info.BrokerAddr), c.logger.With("node", id))
	if err != nil {
		return fmt.Errorf("node %d: %w", id, err)
	}
	defer adm.Close()

	t := time.NewTicker(pollInterval)
	defer t.Stop()
	var last error
	for {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		res, err := adm.DescribeCluster(rctx, kafka.SetAdminRequestTimeout(2*time.Second))
		rcancel()
		switch {
		case err != nil:
			last = err
		case res.ClusterID != nil && *res.ClusterID != c.clusterID:
			return procs.WithLogTail(fmt.Errorf("node %d: %s answers for cluster %s, not %s: is another Kafka using the port?",
				id, n.info.BrokerAddr, *res.ClusterID, c.clusterID), p.logPath, p.tail())
		default:
			missing := slices.DeleteFunc(slices.Clone(want), func(w int) bool {
				return slices.ContainsFunc(res.Nodes, func(kn kafka.Node) bool { return kn.ID == w })
			})
			if len(missing) == 0 {
				return nil
			}
			last = fmt.Errorf("brokers %v not registered yet", missing)
		}
		select {
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), errExited) {
				return procs.WithLogTail(fmt.Errorf("node %d exited while starting: %s", id, exitStatus(p.err)),
					p.logPath, p.tail())
			}
			return procs.WithLogTail(fmt.Errorf("node %d not ready at %s: %w (last check: %v)",
				id, n.info.BrokerAddr, context.Cause(ctx), last), p.logPath, p.tail())
		case <-t.C:
		}
	}
}

// BootstrapServers returns the client listeners of all nodes,
// comma-separated, for bootstrap.servers.
func (c *Cluster) BootstrapServers() string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.info.BrokerAddr
	}
	return strings.Join(addrs, ",")
}

// DiskBudget returns the retention planned from ClusterConfig.DiskBudget,
// and false when the cluster has none.
func (c *Cluster) DiskBudget() (kafkaconf.BudgetPlan, bool) {
	if c.cfg.budget == nil {
		return kafkaconf.BudgetPlan{}, false
	}
	return *c.cfg.budget, true
}

// ClusterID returns the KRaft cluster id.
func (c *Cluster) ClusterID() string { return c.clusterID }

// Name returns the cluster's name.
func (c *Cluster) Name() string { return c.cfg.Name }

// Nodes returns the nodes in id order.
func (c *Cluster) Nodes() []Node {
	out := make([]Node, len(c.nodes))
	for i, n := range c.nodes {
		n.mu.Lock()
		out[i] = n.info
		out[i].Running = n.proc != nil && !n.proc.exited()
		if out[i].Running {
			out[i].PID = n.proc.pid
		}
		n.mu.Unlock()
	}
	return out
}

func (c *Cluster) node(id int) (*node, error) {
	if id < 1 || id > len(c.nodes) {
		return nil, fmt.Errorf("kafkalocal: cluster %q has no node %d (ids 1..%d)", c.cfg.Name, id, len(c.nodes))
	}
	return c.nodes[id-1], nil
}

// StopBroker stops node id cleanly: SIGTERM (Kafka's controlled shutdown),
// then SIGKILL when it has not exited after StopTimeout or when ctx is done.
// It returns once the process has exited; a node that is not running is no
// error.
func (c *Cluster) StopBroker(ctx context.Context, id int) error {
	n, err := c.node(id)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := c.stopLocked(ctx, n); err != nil {
		return fmt.Errorf("kafkalocal: stop node %d of %q: %w", id, c.cfg.Name, err)
	}
	return nil
}

func (c *Cluster) stopLocked(ctx context.Context, n *node) error {
	if n.proc == nil || n.proc.exited() {
		return nil
	}
	n.stopping = true
	begin := time.Now()
	// onExit takes n.mu: wait for the exit without holding it.
	p := n.proc
	n.mu.Unlock()
	killed, err := p.stop(ctx, c.cfg.StopTimeout)
	n.mu.Lock()
	if err != nil {
		return err
	}
	if killed {
		c.logger.Warn("kafka node did not stop in time, killed", "node", n.info.ID, "timeout", c.cfg.StopTimeout)
	}
	c.logger.Debug("kafka node stopped", "node", n.info.ID, "elapsed", time.Since(begin).Round(time.Millisecond))
	return nil
}

// KillBroker kills node id with SIGKILL, as a crash would, and returns once
// the process has exited. A node that is not running is no error.
func (c *Cluster) KillBroker(id int) error {
	n, err := c.node(id)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil || n.proc.exited() {
		return nil
	}
	n.stopping = true
	p := n.proc
	n.mu.Unlock()
	err = p.kill()
	n.mu.Lock()
	if err != nil {
		return fmt.Errorf("kafkalocal: kill node %d of %q: %w", id, c.cfg.Name, err)
	}
	c.logger.Debug("kafka node killed", "node", id)
	return nil
}

// StartBroker starts node id again with its existing data dir and waits
// until it answers on its listener, registered and unfenced. ctx bounds the
// wait as in [Start]. Starting a running node is an error.
func (c *Cluster) StartBroker(ctx context.Context, id int) error {
	n, err := c.node(id)
	if err != nil {
		return err
	}
	ctx, cancel := withDefaultTimeout(ctx, c.cfg.StartTimeout)
	defer cancel()
	begin := time.Now()

	n.mu.Lock()
	if n.proc != nil && !n.proc.exited() {
		n.mu.Unlock()
		return fmt.Errorf("kafkalocal: start node %d of %q: already running", id, c.cfg.Name)
	}
	err = c.startProc(n)
	p := n.proc
	n.mu.Unlock()
	if err != nil {
		return fmt.Errorf("kafkalocal: start node %d of %q: %w", id, c.cfg.Name, err)
	}
	if err := c.awaitReady(ctx, n, p, []int{id}); err != nil {
		n.mu.Lock()
		n.stopping = true
		n.mu.Unlock()
		_ = p.kill()
		return fmt.Errorf("kafkalocal: start node %d of %q: %w", id, c.cfg.Name, err)
	}
	c.logger.Info("kafka node ready", "node", id, "elapsed", time.Since(begin).Round(time.Millisecond))
	return nil
}

// Stop stops every node cleanly and concurrently (see [Cluster.StopBroker])
// and returns once all processes have exited. Data stays in BaseDir. Stop
// may be called more than once.
func (c *Cluster) Stop(ctx context.Context) error {
	begin := time.Now()
	err := c.forEachNode(func(n *node) error {
		n.mu.Lock()
		defer n.mu.Unlock()
		if err := c.stopLocked(ctx, n); err != nil {
			return fmt.Errorf("node %d: %w", n.info.ID, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("kafkalocal: stop cluster %q: %w", c.cfg.Name, err)
	}
	c.logger.Info("kafka cluster stopped", "elapsed", time.Since(begin).Round(time.Millisecond))
	return nil
}

// killAll kills every running node; used when Start fails.
func (c *Cluster) killAll() {
	_ = c.forEachNode(func(n *node) error {
		n.mu.Lock()
		p := n.proc
		if p != nil {
			n.stopping = true
		}
		n.mu.Unlock()
		if p != nil {
			_ = p.kill()
		}
		return nil
	})
}

// forEachNode runs f on every node concurrently and joins the errors.
func (c *Cluster) forEachNode(f func(n *node) error) error {
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Go(func() { errs[i] = f(n) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// withDefaultTimeout bounds ctx by d unless it already has a deadline.
func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
