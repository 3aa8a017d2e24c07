package pglocal

import (
	"crypto/tls"
	"fmt"
	"os"

	"github.com/cefiot/cefiot/libs/tlsx"
)

// copyTLS copies the server's key pair and CA into Dir, owned by the user
// that runs the server, the key 0600 (postgres refuses a key that others
// can read, or that is not its own or root's). It first checks that the
// key pair matches, so a mistake fails here and not in the server's log.
func copyTLS(o owner, l layout, files tlsx.Files) error {
	if _, err := tls.LoadX509KeyPair(files.Cert, files.Key); err != nil {
		return fmt.Errorf("TLS key pair %s, %s: %w", files.Cert, files.Key, err)
	}
	if err := o.mkdir(l.tlsDir()); err != nil {
		return err
	}
	for _, c := range []struct {
		from, to string
		mode     os.FileMode
	}{
		{files.Key, l.key(), 0o600},
		{files.Cert, l.cert(), 0o644},
		{files.CA, l.ca(), 0o644},
	} {
		b, err := os.ReadFile(c.from)
		if err != nil {
			return fmt.Errorf("TLS: %w", err)
		}
		if err := o.writeFile(c.to, b, c.mode); err != nil {
			return fmt.Errorf("TLS: %w", err)
		}
	}
	return nil
}
