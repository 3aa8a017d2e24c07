// Command enrich consumes frames.raw and produces frames.enriched, adding
// site, node, times and a content hash, in one Kafka transaction per batch
// together with its input offsets.
package main

import (
	"context"
	"os"

	"github.com/cefiot/cefiot/libs/service"
	"github.com/cefiot/cefiot/services/enrich/internal/enrich"
)

func main() { service.Main("enrich", realMain) }

func realMain(ctx context.Context) error {
	cfg, err := enrich.ParseConfig(os.Args[1:], os.LookupEnv)
	if err != nil {
		return err
	}
	return enrich.Run(ctx, cfg)
}
