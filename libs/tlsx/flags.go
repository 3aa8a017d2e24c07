package tlsx

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/pki"
)

// Flags are the TLS flags every cefiot process takes: its key pair, its
// site's trust bundle, and the one flag that turns security off.
type Flags struct {
	Cert, Key, CA string
	// InsecurePlaintext serves and calls without TLS. Only for debugging
	// on a machine nobody else can reach; the process warns at start.
	InsecurePlaintext bool
}

// Register adds -tls-cert, -tls-key, -tls-ca and -insecure-plaintext.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.Cert, "tls-cert", "", "this process's certificate (PEM), issued by the site CA (cefiot-pki)")
	fs.StringVar(&f.Key, "tls-key", "", "the key of -tls-cert (PEM)")
	fs.StringVar(&f.CA, "tls-ca", "", "the site's trust bundle (PEM): peers must present a certificate it signed")
	fs.BoolVar(&f.InsecurePlaintext, "insecure-plaintext", false, "serve and call without TLS or authentication (debugging only; logs a warning)")
}

// Validate requires the three files unless InsecurePlaintext is set.
func (f *Flags) Validate(ch *config.Checker) {
	if f.InsecurePlaintext {
		return
	}
	const reason = "required (TLS is on by default; -insecure-plaintext turns it off)"
	ch.Check(f.Cert != "", "tls-cert", f.Cert, reason)
	ch.Check(f.Key != "", "tls-key", f.Key, reason)
	ch.Check(f.CA != "", "tls-ca", f.CA, reason)
	if f.Cert != "" && f.Key != "" && f.CA != "" {
		// Unreadable or mismatched files stop the process at start, named,
		// before anything dials with them.
		if _, err := read(f.Files()); err != nil {
			ch.Add(config.Invalid("tls-cert", f.Cert, err.Error()))
		}
	}
}

// Check reads the files as a process would at start: the key pair must
// match and the trust bundle hold a certificate.
func (f Files) Check() error {
	_, err := read(f)
	return err
}

// Fingerprint changes whenever the contents of any of the files change.
func (f Files) Fingerprint() string { return stampOf(f) }

// Usable reports whether the files can be used by a client of another
// trust domain: the key pair loads and the bundle holds a certificate (the
// chain is not checked: the bundle may be another domain's).
func (f Files) Usable() error {
	if _, err := tls.LoadX509KeyPair(f.Cert, f.Key); err != nil {
		return fmt.Errorf("key pair %s, %s: %w", f.Cert, f.Key, err)
	}
	b, err := os.ReadFile(f.CA)
	if err != nil {
		return fmt.Errorf("trust bundle: %w", err)
	}
	if _, err := pki.ParseCertificates(b); err != nil {
		return fmt.Errorf("trust bundle %s: %w", f.CA, err)
	}
	return nil
}

// Files are the files the flags name.
func (f Flags) Files() Files { return Files{Cert: f.Cert, Key: f.Key, CA: f.CA} }

// Args are the flags that give another process these files.
func (f Files) Args() []string {
	return []string{"-tls-cert", f.Cert, "-tls-key", f.Key, "-tls-ca", f.CA}
}

// Open loads the files (nil Source with InsecurePlaintext, after logging
// the warning the flag promises).
func (f Flags) Open(logger *slog.Logger, reg prometheus.Registerer) (*Source, error) {
	if f.InsecurePlaintext {
		logger.Warn("SECURITY OFF: -insecure-plaintext is set; every listener and call of this process is plaintext and unauthenticated")
		return nil, nil
	}
	return Load(f.Files(), logger, reg)
}

// FilesIn are component's files in a site directory (see pki.Paths).
func FilesIn(dir, component string) Files {
	cert, key, ca := pki.Paths(dir, component)
	return Files{Cert: cert, Key: key, CA: ca}
}
