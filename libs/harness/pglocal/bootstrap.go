package pglocal

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// bootstrap makes sure the role and its database exist, the role with pw
// as its password (so a restart keeps the credentials in Dir).
func bootstrap(ctx context.Context, conn *pgx.Conn, pw string) error {
	role := pgx.Identifier{Role}.Sanitize()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", Role).Scan(&exists); err != nil {
		return fmt.Errorf("look for role %s: %w", Role, err)
	}
	verb := "CREATE"
	if exists {
		verb = "ALTER"
	}
	// The password goes as a literal (utility statements take no
	// parameters); password_encryption stores only its SCRAM verifier.
	if _, err := conn.Exec(ctx, fmt.Sprintf("%s ROLE %s LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %s", verb, role, literal(pw))); err != nil {
		return fmt.Errorf("%s role %s: %w", strings.ToLower(verb), Role, err)
	}
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", Database).Scan(&exists); err != nil {
		return fmt.Errorf("look for database %s: %w", Database, err)
	}
	if exists {
		return nil
	}
	db := pgx.Identifier{Database}.Sanitize()
	if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s OWNER %s", db, role)); err != nil {
		return fmt.Errorf("create database %s: %w", Database, err)
	}
	// Only its owner (and the superuser) may connect to it.
	if _, err := conn.Exec(ctx, fmt.Sprintf("REVOKE ALL ON DATABASE %s FROM PUBLIC", db)); err != nil {
		return fmt.Errorf("database %s: revoke from public: %w", Database, err)
	}
	return nil
}

// literal writes s as an SQL string literal.
func literal(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// checkClient connects as a client would, with dsn, and checks that the
// session is the role's and runs over TLS.
func checkClient(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect as %s over TLS: %w", Role, err)
	}
	defer func() { _ = conn.Close(ctx) }()
	var user string
	var ssl bool
	if err := conn.QueryRow(ctx, "SELECT current_user::text, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&user, &ssl); err != nil {
		return fmt.Errorf("check the %s session: %w", Role, err)
	}
	if user != Role || !ssl {
		return fmt.Errorf("the %s session is %s with ssl=%v", Role, user, ssl)
	}
	return nil
}
