// Command cefiot-fanin-bench measures one cloud taking frames from many
// sites (see package fanin): for each number of sites and of sink
// replicas, a fresh local stack with the PostgreSQL index, a bridge
// process per site, every site sending at once, and prints the runs side
// by side.
//
// Usage:
//
//	cefiot-fanin-bench [-sites 1,10,50] [-replicas 1,2] [-frames 6000] [-bin-dir bin]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/cefiot/cefiot/cmd/internal/fanin"
	"github.com/cefiot/cefiot/cmd/internal/localenv"
	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/program"
)

func main() {
	program.Main("cefiot-fanin-bench", func(ctx context.Context, args []string) error { return run(ctx, args, os.Stdout) })
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("cefiot-fanin-bench", flag.ContinueOnError)
	sites := fs.String("sites", "1,10,50", "numbers of sites, comma-separated")
	replicas := fs.String("replicas", "1,2", "numbers of sink replicas, comma-separated")
	frames := fs.Int("frames", 6000, "frames of each run, shared out over its sites")
	searches := fs.Int("searches", 500, "camera + time searches timed after each run")
	binDir := fs.String("bin-dir", "bin", "directory of the service binaries")
	if err := config.Parse(fs, args, nil); err != nil {
		return err
	}
	siteCounts, err := counts("sites", *sites)
	if err != nil {
		return err
	}
	replicaCounts, err := counts("replicas", *replicas)
	if err != nil {
		return err
	}
	env, err := localenv.Find(*binDir)
	if err != nil {
		return err
	}
	work, remove, err := localenv.ScratchDir("cefiot-fanin")
	if err != nil {
		return err
	}
	defer remove()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var results []fanin.Result
	for _, r := range replicaCounts {
		for _, s := range siteCounts {
			res, err := fanin.Run(ctx, fanin.Config{
				BinDir: env.BinDir, KafkaLibs: env.KafkaLibs, WorkDir: work, Sites: s, Replicas: r, Frames: *frames, Searches: *searches, Logger: logger,
			})
			if err != nil {
				return fmt.Errorf("%d sites, %d replicas: %w", s, r, err)
			}
			fmt.Fprintf(os.Stderr, "%d sites, %d sink replicas: %.0f frames/s stored\n", s, r, res.Stored)
			results = append(results, res)
		}
	}
	fmt.Fprintf(out, "\nOne cloud, many sites (each site its own CA, scheduler and bridge process; the sites share one edge Kafka cluster under their own topic prefixes; %d frames of 320x240 per run; PostgreSQL index, filesystem objects):\n\n%s", *frames, fanin.Table(results))
	return nil
}

func counts(name, list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-%s %q: want positive numbers, comma-separated", name, list)
		}
		out = append(out, n)
	}
	return out, nil
}
