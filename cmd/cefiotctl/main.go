// Command cefiotctl is the admin command line of cefiot sites: nodes,
// workers, workloads, assignments (with a watch stream), cordon, drain,
// moves within a site and between sites, and applying pipeline specs.
// Run it with -h for the commands.
package main

import (
	"context"
	"os"

	"github.com/cefiot/cefiot/cmd/cefiotctl/internal/ctl"
	"github.com/cefiot/cefiot/libs/program"
)

func main() {
	program.Main("cefiotctl", func(ctx context.Context, args []string) error {
		return ctl.Run(ctx, args, os.Stdout, os.Stderr, os.LookupEnv)
	})
}
