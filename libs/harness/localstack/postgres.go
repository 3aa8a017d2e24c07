package localstack

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/harness/pglocal"
	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/libs/placement"
)

// Index backends of the sink (Config.Index).
const (
	IndexBolt     = "bbolt"
	IndexPostgres = "postgres"
)

// IndexSchema is the PostgreSQL schema of the stack's frame index.
const IndexSchema = "cefiot"

// sharedIndex reports whether the sinks keep their index in PostgreSQL.
func (c Config) sharedIndex() bool { return c.Index == IndexPostgres }

// SinkNames are the sink replicas' process names: "sink", then "sink-2",
// "sink-3", ...
func (s *Stack) SinkNames() []string {
	names := []string{pipeline.KindSink}
	for i := 2; i <= s.cfg.SinkReplicas; i++ {
		names = append(names, pipeline.KindSink+"-"+strconv.Itoa(i))
	}
	return names
}

// isSinkReplica reports a sink replica other than the first.
func isSinkReplica(name string) bool { return strings.HasPrefix(name, pipeline.KindSink+"-") }

// cloudWorkloads are the cloud spec's workloads: the sink, placed by the
// cloud scheduler, unless the sinks share the PostgreSQL index: then every
// replica consumes at once, in one group, without placement.
func (s *Stack) cloudWorkloads() []placement.WorkloadSpec {
	if s.cfg.sharedIndex() {
		return nil
	}
	return []placement.WorkloadSpec{{Name: pipeline.KindSink, Kind: pipeline.KindSink}}
}

// startPostgres starts the cloud's PostgreSQL (TLS with the cloud site's
// postgres certificate, password authentication) in a directory of its
// own under the system's temporary directory, which the postgres system
// user reaches when the stack runs as root.
func (s *Stack) startPostgres(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "cefiot-postgres-")
	if err != nil {
		return fmt.Errorf("localstack: postgres dir: %w", err)
	}
	files := s.PKI("cloud").Files(access.Postgres)
	srv, err := pglocal.Start(ctx, pglocal.Config{Dir: dir, TLS: &files, Logger: s.logger})
	if err != nil {
		_ = os.RemoveAll(dir)
		return fmt.Errorf("localstack: %w", err)
	}
	s.pg, s.pgDir = srv, dir
	return nil
}

// stopPostgres stops the server and deletes its directory.
func (s *Stack) stopPostgres(ctx context.Context) error {
	if s.pg == nil {
		return nil
	}
	err := s.pg.Stop(ctx)
	_ = os.RemoveAll(s.pgDir)
	s.pg = nil
	if err != nil {
		return fmt.Errorf("localstack: %w", err)
	}
	return nil
}

// Postgres is the cloud's PostgreSQL server (nil unless Config.Index is
// postgres).
func (s *Stack) Postgres() *pglocal.Server { return s.pg }

// sinkIndexArgs and sinkIndexEnv are how a sink finds its index: the
// connection string, with its password, goes in the environment, never
// on a command line.
func (s *Stack) sinkIndexArgs() []string {
	if !s.cfg.sharedIndex() {
		return nil
	}
	return []string{"-index", IndexPostgres, "-index-schema", IndexSchema}
}

func (s *Stack) sinkIndexEnv() []string {
	if !s.cfg.sharedIndex() || s.pg == nil {
		return nil
	}
	return []string{"CEFIOT_INDEX_DSN=" + s.pg.DSN()}
}
