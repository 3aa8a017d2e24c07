// Package kafkatest starts real local Kafka clusters (see package kafkalocal)
// for Go tests.
//
// A test that calls [StartForTest] is skipped when the Kafka jars have not
// been fetched (run scripts/fetch-kafka.sh), unless CEFIOT_REQUIRE_KAFKA=1,
// under which a missing fetch fails the test instead: CI sets it so that a
// broken fetch cannot pass as skipped tests.
package kafkatest

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/harness/kafkalocal"
	"github.com/cefiot/cefiot/libs/harness/procs"
	"github.com/cefiot/cefiot/libs/harness/testlog"
)

// EnvRequire, set to 1, turns a missing Kafka fetch from a skip into a
// failure.
const EnvRequire = "CEFIOT_REQUIRE_KAFKA"

// StartTimeout bounds the start of a test cluster.
const StartTimeout = 3 * time.Minute

// Libs returns the Kafka jars directory for a test: found from the
// repository root (the directory with go.work above the working directory)
// as [kafkalocal.FindLibs] does. When the jars are missing it skips the test,
// or fails it under CEFIOT_REQUIRE_KAFKA=1.
func Libs(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	root, err := kafkalocal.FindRepoRoot(wd)
	if err != nil && os.Getenv(kafkalocal.EnvLibs) == "" {
		t.Fatalf("kafkatest: %v", err)
	}
	libs, err := kafkalocal.FindLibs(root)
	if errors.Is(err, kafkalocal.ErrLibsNotFound) && os.Getenv(EnvRequire) != "1" {
		t.Skipf("kafkatest: skipping, Kafka jars not fetched (run scripts/fetch-kafka.sh; set %s=1 to fail instead): %v",
			EnvRequire, err)
	}
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	return libs
}

// StartForTest starts a cluster of brokers combined nodes in t.TempDir on
// free ports, logging to t, and stops it in t.Cleanup. When the test has
// failed, the cleanup logs the tail of every node's broker.log.
func StartForTest(t testing.TB, brokers int) *kafkalocal.Cluster {
	t.Helper()
	return StartConfigForTest(t, kafkalocal.ClusterConfig{Brokers: brokers})
}

// StartConfigForTest is [StartForTest] with more settings: cfg.BaseDir,
// cfg.LibsDir and cfg.Name default to t.TempDir(), [Libs] and the test name.
func StartConfigForTest(t testing.TB, cfg kafkalocal.ClusterConfig) *kafkalocal.Cluster {
	t.Helper()
	if cfg.LibsDir == "" {
		cfg.LibsDir = Libs(t)
	}
	if cfg.BaseDir == "" {
		cfg.BaseDir = t.TempDir()
	}
	if cfg.Name == "" {
		cfg.Name = t.Name()
	}
	logger := Logger(t)

	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	begin := time.Now()
	c, err := kafkalocal.Start(ctx, cfg, logger)
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	t.Logf("kafkatest: %d-broker cluster ready in %v at %s", len(c.Nodes()), time.Since(begin).Round(time.Millisecond), c.BootstrapServers())
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.Nodes() {
				t.Logf("kafkatest: node %d (running=%v) %s:\n%s", n.ID, n.Running, n.LogFile, procs.LogTail(n.LogFile, 0, 30))
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("kafkatest: %v", err)
		}
	})
	return c
}

// Logger returns a logger that writes to t.Log while the test runs and
// drops records after it has finished (broker exits are logged from other
// goroutines).
func Logger(t testing.TB) *slog.Logger { return testlog.Logger(t) }
