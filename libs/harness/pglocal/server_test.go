package pglocal_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cefiot/cefiot/libs/harness/pglocal"
	"github.com/cefiot/cefiot/libs/harness/pglocal/pgtest"
)

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real PostgreSQL server")
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func connect(t *testing.T, ctx context.Context, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// withQuery changes the DSN's query parameters, and its password when pw
// is not "".
func withQuery(t *testing.T, dsn, pw string, set map[string]string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for k, v := range set {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	if pw != "" {
		u.User = url.UserPassword(u.User.Username(), pw)
	}
	return u.String()
}

func TestStartConnectsOverVerifiedTLS(t *testing.T) {
	skipShort(t)
	s := pgtest.Start(t)
	ctx := testCtx(t)
	conn := connect(t, ctx, s.DSN())

	var user, db, version string
	var ssl bool
	if err := conn.QueryRow(ctx, `SELECT current_user::text, current_database()::text, s.version, s.ssl
		FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()`).Scan(&user, &db, &version, &ssl); err != nil {
		t.Fatal(err)
	}
	if user != pglocal.Role || db != pglocal.Database || !ssl || !strings.HasPrefix(version, "TLSv1.") {
		t.Fatalf("session: user %s, database %s, ssl %v %s; want %s, %s over TLS", user, db, ssl, version, pglocal.Role, pglocal.Database)
	}
	if tc := conn.PgConn().Conn(); tc != nil {
		if _, ok := tc.(*tls.Conn); !ok {
			t.Fatalf("client connection is %T, want *tls.Conn", tc)
		}
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE frames (id bigint PRIMARY KEY, camera text NOT NULL)`); err != nil {
		t.Fatalf("the role cannot create a table in its database: %v", err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO frames VALUES (1, 'cam-1'), (2, 'cam-2')`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM frames`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("count = %d, %v; want 2", n, err)
	}
	var super bool
	if err := conn.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil || super {
		t.Fatalf("role is superuser: %v (%v)", super, err)
	}
}

func TestRestartKeepsDataAndCredentials(t *testing.T) {
	skipShort(t)
	s := pgtest.Start(t)
	ctx := testCtx(t)
	conn, err := pgx.Connect(ctx, s.DSN())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE kv (k text PRIMARY KEY, v text)`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO kv VALUES ('before-stop', 'x')`); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close(ctx)
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	<-s.Done()

	// Stopped: the same Dir starts again with its data, port and password.
	s2 := pgtest.StartConfig(t, s.Config())
	if s2.DSN() != s.DSN() {
		t.Fatalf("DSN changed across a restart:\n%s\n%s", s.DSN(), s2.DSN())
	}
	conn2 := connect(t, ctx, s2.DSN())
	if _, err := conn2.Exec(ctx, `INSERT INTO kv VALUES ('before-kill', 'y')`); err != nil {
		t.Fatal(err)
	}
	if err := s2.Kill(); err != nil {
		t.Fatal(err)
	}

	// Killed: the next start recovers every committed row from the WAL.
	s3 := pgtest.StartConfig(t, s2.Config())
	conn3 := connect(t, ctx, s3.DSN())
	var keys []string
	rows, err := conn3.Query(ctx, `SELECT k FROM kv ORDER BY k`)
	if err != nil {
		t.Fatal(err)
	}
	keys, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "before-kill,before-stop" {
		t.Fatalf("rows after stop and kill: %v", keys)
	}
	if b, err := os.ReadFile(s3.LogFile()); err != nil || !strings.Contains(string(b), "database system was interrupted") {
		t.Errorf("no crash recovery in the server's log after Kill (%v)", err)
	}
}

// TestRefusals attacks one server: each way in that the server must refuse.
func TestRefusals(t *testing.T) {
	skipShort(t)
	s := pgtest.Start(t)

	t.Run("plaintext", func(t *testing.T) {
		dsn := withQuery(t, s.DSN(), "", map[string]string{"sslmode": "disable"})
		wantPgError(t, dsn, "28000", "no encryption")
	})
	t.Run("wrong password", func(t *testing.T) {
		wantPgError(t, withQuery(t, s.DSN(), "not-the-password", nil), "28P01", "")
	})
	t.Run("superuser over TCP", func(t *testing.T) {
		pw, err := os.ReadFile(filepath.Join(s.Dir(), "superuser.password"))
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(s.DSN())
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword("postgres", strings.TrimSpace(string(pw)))
		u.Path = "/postgres"
		wantPgError(t, u.String(), "28000", "rejects")
	})
	t.Run("client trusting a foreign CA", func(t *testing.T) {
		foreign := pgtest.TLS(t, t.TempDir()) // another CA, same names
		dsn := withQuery(t, s.DSN(), "", map[string]string{"sslrootcert": foreign.CA})
		conn, err := pgx.Connect(testCtx(t), dsn)
		if err == nil {
			_ = conn.Close(context.Background())
			t.Fatal("a client that trusts a foreign CA accepted the server")
		}
		var verr *tls.CertificateVerificationError
		if !errors.As(err, &verr) {
			t.Fatalf("foreign CA: %v; want a certificate verification error", err)
		}
	})
}

// wantPgError connects with dsn and wants the server to refuse with code,
// its message containing msg.
func wantPgError(t *testing.T, dsn, code, msg string) {
	t.Helper()
	conn, err := pgx.Connect(testCtx(t), dsn)
	if err == nil {
		_ = conn.Close(context.Background())
		t.Fatal("the connection was accepted")
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != code || !strings.Contains(pe.Message, msg) {
		t.Fatalf("refused with %v; want SQLSTATE %s with %q", err, code, msg)
	}
}

// TestStartFailureCarriesLogTail: a server that exits during its start
// fails Start with the server's own words.
func TestStartFailureCarriesLogTail(t *testing.T) {
	skipShort(t)
	files := pgtest.TLS(t, t.TempDir())
	cfg := pglocal.Config{
		Dir:      pgtest.Dir(t),
		TLS:      &files,
		BinDir:   pgtest.Bin(t),
		Settings: map[string]string{"shared_buffers": "'plenty'"},
		Logger:   pgtest.Logger(t),
	}
	_, err := pglocal.Start(testCtx(t), cfg)
	if err == nil {
		t.Fatal("a server with an invalid setting started")
	}
	if !strings.Contains(err.Error(), "tail of") || !strings.Contains(err.Error(), "shared_buffers") {
		t.Fatalf("the error lacks the server's log: %v", err)
	}
	t.Logf("failed as it should: %v", err)
	// The cluster was made; without the bad setting the Dir starts.
	cfg.Settings = nil
	pgtest.StartConfig(t, cfg)
}
