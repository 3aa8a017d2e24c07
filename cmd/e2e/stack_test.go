package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/localstack"
)

// startStack starts a local stack for the test and stops it when the test
// ends, first logging the tail of every service's log if the test failed.
func startStack(ctx context.Context, t *testing.T, cfg localstack.Config) *localstack.Stack {
	t.Helper()
	stack, err := localstack.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range stack.ServiceNames() {
				b, _ := os.ReadFile(filepath.Join(cfg.RunDir, "logs", name+".log"))
				t.Logf("---- %s.log ----\n%s", name, tail(string(b), 30))
			}
		}
		stopCtx, c := context.WithTimeout(context.Background(), 2*time.Minute)
		defer c()
		if err := stack.Stop(stopCtx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return stack
}

// failOnExit fails the test (and calls cancel) when a service of the stack
// dies before ctx ends.
func failOnExit(ctx context.Context, t *testing.T, stack *localstack.Stack, cancel context.CancelFunc) {
	go func() {
		select {
		case err := <-stack.Exits():
			t.Errorf("a service died: %v", err)
			cancel()
		case <-ctx.Done():
		}
	}()
}
