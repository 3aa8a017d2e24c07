// Command sink stores each enriched frame that reaches the cloud once, keyed
// by its frame id, and serves ListFrames and GetFrame.
package main

import (
	"context"
	"os"

	"github.com/cefiot/cefiot/libs/program"
	"github.com/cefiot/cefiot/services/sink/internal/sink"
)

func main() { program.Main("sink", run) }

func run(ctx context.Context, args []string) error {
	cfg, err := sink.ParseConfig(args, os.LookupEnv)
	if err != nil {
		return err
	}
	return sink.Run(ctx, cfg)
}
