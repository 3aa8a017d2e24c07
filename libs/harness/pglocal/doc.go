// Package pglocal runs a real PostgreSQL server as a local process, for
// tests, benchmarks and the local stack of the cefiot pipeline.
//
// Nothing is emulated: the server is the unmodified postgres of Debian's
// PostgreSQL server package (postgresql-15 on Debian 12, whose binaries live
// in /usr/lib/postgresql/<major>/bin, off PATH; see [FindBin]).
//
// # Lifecycle
//
// [Start] lays out [Config].Dir as
//
//	<Dir>/data/              the cluster (initdb's, made on the first start
//	                         only and reused by every later one)
//	<Dir>/data/pglocal.conf  this package's settings, written on every start
//	                         (postgresql.conf includes it)
//	<Dir>/data/pg_hba.conf   who may connect, written on every start
//	<Dir>/tls/               copies of the server's key pair and CA
//	<Dir>/s/                 the Unix socket (the bootstrap superuser's only way in)
//	<Dir>/*.password         the superuser's and the cefiot role's passwords (0600)
//	<Dir>/initdb.log         initdb's output
//	<Dir>/postgres.log       the server's log (stderr)
//
// starts postgres in its own process group, waits until it accepts a
// connection (a process that exits first, or a ctx that expires, fails
// [Start] with the tail of postgres.log), and makes sure the database
// cefiot exists, owned by the login role cefiot, whose random password is
// kept in Dir so that a restart on the same Dir keeps the same
// credentials. [Server.DSN] is how clients connect.
//
// # Security
//
// The server is set up as it would be deployed: it listens on 127.0.0.1
// only; pg_hba.conf admits TCP clients only over TLS (hostssl) with
// SCRAM-SHA-256 passwords, and no plaintext, trust or peer lines; the
// bootstrap superuser may connect only over the Unix socket in Dir, with
// its password. DSN asks for sslmode=verify-full against the CA of
// [Config].TLS, so the server certificate must name 127.0.0.1.
//
// PostgreSQL refuses to run as root. When the caller is root (as CI is),
// initdb and postgres run as the postgres system user that Debian's package
// creates: Dir and what this package writes there are chowned to it, and
// every parent of Dir must be searchable by it.
//
// [Server.Stop] is a fast shutdown (SIGINT), [Server.Kill] a crash of the
// whole server (SIGKILL to postgres and every process it started), for
// fault tests; [Start] with [Server.Config] starts it again on the same Dir
// and port.
//
// Tests use the pgtest subpackage, which makes a throwaway CA and server
// certificate, starts a server in t.TempDir and stops it in t.Cleanup.
//
// The package is Unix-only (process groups, signals, credentials).
package pglocal
