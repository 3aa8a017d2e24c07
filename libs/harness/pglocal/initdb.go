package pglocal

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ensureCluster makes the cluster in l.data() with initdb, unless one is
// there already (created says which).
func ensureCluster(ctx context.Context, o owner, bin string, l layout, superPW string) (created bool, err error) {
	if _, err := os.Stat(l.pgVersion()); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("check for a cluster: %w", err)
	}
	if entries, err := os.ReadDir(l.data()); err == nil && len(entries) > 0 {
		return false, fmt.Errorf("%s holds files but no cluster (PG_VERSION missing): remove it to start afresh", l.data())
	}
	// initdb reads the superuser's password from a file; it goes once made.
	pwfile := filepath.Join(l.dir, "initdb.pw")
	if err := o.writeFile(pwfile, []byte(superPW+"\n"), 0o600); err != nil {
		return false, err
	}
	defer func() { _ = os.Remove(pwfile) }()
	args := []string{
		"--pgdata", l.data(),
		"--username", superuser,
		"--pwfile", pwfile,
		"--auth", "scram-sha-256",
		"--encoding", "UTF8",
		"--no-locale",
	}
	if err := run(ctx, o, filepath.Join(bin, "initdb"), args, l.dir, l.initdbLog()); err != nil {
		return false, fmt.Errorf("initdb: %w", err)
	}
	return true, nil
}
