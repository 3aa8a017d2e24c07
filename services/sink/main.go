// Command sink stores each enriched frame that reaches the cloud once, keyed
// by its frame id, and serves ListFrames and GetFrame.
//
//	sink [flags]                  run the sink
//	sink rebuild-index [flags]    rebuild the frame index from the object store
package main

import (
	"context"
	"os"

	"github.com/cefiot/cefiot/libs/program"
	"github.com/cefiot/cefiot/services/sink/internal/sink"
)

func main() { program.Main("sink", run) }

func run(ctx context.Context, args []string) error {
	rebuild := len(args) > 0 && args[0] == "rebuild-index"
	if rebuild {
		args = args[1:]
	}
	cfg, err := sink.ParseConfig(args, os.LookupEnv)
	if err != nil {
		return err
	}
	if rebuild {
		return sink.RebuildIndex(ctx, cfg, os.Stdout)
	}
	return sink.Run(ctx, cfg)
}
