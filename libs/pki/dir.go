package pki

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A site directory holds the site's CA (ca.crt, ca.key) and one key pair
// per component: <component>.crt and <component>.key, with the component's
// "/" written as "-" (worker/enrich -> worker-enrich.crt). Keys are 0600.

// FileBase is the file name stem of component in a site directory.
func FileBase(component string) string { return strings.ReplaceAll(component, "/", "-") }

// Paths of a component's files in dir.
func Paths(dir, component string) (cert, key, ca string) {
	b := filepath.Join(dir, FileBase(component))
	return b + ".crt", b + ".key", filepath.Join(dir, "ca.crt")
}

// EnsureCA loads the site CA from dir, or makes one there when dir has
// none. created says which.
func EnsureCA(dir, site string, now time.Time) (ca *CA, created bool, err error) {
	certPEM, cerr := os.ReadFile(filepath.Join(dir, "ca.crt"))
	keyPEM, kerr := os.ReadFile(filepath.Join(dir, "ca.key"))
	switch {
	case cerr == nil && kerr == nil:
		ca, err := ParseCA(certPEM, keyPEM)
		if err != nil {
			return nil, false, fmt.Errorf("CA in %s: %w", dir, err)
		}
		if ca.Site != site {
			return nil, false, fmt.Errorf("CA in %s is site %q's, not %q", dir, ca.Site, site)
		}
		return ca, false, nil
	case !errors.Is(cerr, fs.ErrNotExist) || !errors.Is(kerr, fs.ErrNotExist):
		return nil, false, fmt.Errorf("CA in %s: half there (ca.crt: %v, ca.key: %v)", dir, cerr, kerr)
	}
	if ca, err = NewCA(site, now); err != nil {
		return nil, false, err
	}
	key, err := ca.KeyPEM()
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("site directory: %w", err)
	}
	if err := writeAtomic(filepath.Join(dir, "ca.key"), key, 0o600); err != nil {
		return nil, false, err
	}
	if err := writeAtomic(filepath.Join(dir, "ca.crt"), ca.CertPEM(), 0o644); err != nil {
		return nil, false, err
	}
	return ca, true, nil
}

// WriteIssued issues component's certificate and writes its key pair into
// dir, replacing the old one atomically (key first, so a reader that sees
// the new certificate finds its key).
func (ca *CA) WriteIssued(dir, component string, hosts []string, validity time.Duration, now time.Time, opts ...IssueOption) (*Issued, error) {
	is, err := ca.Issue(component, hosts, validity, now, opts...)
	if err != nil {
		return nil, err
	}
	cert, key, _ := Paths(dir, component)
	if err := writeAtomic(key, is.KeyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeAtomic(cert, is.CertPEM, 0o644); err != nil {
		return nil, err
	}
	return is, nil
}

func writeAtomic(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// InitSite makes the CA of site in dir (an existing one is kept: created
// says which) and issues every component's certificate for hosts.
func InitSite(dir, site string, components, hosts []string, validity time.Duration, now time.Time) (ca *CA, issued []*Issued, created bool, err error) {
	ca, created, err = EnsureCA(dir, site, now)
	if err != nil {
		return nil, nil, false, err
	}
	for _, c := range components {
		is, err := ca.WriteIssued(dir, c, hosts, validity, now)
		if err != nil {
			return nil, nil, false, err
		}
		issued = append(issued, is)
	}
	return ca, issued, created, nil
}
