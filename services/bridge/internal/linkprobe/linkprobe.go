// Package linkprobe watches the WAN link to the cloud cluster: it asks the
// cloud brokers for metadata every interval and reports the link down after
// consecutive unanswered requests, up again after one answer. The bridge
// also reports commits, which prove the link is up.
package linkprobe

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/cefiot/cefiot/libs/kafkax"
)

// State is the link state at one moment.
type State struct {
	// Known is false until the first probe has finished.
	Known bool
	Up    bool
	// Since is when the link entered this state.
	Since time.Time
	// Err is the last probe error while down.
	Err string
	// Downs counts transitions to down.
	Downs uint64
}

// Probe tracks the link state.
type Probe struct {
	bootstrap kafkax.Conn
	interval  time.Duration
	timeout   time.Duration
	failures  int
	logger    *slog.Logger

	mu      sync.Mutex
	st      State
	fails   int
	changed chan struct{} // closed and replaced on every change
}

// New returns a probe of the cluster at bootstrap: a request every interval,
// each allowed timeout, and down after failures unanswered requests in a
// row.
func New(bootstrap kafkax.Conn, interval, timeout time.Duration, failures int, logger *slog.Logger) *Probe {
	return &Probe{bootstrap: bootstrap, interval: interval, timeout: timeout, failures: max(failures, 1), logger: logger, changed: make(chan struct{})}
}

// Run probes until ctx ends.
func (p *Probe) Run(ctx context.Context) error {
	admin, err := kafka.NewAdminClient(kafkax.Config(p.bootstrap, map[string]any{
		"socket.timeout.ms":                  int(p.timeout / time.Millisecond),
		"socket.connection.setup.timeout.ms": int(max(p.timeout, time.Second) / time.Millisecond),
		"reconnect.backoff.ms":               100,
		"reconnect.backoff.max.ms":           1000,
	}))
	if err != nil {
		return fmt.Errorf("link probe client: %w", err)
	}
	defer admin.Close()
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		_, err := admin.GetMetadata(nil, false, int(p.timeout/time.Millisecond))
		if err != nil {
			p.fail(err)
		} else {
			p.MarkUp()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// MarkUp records evidence that the link works.
func (p *Probe) MarkUp() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fails = 0
	if p.st.Known && p.st.Up {
		return
	}
	if p.st.Known {
		p.logger.Info("WAN link to the cloud cluster is up again", "down_for", time.Since(p.st.Since).Round(time.Millisecond))
	}
	p.st = State{Known: true, Up: true, Since: time.Now(), Downs: p.st.Downs}
	p.notify()
}

func (p *Probe) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fails++
	if p.st.Known && !p.st.Up {
		p.st.Err = err.Error()
		return
	}
	if p.fails < p.failures && p.st.Known {
		return
	}
	p.logger.Warn("WAN link to the cloud cluster is down; the edge keeps buffering", "err", err)
	p.st = State{Known: true, Up: false, Since: time.Now(), Err: err.Error(), Downs: p.st.Downs + 1}
	p.notify()
}

func (p *Probe) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// State returns the current state.
func (p *Probe) State() State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

// WaitUp returns once the link is known to be up, or ctx's error.
func (p *Probe) WaitUp(ctx context.Context) error {
	for {
		p.mu.Lock()
		up, ch := p.st.Known && p.st.Up, p.changed
		p.mu.Unlock()
		if up {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}
