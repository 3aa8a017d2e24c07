package pglocal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// readyPoll is how often a starting server is asked for a connection.
const readyPoll = 50 * time.Millisecond

// errExited says that postgres exited while it was awaited.
var errExited = errors.New("postgres exited during start")

// superuserConfig is how the bootstrap superuser connects: over the Unix
// socket in Dir, with its password, nothing taken from the environment.
func superuserConfig(l layout, port int, pw string) (*pgx.ConnConfig, error) {
	cc, err := pgx.ParseConfig("sslmode=disable")
	if err != nil {
		return nil, fmt.Errorf("superuser connection config: %w", err)
	}
	cc.Host = l.socketDir()
	cc.Port = uint16(port)
	cc.User = superuser
	cc.Password = pw
	cc.Database = "postgres"
	cc.TLSConfig = nil
	cc.Fallbacks = nil
	cc.ConnectTimeout = 5 * time.Second
	return cc, nil
}

// waitReady connects as cc until the server takes the connection: the
// server is ready. It fails at once when p exits or the password is
// refused, and when ctx ends.
func waitReady(ctx context.Context, p *proc, cc *pgx.ConnConfig) (*pgx.Conn, error) {
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	var last error
	for {
		conn, err := pgx.ConnectConfig(ctx, cc)
		if err == nil {
			return conn, nil
		}
		if refused(err) {
			return nil, fmt.Errorf("the bootstrap superuser was refused (is superuser.password in Dir the one the cluster was made with?): %w", err)
		}
		last = err
		select {
		case <-p.done:
			return nil, fmt.Errorf("%w (%v)", errExited, p.err)
		case <-ctx.Done():
			return nil, fmt.Errorf("postgres not ready (%w); last attempt: %v", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// refused tells an authentication failure from a server still starting.
func refused(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "28P01" || pe.Code == "28000")
}
