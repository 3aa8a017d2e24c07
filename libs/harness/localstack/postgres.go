package localstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

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

// DropIndex drops the sinks' index (its schema, every table in it), as a
// lost database would: the objects stay.
func (s *Stack) DropIndex(ctx context.Context) error {
	if s.pg == nil {
		return errors.New("localstack: no PostgreSQL index (Config.Index)")
	}
	conn, err := pgx.Connect(ctx, s.pg.DSN())
	if err != nil {
		return fmt.Errorf("localstack: drop index: %w", err)
	}
	defer func() { _ = conn.Close(ctx) }()
	if _, err := conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{IndexSchema}.Sanitize()+" CASCADE"); err != nil {
		return fmt.Errorf("localstack: drop index: %w", err)
	}
	return nil
}

// SinkCommand runs the sink binary's subcommand (e.g. "rebuild-index")
// with the first sink's flags and environment, and returns its output.
func (s *Stack) SinkCommand(ctx context.Context, sub string) (string, error) {
	sp, err := s.spec(pipeline.KindSink)
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, sp.Path, append([]string{sub}, sp.Args...)...)
	cmd.Env = append(os.Environ(), sp.Env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("localstack: sink %s: %w\n%s", sub, err, out)
	}
	return string(out), nil
}
