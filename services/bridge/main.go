// Command bridge forwards a site's topics from the edge Kafka cluster to the
// cloud cluster, exactly once: records and the source positions are written
// to the cloud in one transaction.
package main

import (
	"context"
	"os"

	"github.com/cefiot/cefiot/libs/program"
	"github.com/cefiot/cefiot/services/bridge/internal/bridge"
)

func main() { program.Main("bridge", run) }

func run(ctx context.Context, args []string) error {
	cfg, err := bridge.ParseConfig(args, os.LookupEnv)
	if err != nil {
		return err
	}
	return bridge.Run(ctx, cfg)
}
