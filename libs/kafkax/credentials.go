package kafkax

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// CredentialWatch watches the TLS files of a process's Kafka connections.
// librdkafka reads a client's key pair and trust bundle once, when the
// client is made, so a rotated certificate reaches Kafka only through new
// clients: the watch tells when to make them (Renewing, or a worker's
// Refresh).
type CredentialWatch struct {
	conns  []Conn
	logger *slog.Logger

	mu          sync.Mutex
	fingerprint string
	changed     chan struct{} // closed and replaced on every change
}

// WatchCredentials watches the files of conns (plaintext ones have none).
func WatchCredentials(logger *slog.Logger, conns ...Conn) *CredentialWatch {
	w := &CredentialWatch{logger: logger, changed: make(chan struct{})}
	for _, c := range conns {
		if c.TLS != nil {
			w.conns = append(w.conns, c)
		}
	}
	w.fingerprint = w.read()
	return w
}

func (w *CredentialWatch) read() string {
	var b strings.Builder
	for _, c := range w.conns {
		b.WriteString(c.TLS.Fingerprint())
	}
	return b.String()
}

// Changed is closed at the next change of the files.
func (w *CredentialWatch) Changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

// Check looks at the files once: if they changed and every connection's
// files are usable, it reports a change. Files caught half-written, or
// broken, are logged and looked at again at the next check.
func (w *CredentialWatch) Check() {
	now := w.read()
	w.mu.Lock()
	defer w.mu.Unlock()
	if now == w.fingerprint {
		return
	}
	for _, c := range w.conns {
		if err := c.TLS.Usable(); err != nil {
			w.logger.Error("Kafka credentials changed but cannot be used; keeping the current clients", "cluster", c.Bootstrap, "err", err)
			return
		}
	}
	w.fingerprint = now
	close(w.changed)
	w.changed = make(chan struct{})
	w.logger.Info("Kafka credentials changed: rebuilding the Kafka clients")
}

// Run checks every interval until ctx ends.
func (w *CredentialWatch) Run(ctx context.Context, interval time.Duration) {
	if len(w.conns) == 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.Check()
		}
	}
}

// Renewing runs f until ctx ends or f returns on its own, and whenever the
// credentials change first stops it (its context ends) and runs it again:
// for a long-lived client outside a workload (a probe, a monitor). A nil
// watch runs f once.
func Renewing(ctx context.Context, w *CredentialWatch, f func(context.Context) error) error {
	if w == nil {
		return f(ctx)
	}
	for {
		changed := w.Changed()
		runCtx, cancel := context.WithCancel(ctx)
		var err error
		done := make(chan struct{})
		go func() { defer close(done); err = f(runCtx) }()
		select {
		case <-done:
			cancel()
			return err
		case <-changed:
			// Stopped for the change: what it returns does not matter.
			cancel()
			<-done
			if ctx.Err() != nil {
				return nil
			}
		}
	}
}
