// Package pgtest starts real local PostgreSQL servers (see package pglocal)
// for Go tests.
//
// A test that calls [Start] is skipped when no PostgreSQL server binaries
// are installed (scripts/install-deps.sh installs Debian's), unless
// CEFIOT_REQUIRE_POSTGRES=1, under which their absence fails the test
// instead: make test sets it so that a missing install cannot pass as
// skipped tests.
package pgtest

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/harness/pglocal"
	"github.com/cefiot/cefiot/libs/harness/procs"
	"github.com/cefiot/cefiot/libs/harness/testlog"
	"github.com/cefiot/cefiot/libs/pki"
	"github.com/cefiot/cefiot/libs/tlsx"
)

// EnvRequire, set to 1, turns missing PostgreSQL binaries from a skip into
// a failure.
const EnvRequire = "CEFIOT_REQUIRE_POSTGRES"

// StartTimeout bounds the start of a test server.
const StartTimeout = 2 * time.Minute

// Component is the identity of the test server's certificate.
const Component = "postgres"

// Bin returns the directory of the PostgreSQL server binaries (see
// [pglocal.FindBin]). When there are none it skips the test, or fails it
// under CEFIOT_REQUIRE_POSTGRES=1.
func Bin(t testing.TB) string {
	t.Helper()
	bin, err := pglocal.FindBin()
	switch {
	case errors.Is(err, pglocal.ErrNotFound) && os.Getenv(EnvRequire) != "1":
		t.Skipf("pgtest: skipping, no PostgreSQL server installed (run scripts/install-deps.sh; set %s=1 to fail instead): %v", EnvRequire, err)
	case errors.Is(err, pglocal.ErrNotFound):
		t.Fatalf("pgtest: %s=1 but no PostgreSQL server is installed (run scripts/install-deps.sh): %v", EnvRequire, err)
	case err != nil:
		t.Fatalf("pgtest: %v", err)
	}
	return bin
}

// Start starts a server in t.TempDir on a free port, with a throwaway CA
// and server certificate (see [TLS]), logging to t, and stops it in
// t.Cleanup. When the test has failed, the cleanup logs the tail of the
// server's log.
func Start(t testing.TB) *pglocal.Server {
	t.Helper()
	return StartConfig(t, pglocal.Config{})
}

// StartConfig is [Start] with more settings: cfg.BinDir, cfg.Dir, cfg.TLS
// and cfg.Logger default to [Bin], [Dir], [TLS] and [Logger]. StartConfig
// with a stopped or killed server's Config starts it again, with its data,
// port and credentials.
func StartConfig(t testing.TB, cfg pglocal.Config) *pglocal.Server {
	t.Helper()
	if cfg.BinDir == "" {
		cfg.BinDir = Bin(t)
	}
	if cfg.Dir == "" {
		cfg.Dir = Dir(t)
	}
	if cfg.TLS == nil {
		files := TLS(t, t.TempDir())
		cfg.TLS = &files
	}
	if cfg.Logger == nil {
		cfg.Logger = Logger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	begin := time.Now()
	s, err := pglocal.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Logf("pgtest: PostgreSQL ready in %v at %s", time.Since(begin).Round(time.Millisecond), s.Addr())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pgtest: %s:\n%s", s.LogFile(), procs.LogTail(s.LogFile(), 0, 30))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return s
}

// Dir returns a new directory for a server. Under root, which runs the
// server as the postgres system user, it makes the test's temporary root
// (0700, root's) searchable by others, so that user can reach the
// directory; nothing in it becomes readable.
func Dir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
	}
	return dir
}

// TLS makes a throwaway CA in dir and issues the server's certificate for
// 127.0.0.1 and localhost, with the project's PKI (a site named pgtest).
func TLS(t testing.TB, dir string) tlsx.Files {
	t.Helper()
	if _, _, _, err := pki.InitSite(dir, "pgtest", []string{Component}, []string{"127.0.0.1", "localhost"}, 0, time.Now()); err != nil {
		t.Fatalf("pgtest: PKI: %v", err)
	}
	return tlsx.FilesIn(dir, Component)
}

// Logger returns a logger that writes to t.Log while the test runs and
// drops records after it has finished.
func Logger(t testing.TB) *slog.Logger { return testlog.Logger(t) }
