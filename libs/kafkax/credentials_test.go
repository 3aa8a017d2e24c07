package kafkax

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/logging"
	"github.com/cefiot/cefiot/libs/pki"
	"github.com/cefiot/cefiot/libs/tlsx"
)

// TestCredentialWatchSeesRotationsNotBreakage: a reissued key pair is a
// change; a half-written one is not (until it is whole); a plaintext
// connection has nothing to watch.
func TestCredentialWatchSeesRotationsNotBreakage(t *testing.T) {
	dir := t.TempDir()
	issue := func() {
		t.Helper()
		if _, _, _, err := pki.InitSite(dir, "edge", []string{"worker/enrich"}, []string{"localhost"}, 0, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	issue()
	files := tlsx.FilesIn(dir, "worker/enrich")
	w := WatchCredentials(logging.Discard(), Conn{Bootstrap: "b:9092", TLS: &files}, Conn{Bootstrap: "plain:9092"})
	changed := w.Changed()
	w.Check()
	select {
	case <-changed:
		t.Fatal("a change reported with nothing changed")
	default:
	}
	if err := os.WriteFile(files.Key, []byte("-----BEGIN EC PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.Check()
	select {
	case <-changed:
		t.Fatal("a broken key reported as a change")
	default:
	}
	issue()
	w.Check()
	select {
	case <-changed:
	default:
		t.Fatal("a reissued key pair not reported")
	}
	if w.Changed() == changed {
		t.Fatal("the next change has no new channel")
	}
	if len(WatchCredentials(logging.Discard(), Conn{Bootstrap: "plain:9092"}).conns) != 0 {
		t.Fatal("a plaintext connection watched")
	}
}

// TestRenewingRunsAgainOnChange: Renewing stops f when the credentials
// change and runs it again, and returns when ctx ends.
func TestRenewingRunsAgainOnChange(t *testing.T) {
	dir := t.TempDir()
	if _, _, _, err := pki.InitSite(dir, "edge", []string{"worker/bridge"}, nil, 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	files := tlsx.FilesIn(dir, "worker/bridge")
	w := WatchCredentials(logging.Discard(), Conn{Bootstrap: "b:9092", TLS: &files})
	ctx, cancel := context.WithCancel(context.Background())
	runs := make(chan struct{}, 4)
	done := make(chan error, 1)
	go func() {
		done <- Renewing(ctx, w, func(ctx context.Context) error {
			runs <- struct{}{}
			<-ctx.Done()
			return nil
		})
	}()
	<-runs
	if _, _, _, err := pki.InitSite(dir, "edge", []string{"worker/bridge"}, nil, 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	w.Check()
	select {
	case <-runs:
	case <-time.After(5 * time.Second):
		t.Fatal("f not run again after the change")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
