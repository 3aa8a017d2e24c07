// Command cefiotctl is the admin command line of cefiot sites: nodes,
// workers, workloads, assignments (with a watch stream), cordon, drain,
// moves within a site and between sites, and applying pipeline specs.
// Run it with -h for the commands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cefiot/cefiot/cmd/cefiotctl/internal/ctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := ctl.Run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv); err != nil {
		fmt.Fprintln(os.Stderr, "cefiotctl:", err)
		stop()
		os.Exit(1)
	}
}
