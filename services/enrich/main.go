// Command enrich consumes frames.raw and produces frames.enriched, adding
// site, node, times and a content hash, in one Kafka transaction per batch
// together with its input offsets.
package main

import (
	"context"
	"os"

	"github.com/cefiot/cefiot/libs/program"
	"github.com/cefiot/cefiot/services/enrich/internal/enrich"
)

func main() { program.Main("enrich", run) }

func run(ctx context.Context, args []string) error {
	cfg, err := enrich.ParseConfig(args, os.LookupEnv)
	if err != nil {
		return err
	}
	return enrich.Run(ctx, cfg)
}
