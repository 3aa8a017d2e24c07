package pglocal

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cefiot/cefiot/libs/harness/netx"
	"github.com/cefiot/cefiot/libs/harness/procs"
)

// maxSocketPath is the longest Unix socket path (sun_path less its NUL).
const maxSocketPath = 107

// portTries is how often a start on a free port of its own choosing tries
// another when the one it chose was taken meanwhile.
const portTries = 3

// Server is a running PostgreSQL server.
type Server struct {
	cfg    Config // Port filled in
	l      layout
	proc   *proc
	rolePW string
}

// Start starts a server in cfg.Dir (making its cluster on the first start)
// and returns once it takes connections and the database [Database] exists,
// owned by the login role [Role]. A server that exits, or a ctx that ends,
// first fails Start with the tail of the server's log.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	begin := time.Now()
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("pglocal: %w", err)
	}
	s, err := start(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pglocal %s: %w", cfg.Dir, err)
	}
	cfg.Logger.Info("postgres ready", "dir", cfg.Dir, "addr", s.Addr(), "pid", s.proc.pid, "took", time.Since(begin).Round(time.Millisecond))
	return s, nil
}

func start(ctx context.Context, cfg Config) (*Server, error) {
	o, err := ownerFor(os.Geteuid())
	if err != nil {
		return nil, err
	}
	l := layout{dir: cfg.Dir}
	if p := l.socketPath(65535); len(p) > maxSocketPath {
		return nil, fmt.Errorf("Dir is too long: the socket path %s would pass the %d bytes Unix sockets allow", p, maxSocketPath)
	}
	if err := o.mkdir(cfg.Dir); err != nil {
		return nil, err
	}
	if err := o.checkReachable(cfg.Dir); err != nil {
		return nil, err
	}
	superPW, err := password(o, l.superPW())
	if err != nil {
		return nil, err
	}
	rolePW, err := password(o, l.rolePW())
	if err != nil {
		return nil, err
	}
	created, err := ensureCluster(ctx, o, cfg.BinDir, l, superPW)
	if err != nil {
		return nil, err
	}
	if created {
		cfg.Logger.Info("postgres cluster made", "dir", l.data(), "bin", cfg.BinDir)
	}
	if err := copyTLS(o, l, *cfg.TLS); err != nil {
		return nil, err
	}
	if err := o.mkdir(l.socketDir()); err != nil {
		return nil, err
	}
	for try := 1; ; try++ {
		port := cfg.Port
		if port == 0 {
			if port, err = netx.FreePortOutsideEphemeral(nil); err != nil {
				return nil, err
			}
		}
		s, err := launch(ctx, cfg, o, l, port, superPW, rolePW)
		if err != nil && cfg.Port == 0 && try < portTries && errors.Is(err, errPortTaken) {
			cfg.Logger.Warn("postgres port taken meanwhile; trying another", "port", port)
			continue
		}
		return s, err
	}
}

// errPortTaken says that postgres could not listen on its port.
var errPortTaken = errors.New("port taken")

// launch starts postgres on port, awaits it and bootstraps it.
func launch(ctx context.Context, cfg Config, o owner, l layout, port int, superPW, rolePW string) (*Server, error) {
	if err := writeConf(o, l, port, cfg.Settings); err != nil {
		return nil, err
	}
	p, err := startProc(o, filepath.Join(cfg.BinDir, "postgres"), []string{"-D", l.data()}, l.dir, l.serverLog())
	if err != nil {
		return nil, err
	}
	cfg.Port = port
	s := &Server{cfg: cfg, l: l, proc: p, rolePW: rolePW}
	fail := func(err error) (*Server, error) {
		_ = p.kill() // the start failed already; that error says more
		tail := p.tail()
		if strings.Contains(tail, "could not bind") || strings.Contains(tail, "could not create any TCP/IP sockets") {
			err = fmt.Errorf("%w: %w", errPortTaken, err)
		}
		return nil, procs.WithLogTail(err, l.serverLog(), tail)
	}
	cc, err := superuserConfig(l, port, superPW)
	if err != nil {
		return fail(err)
	}
	conn, err := waitReady(ctx, p, cc)
	if err != nil {
		return fail(err)
	}
	err = bootstrap(ctx, conn, rolePW)
	_ = conn.Close(ctx) // the bootstrap's error, if any, says more
	if err != nil {
		return fail(err)
	}
	if err := checkClient(ctx, s.DSN()); err != nil {
		return fail(err)
	}
	return s, nil
}

// DSN is the connection string of the role [Role] to the database
// [Database]: TCP to 127.0.0.1 with sslmode=verify-full against the CA of
// [Config].TLS (its copy in Dir), for pgx and libpq alike.
func (s *Server) DSN() string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(Role, s.rolePW),
		Host:     s.Addr(),
		Path:     "/" + Database,
		RawQuery: url.Values{"sslmode": {"verify-full"}, "sslrootcert": {s.l.ca()}}.Encode(),
	}
	return u.String()
}

// Addr is the server's TCP address, 127.0.0.1:<port>.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.cfg.Port) }

// Port is the server's TCP port.
func (s *Server) Port() int { return s.cfg.Port }

// CAFile is the CA that DSN verifies the server against (a copy in Dir).
func (s *Server) CAFile() string { return s.l.ca() }

// Dir is the server's directory.
func (s *Server) Dir() string { return s.cfg.Dir }

// LogFile is the server's log.
func (s *Server) LogFile() string { return s.l.serverLog() }

// PID is the postmaster's process id.
func (s *Server) PID() int { return s.proc.pid }

// Done is closed when the server has exited (stopped, killed or crashed).
func (s *Server) Done() <-chan struct{} { return s.proc.done }

// Config is the configuration the server runs with, its port filled in:
// [Start] with it starts the server again on the same Dir and port, with
// the same data and credentials.
func (s *Server) Config() Config {
	cfg := s.cfg
	files := *cfg.TLS
	cfg.TLS = &files
	return cfg
}

// Stop shuts the server down fast (open transactions roll back, sessions
// end, a checkpoint is written) and waits for it to exit. When ctx ends
// first the server is killed, and Stop says so. Stopping a server that has
// exited does nothing.
func (s *Server) Stop(ctx context.Context) error {
	if err := s.proc.stop(ctx); err != nil {
		return fmt.Errorf("pglocal %s: stop: %w", s.cfg.Dir, err)
	}
	s.cfg.Logger.Info("postgres stopped", "dir", s.cfg.Dir, "addr", s.Addr())
	return nil
}

// Kill crashes the server for fault tests: SIGKILL to the postmaster and
// every process it started, as a power loss would, then waits until they
// are gone. The next start recovers from the write-ahead log.
func (s *Server) Kill() error {
	if err := s.proc.kill(); err != nil {
		return fmt.Errorf("pglocal %s: kill: %w", s.cfg.Dir, err)
	}
	s.cfg.Logger.Info("postgres killed", "dir", s.cfg.Dir, "addr", s.Addr())
	return nil
}
