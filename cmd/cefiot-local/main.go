// Command cefiot-local runs the local default: an edge site and the cloud on
// this machine (two Kafka clusters, two schedulers with embedded etcd and
// the capture, enrich, bridge and sink workers), feeding a video through to
// the frame store. Ctrl-C stops everything it started.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cefiot/cefiot/cmd/internal/localenv"
	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/audit"
	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/console"
	"github.com/cefiot/cefiot/libs/console/users"
	"github.com/cefiot/cefiot/libs/harness/localstack"
	"github.com/cefiot/cefiot/libs/harness/videogen"
	"github.com/cefiot/cefiot/libs/kafkaconf"
	"github.com/cefiot/cefiot/libs/logging"
	"github.com/cefiot/cefiot/libs/pki"
	"github.com/cefiot/cefiot/libs/program"
	"github.com/cefiot/cefiot/libs/tlsx"
)

func main() { program.Main("cefiot-local", run) }

// maxEdgeNodes bounds -edge-nodes: each node is three processes.
const maxEdgeNodes = 8

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("cefiot-local", flag.ContinueOnError)
	video := fs.String("video", "", "video file or image folder to feed (default: a generated sample video)")
	runDir := fs.String("run-dir", "run", "directory for data and logs")
	binDir := fs.String("bin-dir", "bin", "directory of the built service binaries")
	fresh := fs.Bool("fresh", false, "delete the run directory's data first")
	realtime := fs.Bool("realtime", false, "pace the video at its frame rate instead of as fast as it decodes")
	exitAfter := fs.Int("exit-after", 0, "exit once this many frames are stored (0: run until Ctrl-C)")
	consoleAddr := fs.String("console-addr", "127.0.0.1:8080", "address of the web console (empty: no console)")
	ssoHeader := fs.String("console-sso-header", "", "single sign-on: the header in which a trusted reverse proxy (showing the edge site's proxy certificate) names the signed-on console user, e.g. X-Remote-User (empty: off)")
	ssoProxies := fs.String("console-sso-proxies", "", "single sign-on: comma-separated addresses the trusted proxy connects from (empty: any, with its certificate)")
	edgeNodes := fs.Int("edge-nodes", 1, "edge nodes to simulate: 1 is one node \"local\"; 2 or more are node-1..node-N, each with its own capture, enrich and bridge workers (to try drains and failover)")
	diskBudget := fs.String("edge-disk-budget", "2GiB", "room of the edge Kafka's log dir: its retention is planned to keep within it, deleting the oldest frames (which the bridge reports as a gap) rather than filling the disk (empty: no retention by size)")
	index := fs.String("index", localstack.IndexBolt, "where the sink keeps its frame index: bbolt (a file in the run directory) or postgres (a PostgreSQL server started from Debian's package, TLS and a password, the index sink replicas share)")
	sinkReplicas := fs.Int("sink-replicas", 1, "sink processes sharing the index (2 or more need -index postgres)")
	detector := fs.String("detector", "off", "object labels on motion frames, as enrich's -detector: off, hog (OpenCV's people detector, as the edge overlay deploys it) or onnx (with -detect-model and -detect-classes)")
	detectModel := fs.String("detect-model", "", "with -detector onnx: the ONNX detection model")
	detectClasses := fs.String("detect-classes", "", "with -detector onnx: its class names, one a line")
	freePorts := fs.Bool("free-ports", false, "listen on free ports instead of the fixed ones the README lists (to run next to another stack)")
	if err := config.Parse(fs, args, os.LookupEnv); err != nil {
		return err
	}
	if *edgeNodes < 1 || *edgeNodes > maxEdgeNodes {
		return &config.KeyError{Key: "edge-nodes", Value: fmt.Sprint(*edgeNodes), Reason: fmt.Sprintf("want 1 to %d", maxEdgeNodes)}
	}
	var budget int64
	if *diskBudget != "" {
		n, err := config.ParseBytes(*diskBudget)
		if err != nil {
			return config.Invalid("edge-disk-budget", *diskBudget, err.Error())
		}
		if n == 0 {
			return config.Invalid("edge-disk-budget", *diskBudget, "must be positive (empty for no budget)")
		}
		budget = n
	}
	detectArgs, err := enrichDetectArgs(*detector, *detectModel, *detectClasses)
	if err != nil {
		return err
	}
	logger, _ := logging.New(os.Stderr, "info", "text")
	if *fresh {
		if err := os.RemoveAll(*runDir); err != nil {
			return fmt.Errorf("clean run dir: %w", err)
		}
	}
	if err := os.MkdirAll(*runDir, 0o755); err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	if *video == "" {
		*video = filepath.Join(*runDir, "sample.avi")
		if _, err := os.Stat(*video); err != nil {
			logger.Info("generating the sample video", "path", *video)
			if err := videogen.Write(*video, videogen.DefaultSpec()); err != nil {
				return fmt.Errorf("generate sample video: %w", err)
			}
		}
	} else if _, err := os.Stat(*video); err != nil {
		return fmt.Errorf("video %q: %w", *video, err)
	}
	env, err := localenv.Find(*binDir)
	if err != nil {
		return err
	}
	start := time.Now()
	cfg := localstack.Config{
		BinDir: env.BinDir, RunDir: *runDir, KafkaLibs: env.KafkaLibs, Video: *video, Realtime: *realtime,
		Ports: localstack.DefaultPorts(), Logger: logger,
		// An idle enrich worker in the cloud, so that
		// `cefiotctl move enrich -to-site cloud` has somewhere to go.
		CloudEnrich:    true,
		EdgeDiskBudget: budget,
		Index:          *index,
		SinkReplicas:   *sinkReplicas,
		BinaryArgs:     map[string][]string{"enrich": detectArgs},
	}
	if *freePorts {
		cfg.Ports = localstack.Ports{}
	}
	if *edgeNodes > 1 {
		for i := 1; i <= *edgeNodes; i++ {
			cfg.Nodes = append(cfg.Nodes, localstack.NodeSpec{Name: fmt.Sprintf("node-%d", i)})
		}
	}
	stack, err := localstack.Start(ctx, cfg)
	if errors.Is(err, kafkaconf.ErrBudgetTooSmall) {
		return config.Invalid("edge-disk-budget", *diskBudget, err.Error())
	}
	if err != nil {
		return err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		logger.Info("stopping every process")
		if err := stack.Stop(stopCtx); err != nil {
			logger.Error("stop", "err", err)
		}
	}()
	consoleURL, consolePassword := "", ""
	if *consoleAddr != "" {
		var targets []console.Target
		for name, url := range stack.AdminURLs() {
			targets = append(targets, console.Target{Name: name, URL: url})
		}
		sec, err := consoleSecurity(stack, logger)
		if err != nil {
			return err
		}
		if sec.Users, consolePassword, err = consoleUsers(filepath.Join(stack.Config().RunDir, "console-users.yaml")); err != nil {
			return err
		}
		sec.TokensFile = filepath.Join(stack.Config().RunDir, "console-tokens.yaml")
		// The console's own actions (logins, users, tokens) and refusals
		// join the edge site's audit trail.
		trail, err := audit.Start(ctx, stack.EdgeKafkaConn(access.Console), logger, nil)
		if err != nil {
			return err
		}
		defer trail.Close()
		sec.Audit = trail
		if *ssoHeader != "" {
			sec.Proxy = &console.TrustedProxy{Header: *ssoHeader, Addrs: config.List(*ssoProxies)}
		}
		srv, err := console.Start(*consoleAddr, targets, logger, sec)
		if err != nil {
			return err
		}
		defer func() {
			closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Close(closeCtx)
		}()
		consoleURL = srv.URL()
	}
	printWelcome(stack, logger, time.Since(start), consoleURL, consolePassword)
	return watch(ctx, stack, logger, *exitAfter)
}

// consoleSecurity is the console's identity: its key pair in the edge site
// (the one people log in to) and its client identity in both sites.
func consoleSecurity(stack *localstack.Stack, logger *slog.Logger) (*console.Security, error) {
	server, err := tlsx.Load(tlsx.FilesIn(stack.PKIDir(stack.Sites()[0]), access.Console), logger, nil)
	if err != nil {
		return nil, fmt.Errorf("console identity: %w", err)
	}
	client, err := stack.Identity(access.Console)
	if err != nil {
		return nil, err
	}
	return &console.Security{Server: server, Client: client}, nil
}

// consoleUsers is the console's users file, made on the first start with
// an administrator "admin" and a generated password, which is returned to be
// printed once (only its hash is stored). The file is checked now and read
// again at each request.
func consoleUsers(path string) (*users.Store, string, error) {
	password := ""
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if password, err = users.Bootstrap(path); err != nil {
			return nil, "", err
		}
	}
	if _, err := users.Load(path); err != nil {
		return nil, "", err
	}
	return &users.Store{Path: path}, password, nil
}

func printWelcome(stack *localstack.Stack, logger *slog.Logger, took time.Duration, consoleURL, password string) {
	p := stack.Config().Ports
	edge, cloud := stack.PKIDir(stack.Sites()[0]), stack.PKIDir("cloud")
	opCert, opKey, _ := pki.Paths(edge, localstack.Operator)
	cloudCert, cloudKey, _ := pki.Paths(cloud, localstack.Operator)
	if consoleURL != "" {
		fmt.Printf("\ncefiot console:     %s   (log in with the client certificate %s, or a console user)\n", consoleURL, opCert)
		if password != "" {
			fmt.Printf("console user admin, password %s   (shown once; users in %s/console-users.yaml)\n", password, stack.Config().RunDir)
		}
	}
	fmt.Printf(`
cefiot local default is up (%s), secure as deployed: every admin port is
mutual TLS. Each site's CA and certificates are in %s/pki/<site>.
  stored frames:    %s/v1/frames
  one frame (JPEG): %s/v1/frames/<frame_id>/jpeg
  sink status:      %s/v1/sink/status
      curl --cacert %s/ca.crt --cert %s --key %s %s/v1/sink/status
  edge scheduler:   https://127.0.0.1:%d/v1/assignments   (gRPC 127.0.0.1:%d)
      curl --cacert %s/ca.crt --cert %s --key %s https://127.0.0.1:%d/v1/assignments
  cloud scheduler:  https://127.0.0.1:%d/v1/assignments   (gRPC 127.0.0.1:%d)
  edge Kafka:       %s   cloud Kafka: %s
  logs:             %s/logs
Ctrl-C stops everything.

`, took.Round(time.Millisecond), stack.Config().RunDir, stack.SinkHTTP(), stack.SinkHTTP(), stack.SinkHTTP(),
		cloud, cloudCert, cloudKey, stack.SinkHTTP(),
		p.EdgeSchedulerHTTP, p.EdgeSchedulerGRPC,
		edge, opCert, opKey, p.EdgeSchedulerHTTP,
		p.CloudSchedulerHTTP, p.CloudSchedulerGRPC,
		stack.Edge.BootstrapServers(), stack.Cloud.BootstrapServers(), stack.Config().RunDir)
}

// watch reports stored frames until ctx ends or exitAfter frames are
// stored. A service process that dies is started again by the stack (as a
// node's supervisor would); watch reports it.
func watch(ctx context.Context, stack *localstack.Stack, logger *slog.Logger, exitAfter int) error {
	go func() {
		for {
			select {
			case ex := <-stack.Exits():
				first, _, _ := strings.Cut(ex.Error(), "\n")
				logger.Warn("a service process died; the stack starts it again, and its workloads move meanwhile", "service", ex.Service, "err", first)
			case <-ctx.Done():
				return
			}
		}
	}()
	var first time.Time
	st, err := stack.WaitSink(ctx, func(s localstack.SinkStatus) bool {
		return exitAfter > 0 && s.Stored >= int64(exitAfter)
	}, func(s localstack.SinkStatus) {
		if first.IsZero() && s.Stored > 0 {
			first = time.Now()
		}
		logger.Info("sink", "stored", s.Stored, "duplicates_skipped", s.Duplicates)
	})
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return err
	}
	logger.Info("done", "stored", st.Stored, "seconds_since_first_frame", time.Since(first).Seconds())
	return nil
}
