// Command bridge forwards a site's topics from the edge Kafka cluster to the
// cloud cluster, exactly once: records and the source positions are written
// to the cloud in one transaction.
package main

import (
	"context"
	"os"

	"github.com/cefiot/cefiot/libs/service"
	"github.com/cefiot/cefiot/services/bridge/internal/bridge"
)

func main() { service.Main("bridge", realMain) }

func realMain(ctx context.Context) error {
	cfg, err := bridge.ParseConfig(os.Args[1:], os.LookupEnv)
	if err != nil {
		return err
	}
	return bridge.Run(ctx, cfg)
}
