// Package program starts every cefiot binary, service or tool, the same
// way: a context that ends on SIGINT or SIGTERM, -h or -help printing the
// usage to standard output with exit status 0, and any failure printed as
// "name: error" with exit status 1. A program's run function gets the
// arguments and returns; it never calls os.Exit itself.
package program

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/cefiot/cefiot/libs/config"
)

// Run is a program's body.
type Run func(ctx context.Context, args []string) error

// Main runs run with the process's arguments and exits as described in the
// package comment.
func Main(name string, run Run) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	interrupted := ctx.Err() != nil
	stop()
	os.Exit(Report(name, err, interrupted, os.Stdout, os.Stderr))
}

// Report prints the outcome of a program's run and returns its exit
// status. A run that ended because of a signal (interrupted) exits 0.
func Report(name string, err error, interrupted bool, stdout, stderr io.Writer) int {
	var help *config.HelpError
	switch {
	case errors.As(err, &help):
		fmt.Fprintf(stdout, "Usage of %s:\n%s", name, help.Usage)
		if help.FromEnv {
			fmt.Fprintf(stdout, "Every flag -some-key can also be set as the environment variable %sSOME_KEY.\n", config.EnvPrefix)
		}
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0 // the program printed its own usage
	case err != nil && !interrupted:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}
