// Command scheduler is the control plane of one site: it embeds or joins the
// site's etcd, elects a leader among its replicas and assigns every declared
// workload to one live worker that fits it. In a Kubernetes edge site its
// leader also issues each enrolled board its own cloud credential
// (-board-signer-ca; internal/boardsigner).
package main

import (
	"context"
	"os"

	"github.com/cefiot/cefiot/libs/program"
	"github.com/cefiot/cefiot/services/scheduler/internal/scheduler"
)

func main() { program.Main("scheduler", run) }

func run(ctx context.Context, args []string) error {
	cfg, err := scheduler.ParseConfig(args, os.LookupEnv)
	if err != nil {
		return err
	}
	return scheduler.Run(ctx, cfg)
}
