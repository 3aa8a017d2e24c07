// Command cefiot-kafka runs a local Apache Kafka cluster in KRaft mode (real
// brokers, one JVM per combined controller+broker node) until interrupted,
// using package kafkalocal.
//
// Usage:
//
//	cefiot-kafka up [flags]
//	cefiot-kafka deployed-properties
//	cefiot-kafka budget-properties -disk-budget SIZE [flags]
//
// For example
//
//	scripts/fetch-kafka.sh
//	cefiot-kafka up --name edge --brokers 1 --dir ./run/kafka/edge --port 19092
//
// prints the bootstrap servers once the cluster answers and runs until
// Ctrl-C (SIGINT) or SIGTERM, then stops every broker cleanly. Running it
// again with the same --dir keeps the cluster's data. The Kafka jars are
// found as kafkalocal.FindLibs does (CEFIOT_KAFKA_LIBS, else the repository's
// .cache/kafka/<version>/libs) unless --libs names them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/harness/kafkalocal"
	"github.com/cefiot/cefiot/libs/kafkaconf"
	"github.com/cefiot/cefiot/libs/program"
)

func main() {
	program.Main("cefiot-kafka", func(ctx context.Context, args []string) error { return realMain(ctx, args, os.Stdout, os.Stderr) })
}

const usage = `Usage: cefiot-kafka up [flags]
       cefiot-kafka deployed-properties
       cefiot-kafka budget-properties -disk-budget SIZE [flags]

Runs a local Kafka KRaft cluster until interrupted. Flags of up:
`

func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) == 0 {
			fmt.Fprint(stderr, usage)
			newUpFlags(stderr, &upOptions{}).PrintDefaults()
			return errors.New("missing command")
		}
		fmt.Fprint(stdout, usage)
		newUpFlags(stdout, &upOptions{}).PrintDefaults()
		return flag.ErrHelp
	}
	switch args[0] {
	case "up":
		return up(ctx, args[1:], stdout, stderr)
	case "deployed-properties":
		// The settings the Kubernetes manifests' brokers append to their
		// server.properties (make generate writes them to
		// k8s/base/kafka-pipeline.properties).
		_, err := io.WriteString(stdout, kafkaconf.DeployedFile())
		return err
	case "budget-properties":
		return budgetProperties(args[1:], stdout, stderr)
	default:
		return fmt.Errorf("unknown command %q (want up, deployed-properties or budget-properties)", args[0])
	}
}

type upOptions struct {
	name        string
	brokers     int
	dir         string
	port        int
	host        string
	libs        string
	readyFile   string
	verbose     bool
	stopTimeout time.Duration
	props       propsFlag
	diskBudget  string
	ingress     string
}

func newUpFlags(out io.Writer, o *upOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.name, "name", "kafka", "cluster `name`, used in logs and the default --dir")
	fs.IntVar(&o.brokers, "brokers", 1, "number of combined controller+broker nodes")
	fs.StringVar(&o.dir, "dir", "", "data `directory` (default ./run/kafka/<name>); reused when already formatted")
	fs.IntVar(&o.port, "port", 0, "first client port: node i listens on port+2(i-1), its controller on the next port (0: free ports)")
	fs.StringVar(&o.host, "host", kafkalocal.DefaultHost, "address to bind and advertise")
	fs.StringVar(&o.libs, "libs", "", "Kafka jars `directory` (default: CEFIOT_KAFKA_LIBS or the repository cache)")
	fs.StringVar(&o.readyFile, "ready-file", "", "write the bootstrap servers to this `file` once the cluster is ready")
	fs.BoolVar(&o.verbose, "v", false, "debug logging")
	fs.DurationVar(&o.stopTimeout, "stop-timeout", kafkalocal.DefaultStopTimeout, "wait this long for a clean stop before SIGKILL")
	fs.Var(&o.props, "set", "broker property `key=value` overriding the defaults (repeatable)")
	fs.StringVar(&o.diskBudget, "disk-budget", "", "room of each node's log dir, such as 20GiB: retention is planned to keep within it (empty: no retention by size)")
	fs.StringVar(&o.ingress, "disk-budget-ingress", "0", "the most producers write to a node per second, such as 5MiB, kept free beside the --disk-budget")
	return fs
}

func up(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o upOptions
	fs := newUpFlags(stderr, &o)
	if err := config.Parse(fs, args, nil); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("up: unexpected arguments %q", fs.Args())
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	budget, err := diskBudget(o.diskBudget, o.ingress)
	if err != nil {
		return err
	}
	if o.dir == "" {
		o.dir = filepath.Join("run", "kafka", o.name)
	}
	if o.libs == "" {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		root, rootErr := kafkalocal.FindRepoRoot(wd)
		libs, err := kafkalocal.FindLibs(root)
		if err != nil {
			if rootErr != nil && os.Getenv(kafkalocal.EnvLibs) == "" {
				return fmt.Errorf("up: %w; run from the repository or pass --libs", rootErr)
			}
			return fmt.Errorf("up: %w", err)
		}
		o.libs = libs
	}

	cluster, err := kafkalocal.Start(ctx, kafkalocal.ClusterConfig{
		Name:        o.name,
		Brokers:     o.brokers,
		BaseDir:     o.dir,
		LibsDir:     o.libs,
		Host:        o.host,
		BasePort:    o.port,
		Properties:  o.props.m,
		StopTimeout: o.stopTimeout,
		DiskBudget:  budget,
	}, logger)
	if errors.Is(err, kafkaconf.ErrBudgetTooSmall) {
		return config.Invalid("disk-budget", o.diskBudget, err.Error())
	}
	if err != nil {
		return err
	}
	// Stop on every path from here, with a context of its own: ctx is done
	// by the time a Ctrl-C gets here.
	stopCluster := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), o.stopTimeout+30*time.Second)
		defer cancel()
		return cluster.Stop(sctx)
	}

	bootstrap := cluster.BootstrapServers()
	if o.readyFile != "" {
		if err := os.WriteFile(o.readyFile, []byte(bootstrap+"\n"), 0o644); err != nil {
			return errors.Join(fmt.Errorf("up: ready file: %w", err), stopCluster())
		}
	}
	fmt.Fprintf(stdout, "%s: %d broker(s) ready, bootstrap.servers=%s (Ctrl-C to stop)\n", o.name, o.brokers, bootstrap)

	<-ctx.Done()
	logger.Info("stopping kafka cluster", "cluster", o.name)
	err = stopCluster()
	if o.readyFile != "" {
		_ = os.Remove(o.readyFile)
	}
	return err
}

// diskBudget parses --disk-budget and --disk-budget-ingress: nil when no
// budget is set.
func diskBudget(size, ingress string) (*kafkaconf.Budget, error) {
	if size == "" {
		return nil, nil
	}
	n, err := config.ParseBytes(size)
	if err != nil {
		return nil, config.Invalid("disk-budget", size, err.Error())
	}
	if n == 0 {
		return nil, config.Invalid("disk-budget", size, "must be positive (empty for no budget)")
	}
	in, err := config.ParseBytes(ingress)
	if err != nil {
		return nil, config.Invalid("disk-budget-ingress", ingress, err.Error())
	}
	return &kafkaconf.Budget{Bytes: n, IngressBytesPerSec: in}, nil
}

// propsFlag collects repeated key=value flags.
type propsFlag struct{ m map[string]string }

func (p *propsFlag) String() string {
	if p == nil {
		return ""
	}
	var parts []string
	for k, v := range p.m {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

func (p *propsFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	if p.m == nil {
		p.m = map[string]string{}
	}
	p.m[k] = v
	return nil
}
