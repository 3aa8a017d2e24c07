package pglocal

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"

	"github.com/cefiot/cefiot/libs/tlsx"
)

// The database that [Start] makes and the login role that owns it.
const (
	Database = "cefiot"
	Role     = "cefiot"
)

// superuser is the bootstrap superuser initdb makes; it may connect only
// over the Unix socket in Dir.
const superuser = "postgres"

// Config says where and how to run a server.
type Config struct {
	// Dir holds the cluster, the server's copies of the TLS files, the
	// socket, the passwords and the logs. A Dir that holds a cluster
	// already is started again with its data.
	Dir string
	// Port is the TCP port on 127.0.0.1; 0 takes a free one (kept by
	// [Server.Config] for a restart).
	Port int
	// TLS names the server's certificate (it must name 127.0.0.1), its key
	// and the CA that clients verify it against. Required.
	TLS *tlsx.Files
	// BinDir holds initdb and postgres; "" finds them with [FindBin].
	BinDir string
	// Settings are more postgresql.conf settings, name to value in that
	// file's syntax (strings quoted: "'256MB'"), written after this
	// package's own and so over them: for benchmarks that tune the server.
	Settings map[string]string
	// Logger gets the server's life events; nil discards them.
	Logger *slog.Logger
}

// withDefaults checks cfg and fills in what was left out.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Dir == "" {
		return cfg, errors.New("config: Dir is required")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return cfg, fmt.Errorf("config: Dir: %w", err)
	}
	cfg.Dir = dir
	if cfg.TLS == nil || cfg.TLS.Cert == "" || cfg.TLS.Key == "" || cfg.TLS.CA == "" {
		return cfg, errors.New("config: TLS with Cert, Key and CA is required (the server takes TLS connections only)")
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return cfg, fmt.Errorf("config: Port %d out of range", cfg.Port)
	}
	if cfg.BinDir == "" {
		if cfg.BinDir, err = FindBin(); err != nil {
			return cfg, err
		}
	} else if err := hasServer(cfg.BinDir); err != nil {
		return cfg, fmt.Errorf("config: BinDir %s: %w", cfg.BinDir, err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	files := *cfg.TLS
	cfg.TLS = &files
	cfg.Settings = maps.Clone(cfg.Settings)
	return cfg, nil
}
