package linkprobe

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/twmb/franz-go/pkg/kfake"
)

const (
	interval = 100 * time.Millisecond
	timeout  = 300 * time.Millisecond
	failures = 2
)

// downWithin is how long the probe may take to notice an unanswering
// cluster: failures probes, each ending after timeout at the latest, one
// interval apart, plus slack for a loaded machine.
const downWithin = failures*(interval+timeout) + 3*time.Second

// newCluster starts a fake Kafka cluster (kfake) with one broker, on port
// (0: any free port).
func newCluster(t *testing.T, port int) (*kfake.Cluster, string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()[0]
}

// run starts p and stops it when the test ends.
func run(t *testing.T, p *Probe) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("probe: %v", err)
		}
	})
}

// waitState polls p until want holds, for at most within.
func waitState(t *testing.T, p *Probe, what string, within time.Duration, want func(State) bool) State {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := p.State()
		if want(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("link not %s within %v: state %+v", what, within, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func isUp(st State) bool   { return st.Known && st.Up }
func isDown(st State) bool { return st.Known && !st.Up }

func TestProbeFollowsTheCluster(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cluster, addr := newCluster(t, 0)
	p := New(kafkax.Conn{Bootstrap: addr}, interval, timeout, failures, logger)
	if st := p.State(); st.Known {
		t.Fatalf("state known before any probe: %+v", st)
	}
	run(t, p)

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := p.WaitUp(ctx); err != nil {
		t.Fatalf("link not up with the cluster answering: %v", err)
	}
	up := p.State()
	if !isUp(up) || up.Downs != 0 || up.Err != "" {
		t.Fatalf("state %+v, want up without downs", up)
	}

	cluster.Close()
	closed := time.Now()
	down := waitState(t, p, "down after the cluster closed", downWithin, isDown)
	t.Logf("down %v after the cluster closed", time.Since(closed).Round(time.Millisecond))
	if down.Downs != 1 || down.Err == "" || !down.Since.After(up.Since) {
		t.Fatalf("state %+v, want down once, with the error, since after it was up (%v)", down, up.Since)
	}

	// The cluster comes back on the same address: the link is up again.
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	newCluster(t, n)
	again := waitState(t, p, "up after the cluster returned", 5*time.Second, isUp)
	if again.Downs != 1 || again.Err != "" {
		t.Fatalf("state %+v, want up again after one down", again)
	}
}

func TestProbeReportsDownAtTheFirstFailure(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	// A cluster that is gone leaves a free address nobody answers on.
	cluster, addr := newCluster(t, 0)
	cluster.Close()
	p := New(kafkax.Conn{Bootstrap: addr}, interval, timeout, failures, logger)
	run(t, p)
	// The state is unknown until the first probe, which fails: no
	// waiting for more failures to report a link that never was up.
	st := waitState(t, p, "down", timeout+3*time.Second, func(st State) bool { return st.Known })
	if !isDown(st) || st.Downs != 1 || st.Err == "" {
		t.Fatalf("state %+v, want down after the first probe", st)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*interval)
	defer cancel()
	if err := p.WaitUp(ctx); err == nil {
		t.Fatal("WaitUp returned with nothing answering")
	}
}
