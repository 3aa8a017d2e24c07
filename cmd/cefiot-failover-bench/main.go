// Command cefiot-failover-bench measures how fast the scheduler brings a
// stage back after its node dies (SIGKILL of every process of the node),
// next to the Kubernetes default (about 350 s) and client-go leader
// election (about 17 s), and how long a cross-site move of enrich leaves a
// gap. It runs the real services, Kafka and etcd on this machine.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cefiot/cefiot/cmd/internal/failover"
	"github.com/cefiot/cefiot/cmd/internal/localenv"
	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/logging"
	"github.com/cefiot/cefiot/libs/program"
)

func main() { program.Main("cefiot-failover-bench", run) }

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("cefiot-failover-bench", flag.ContinueOnError)
	binDir := fs.String("bin-dir", "bin", "directory of the built service binaries")
	trials := fs.Int("trials", 20, "failover trials (SIGKILLs)")
	moves := fs.Int("moves", 3, "edge->cloud->edge round trips of enrich")
	ttls := fs.String("lease-ttls", "1s,2s", "worker lease TTLs to measure, comma-separated (one stack each; moves use the first)")
	rate := fs.Int("rate", 50, "frames per second fed to frames.raw")
	logLevel := fs.String("log-level", "warn", "log level of the harness")
	if err := config.Parse(fs, args, os.LookupEnv); err != nil {
		return err
	}
	var ch config.Checker
	ch.Check(*trials >= 1, "trials", fmt.Sprint(*trials), "must be at least 1")
	ch.Check(*moves >= 0, "moves", fmt.Sprint(*moves), "must not be negative")
	var leaseTTLs []time.Duration
	for _, part := range strings.Split(*ttls, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil || d < time.Second {
			ch.Add(config.Invalid("lease-ttls", *ttls, fmt.Sprintf("%q: each must be a duration of at least 1s", part)))
			continue
		}
		leaseTTLs = append(leaseTTLs, d)
	}
	ch.Check(*rate >= 1 && *rate <= 1000, "rate", fmt.Sprint(*rate), "must be 1..1000")
	if err := ch.Err(); err != nil {
		return err
	}
	logger, err := logging.New(os.Stderr, *logLevel, "text")
	if err != nil {
		return config.Invalid("log-level", *logLevel, err.Error())
	}
	env, err := localenv.Find(*binDir)
	if err != nil {
		return err
	}
	dir, remove, err := localenv.ScratchDir("cefiot-failover-bench")
	if err != nil {
		return err
	}
	defer remove()
	return failover.Run(ctx, failover.Config{
		BinDir: env.BinDir, KafkaLibs: env.KafkaLibs, RunDir: dir, Trials: *trials, Moves: *moves,
		LeaseTTLs: leaseTTLs, Rate: *rate, Logger: logger, Out: os.Stdout,
	})
}
