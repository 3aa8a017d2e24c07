package pglocal

import (
	"path/filepath"
	"strconv"
)

// layout names the files of a server in its Dir.
type layout struct{ dir string }

func (l layout) data() string      { return filepath.Join(l.dir, "data") }
func (l layout) socketDir() string { return filepath.Join(l.dir, "s") }
func (l layout) tlsDir() string    { return filepath.Join(l.dir, "tls") }
func (l layout) cert() string      { return filepath.Join(l.tlsDir(), "server.crt") }
func (l layout) key() string       { return filepath.Join(l.tlsDir(), "server.key") }
func (l layout) ca() string        { return filepath.Join(l.tlsDir(), "ca.crt") }
func (l layout) superPW() string   { return filepath.Join(l.dir, "superuser.password") }
func (l layout) rolePW() string    { return filepath.Join(l.dir, Role+".password") }
func (l layout) initdbLog() string { return filepath.Join(l.dir, "initdb.log") }
func (l layout) serverLog() string { return filepath.Join(l.dir, "postgres.log") }
func (l layout) pgVersion() string { return filepath.Join(l.data(), "PG_VERSION") }
func (l layout) mainConf() string  { return filepath.Join(l.data(), "postgresql.conf") }
func (l layout) ownConf() string   { return filepath.Join(l.data(), ownConfName) }
func (l layout) hbaConf() string   { return filepath.Join(l.data(), "pg_hba.conf") }
func (l layout) socketPath(port int) string {
	return filepath.Join(l.socketDir(), ".s.PGSQL."+strconv.Itoa(port))
}
