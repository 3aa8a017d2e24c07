// Command sink stores each enriched frame that reaches the cloud once, keyed
// by its frame id, and serves ListFrames and GetFrame.
package main

import (
	"context"
	"os"

	"github.com/cefiot/cefiot/libs/service"
	"github.com/cefiot/cefiot/services/sink/internal/sink"
)

func main() { service.Main("sink", realMain) }

func realMain(ctx context.Context) error {
	cfg, err := sink.ParseConfig(os.Args[1:], os.LookupEnv)
	if err != nil {
		return err
	}
	return sink.Run(ctx, cfg)
}
