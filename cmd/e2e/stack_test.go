package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/harness/localstack"
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
				t.Logf("---- %s.log (last lines, librdkafka's own left out) ----\n%s", name, tail(withoutClientLines(string(b)), 20))
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

// exitWatch fails the test when a service process of the stack exits on
// its own, except the exits the test announced with expect.
type exitWatch struct {
	mu       sync.Mutex
	expected map[string]chan localstack.Exit
}

func watchExits(ctx context.Context, t *testing.T, stack *localstack.Stack) *exitWatch {
	w := &exitWatch{expected: map[string]chan localstack.Exit{}}
	go func() {
		for {
			select {
			case ex := <-stack.Exits():
				w.mu.Lock()
				ch := w.expected[ex.Service]
				delete(w.expected, ex.Service)
				w.mu.Unlock()
				if ch == nil {
					t.Errorf("a service died: %v", ex)
					continue
				}
				ch <- ex
			case <-ctx.Done():
				return
			}
		}
	}()
	return w
}

// expect announces one exit of service; the returned channel receives it.
func (w *exitWatch) expect(service string) <-chan localstack.Exit {
	ch := make(chan localstack.Exit, 1)
	w.mu.Lock()
	w.expected[service] = ch
	w.mu.Unlock()
	return ch
}

// withoutClientLines drops the lines librdkafka writes itself ("%4|..."):
// they repeat by the hundred while a broker is away and would hide the
// service's own lines.
func withoutClientLines(log string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(log, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "%") {
			b.WriteString(line)
		}
	}
	return b.String()
}
